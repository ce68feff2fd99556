package gitlab_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/forgetest/githubfake"
	"github.com/dagctl/dagctl-bot/internal/vcs"
	"github.com/dagctl/dagctl-bot/internal/vcs/gitlab"
	"github.com/dagctl/dagctl-bot/internal/vcs/vcstest"
)

// hook is a real GitLab payload from shared/payloads/gitlab, patched by the test.
type hook struct {
	event string
	doc   map[string]any
}

// loadHook reads shared/payloads/gitlab/<name>; its event header is the kind the file name starts with.
func loadHook(t *testing.T, name string) *hook {
	t.Helper()
	shared, err := githubfake.SharedDir()
	require.NoError(t, err)
	raw, err := os.ReadFile(filepath.Join(shared, "payloads", "gitlab", name))
	require.NoError(t, err)
	h := &hook{event: map[string]string{
		"merge_request": "Merge Request Hook", "note": "Note Hook", "push": "Push Hook",
	}[strings.SplitN(name, ".", 2)[0]]}
	require.NoError(t, json.Unmarshal(raw, &h.doc), name)
	return h
}

// set sets a dotted path, creating objects on the way; a nil value deletes it.
func (h *hook) set(path string, value any) *hook {
	keys := strings.Split(path, ".")
	node := h.doc
	for _, k := range keys[:len(keys)-1] {
		next, ok := node[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			node[k] = next
		}
		node = next
	}
	if value == nil {
		delete(node, keys[len(keys)-1])
	} else {
		node[keys[len(keys)-1]] = value
	}
	return h
}

func (h *hook) body() []byte {
	b, err := json.Marshal(h.doc)
	if err != nil {
		panic(err)
	}
	return b
}

func (h *hook) parse() (vcs.Event, error) { return gitlab.ParseWebhook(h.event, h.body()) }

const (
	head     = "0123456789abcdef0123456789abcdef01234567"
	cloneURL = "https://gitlab.example.com/acme/data/warehouse.git"
)

// project places a hook in acme/data/warehouse (a subgroup), project 14.
func (h *hook) project() *hook {
	return h.set("project.path_with_namespace", "acme/data/warehouse").set("project.http_url", cloneURL).
		set("project.git_http_url", cloneURL).set("project.default_branch", "main").set("project.id", 14)
}

// mr is a merge request hook of MR number by user with head, from the project's own branch.
func mr(t *testing.T, file, action string, number int, head, user string) *hook {
	return loadHook(t, file).project().set("object_attributes.action", action).
		set("object_attributes.iid", number).set("object_attributes.last_commit.id", head).
		set("object_attributes.source_branch", "more-columns").set("object_attributes.target_branch", "main").
		set("object_attributes.source_project_id", 14).set("object_attributes.target_project_id", 14).
		set("object_attributes.source.http_url", cloneURL).set("user.username", user)
}

func note(t *testing.T, number int, author, body string) *hook {
	return loadHook(t, "note.merge_request.json").project().set("object_attributes.note", body).
		set("merge_request.iid", number).set("user.username", author)
}

// GitLab's webhook parser meets the intake side of the port's contract, on GitLab's real payloads.
func TestGitLabWebhooksMeetThePortContract(t *testing.T) {
	vcstest.RunEvents(t, eventWorld{t: t})
}

type eventWorld struct{ t *testing.T }

func (w eventWorld) Parse(event string, body []byte) (vcs.Event, error) {
	return gitlab.WebhookParser("dagctl-bot")(event, body)
}

func hookOf(h *hook) vcstest.Hook { return vcstest.Hook{Event: h.event, Body: h.body()} }

func (w eventWorld) PROpened(number int, head, author string) vcstest.Hook {
	return hookOf(mr(w.t, "merge_request.open.json", "open", number, head, author))
}

func (w eventWorld) ForkPROpened(number int, head, author, forkOwner string) vcstest.Hook {
	return hookOf(mr(w.t, "merge_request.open.json", "open", number, head, author).
		set("object_attributes.source_project_id", 99).
		set("object_attributes.source.http_url", "https://gitlab.example.com/"+forkOwner+"/warehouse.git"))
}

func (w eventWorld) Comment(number int, author, body string) vcstest.Hook {
	return hookOf(note(w.t, number, author, body))
}

func (w eventWorld) CommentEdited(number int, author, body string) vcstest.Hook {
	return hookOf(note(w.t, number, author, body).set("object_attributes.action", "update"))
}

// GitLab re-runs pipelines, not an external commit status: nothing asks the bot to run a status again.
func (w eventWorld) Rerequested(string, string, string, string) (vcstest.Hook, bool) {
	return vcstest.Hook{}, false
}

func TestMergeRequestHooks(t *testing.T) {
	repo := vcs.Repo{Forge: "gitlab", Owner: "acme/data", Name: "warehouse", CloneURL: cloneURL, DefaultBranch: "main"}
	approvedAt := time.Date(2017, 12, 18, 0, 39, 44, 0, time.UTC)
	cases := []struct {
		name   string
		hook   func(t *testing.T) *hook
		action vcs.PullRequestAction
		check  func(t *testing.T, ev vcs.Event)
	}{
		{name: "open: the opener is the author", action: vcs.PROpened,
			hook: func(t *testing.T) *hook { return mr(t, "merge_request.open.json", "open", 3, head, "alice") },
			check: func(t *testing.T, ev vcs.Event) {
				pr := ev.PullRequest.PR
				assert.Equal(t, repo, ev.Repo)
				assert.Equal(t, repo, pr.Repo)
				assert.Equal(t, "alice", pr.Author)
				assert.Equal(t, "alice", ev.PullRequest.Sender)
				assert.Equal(t, "more-columns", pr.HeadRef)
				assert.Equal(t, "main", pr.BaseRef)
				assert.Equal(t, cloneURL, pr.HeadCloneURL)
				assert.Equal(t, "open", pr.State)
				assert.False(t, pr.Draft)
			}},
		{name: "reopen", action: vcs.PRReopened,
			hook: func(t *testing.T) *hook { return mr(t, "merge_request.open.json", "reopen", 3, head, "bob") }},
		{name: "update with oldrev: new commits", action: vcs.PRPushed,
			hook: func(t *testing.T) *hook {
				return mr(t, "merge_request.update.new-commit.json", "update", 3, head, "bob")
			},
			check: func(t *testing.T, ev vcs.Event) {
				assert.Equal(t, head, ev.PullRequest.PR.HeadSHA)
				assert.Equal(t, "bob", ev.PullRequest.Sender)
				// bob pushed; whether he wrote the MR the hook does not say (it names the author by id).
				assert.Empty(t, ev.PullRequest.PR.Author, "the pusher must not pass for the author: the author's own approval would count")
			}},
		{name: "update marking a draft ready", action: vcs.PRReady,
			hook: func(t *testing.T) *hook {
				return mr(t, "merge_request.update.new-commit.json", "update", 3, head, "alice").
					set("object_attributes.oldrev", nil).set("changes.draft", map[string]any{"previous": true, "current": false})
			}},
		{name: "update making it a draft", action: vcs.PREdited,
			hook: func(t *testing.T) *hook {
				return mr(t, "merge_request.update.new-commit.json", "update", 3, head, "alice").
					set("object_attributes.oldrev", nil).set("object_attributes.draft", true).
					set("changes.draft", map[string]any{"previous": false, "current": true})
			},
			check: func(t *testing.T, ev vcs.Event) { assert.True(t, ev.PullRequest.PR.Draft) }},
		{name: "update of the title", action: vcs.PREdited,
			hook: func(t *testing.T) *hook {
				return mr(t, "merge_request.update.new-commit.json", "update", 3, head, "alice").
					set("object_attributes.oldrev", nil).set("object_attributes.title", "Draft: more columns").
					set("changes.title", map[string]any{"previous": "more columns", "current": "Draft: more columns"})
			},
			check: func(t *testing.T, ev vcs.Event) {
				assert.True(t, ev.PullRequest.PR.Draft, "a Draft: title is a draft, in payloads without the draft field too")
			}},
		{name: "close", action: vcs.PRClosed,
			hook: func(t *testing.T) *hook { return mr(t, "merge_request.close.json", "close", 3, head, "carol") },
			check: func(t *testing.T, ev vcs.Event) {
				assert.Equal(t, "closed", ev.PullRequest.PR.State)
				assert.False(t, ev.PullRequest.PR.Merged)
			}},
		{name: "merge names the merge commit", action: vcs.PRMerged,
			hook: func(t *testing.T) *hook { return mr(t, "merge_request.merge.json", "merge", 3, head, "carol") },
			check: func(t *testing.T, ev vcs.Event) {
				pr := ev.PullRequest.PR
				assert.True(t, pr.Merged)
				assert.Equal(t, "closed", pr.State)
				assert.Equal(t, "78a76ee6b4992a6baf64c59fc4c44c7323d60438", pr.MergeCommitSHA)
				assert.Equal(t, "carol", ev.PullRequest.Sender)
			}},
		{name: "a squashed fast-forward merge names the squash commit", action: vcs.PRMerged,
			hook: func(t *testing.T) *hook {
				return mr(t, "merge_request.merge.json", "merge", 3, head, "carol").
					set("object_attributes.merge_commit_sha", nil).
					set("object_attributes.squash_commit_sha", strings.Repeat("ab", 20))
			},
			check: func(t *testing.T, ev vcs.Event) {
				assert.Equal(t, strings.Repeat("ab", 20), ev.PullRequest.PR.MergeCommitSHA)
			}},
		{name: "a fork's MR: fetched from the source project", action: vcs.PROpened,
			hook: func(t *testing.T) *hook {
				return mr(t, "merge_request.open.json", "open", 3, head, "mallory").
					set("object_attributes.source_project_id", 99).
					set("object_attributes.source.http_url", "https://gitlab.example.com/mallory/warehouse.git")
			},
			check: func(t *testing.T, ev vcs.Event) {
				assert.True(t, ev.PullRequest.PR.Fork)
				assert.Equal(t, "https://gitlab.example.com/mallory/warehouse.git", ev.PullRequest.PR.HeadCloneURL)
				assert.Equal(t, cloneURL, ev.Repo.CloneURL, "the target project is the repository")
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev, err := c.hook(t).parse()
			require.NoError(t, err)
			require.NotNil(t, ev.PullRequest)
			assert.Equal(t, c.action, ev.PullRequest.Action)
			assert.Equal(t, 3, ev.PullRequest.PR.Number)
			assert.Equal(t, "gitlab:acme/data/warehouse#3", ev.OrderingKey())
			if c.check != nil {
				c.check(t, ev)
			}
		})
	}

	approvals := []struct{ file, action, want string }{
		{"merge_request.approved.json", "approved", "submitted"},
		{"merge_request.approved.json", "approval", "submitted"},
		{"merge_request.unapproved.json", "unapproved", "dismissed"},
		{"merge_request.unapproved.json", "unapproval", "dismissed"},
	}
	for _, c := range approvals {
		t.Run(c.action+" is a review by the hook's user at its updated_at", func(t *testing.T) {
			ev, err := mr(t, c.file, c.action, 3, head, "dave").parse()
			require.NoError(t, err)
			require.NotNil(t, ev.Review)
			assert.Equal(t, c.want, ev.Review.Action)
			assert.Equal(t, "dave", ev.Review.Review.User)
			assert.Equal(t, approvedAt, ev.Review.Review.SubmittedAt, "GitLab's clock, as the payload has it")
			assert.Empty(t, ev.Review.Review.CommitSHA, "GitLab's approvals name no commit")
			if c.want == "submitted" {
				assert.Equal(t, vcs.ReviewApproved, ev.Review.Review.State)
			} else {
				assert.Equal(t, vcs.ReviewDismissed, ev.Review.Review.State)
			}
			assert.Equal(t, 3, ev.Review.PR.Number)
			assert.Equal(t, "gitlab:acme/data/warehouse#3", ev.OrderingKey())
			assert.False(t, ev.Review.Review.ByBot)
		})
		t.Run(c.action+" by the bot's own user is marked", func(t *testing.T) {
			h := mr(t, c.file, c.action, 3, head, "Dagctl-Bot")
			ev, err := gitlab.WebhookParser("dagctl-bot")(h.event, h.body())
			require.NoError(t, err)
			require.NotNil(t, ev.Review)
			assert.True(t, ev.Review.Review.ByBot, "usernames fold case")
		})
	}
	t.Run("an RFC 3339 updated_at reads the same", func(t *testing.T) {
		ev, err := mr(t, "merge_request.approved.json", "approved", 3, head, "dave").
			set("object_attributes.updated_at", "2017-12-18T01:39:44+01:00").parse()
		require.NoError(t, err)
		assert.Equal(t, approvedAt, ev.Review.Review.SubmittedAt)
	})
}

// Hooks the bot must not act on are ignored (acknowledged, nothing done); hooks it cannot trust are errors
// naming the field.
func TestGitLabHooksTheBotDoesNotActOn(t *testing.T) {
	ignoredCases := map[string]func(t *testing.T) *hook{
		"an update that changes only labels": func(t *testing.T) *hook {
			return mr(t, "merge_request.update.new-commit.json", "update", 3, head, "alice").set("object_attributes.oldrev", nil)
		},
		"an unknown MR action": func(t *testing.T) *hook {
			return mr(t, "merge_request.open.json", "lock", 3, head, "alice")
		},
		"a note on an issue": func(t *testing.T) *hook {
			return note(t, 3, "alice", "/dagctl apply prod").set("object_attributes.noteable_type", "Issue")
		},
		"a note on a commit": func(t *testing.T) *hook {
			return note(t, 3, "alice", "/dagctl apply prod").set("object_attributes.noteable_type", "Commit")
		},
		"a confidential note": func(t *testing.T) *hook {
			return note(t, 3, "alice", "/dagctl apply prod").set("event_type", "confidential_note")
		},
		"a system note": func(t *testing.T) *hook {
			return note(t, 3, "alice", "/dagctl apply prod").set("object_attributes.system", true)
		},
		"the bot's own note (its sticky note quotes commands)": func(t *testing.T) *hook {
			return note(t, 3, "Dagctl-Bot", "/dagctl apply prod")
		},
		"a tag push": func(t *testing.T) *hook {
			return loadHook(t, "push.json").project().set("ref", "refs/tags/v1")
		},
	}
	for name, build := range ignoredCases {
		t.Run(name, func(t *testing.T) {
			h := build(t)
			_, err := gitlab.WebhookParser("dagctl-bot")(h.event, h.body())
			require.ErrorIs(t, err, vcs.ErrIgnored)
		})
	}
	t.Run("events the bot does not handle", func(t *testing.T) {
		for _, event := range []string{"Job Hook", "Tag Push Hook", "Issue Hook", "Confidential Note Hook", "Something New Hook"} {
			_, err := gitlab.ParseWebhook(event, []byte(`{}`))
			require.ErrorIs(t, err, vcs.ErrIgnored, event)
		}
	})

	broken := map[string]struct {
		hook func(t *testing.T) *hook
		want string
	}{
		"a head that is not a full commit id": {
			hook: func(t *testing.T) *hook { return mr(t, "merge_request.open.json", "open", 3, "da15608", "alice") },
			want: `object_attributes.last_commit.id "da15608" is not a full commit id`},
		"an approval without a time": {
			hook: func(t *testing.T) *hook {
				return mr(t, "merge_request.approved.json", "approved", 3, head, "dave").set("object_attributes.updated_at", "yesterday")
			},
			want: `object_attributes.updated_at: "yesterday" is not a time`},
		"an approval without a user": {
			hook: func(t *testing.T) *hook {
				return mr(t, "merge_request.approved.json", "approved", 3, head, "").set("user", nil)
			},
			want: "no user.username"},
		"a project without a namespace": {
			hook: func(t *testing.T) *hook {
				return mr(t, "merge_request.open.json", "open", 3, head, "alice").set("project.path_with_namespace", "warehouse")
			},
			want: `project.path_with_namespace "warehouse" is not namespace/project`},
		"a body that is not JSON": {
			hook: func(t *testing.T) *hook { return &hook{event: "Note Hook"} },
			want: "gitlab: parse Note Hook"},
	}
	for name, c := range broken {
		t.Run(name, func(t *testing.T) {
			h := c.hook(t)
			body := h.body()
			if h.doc == nil {
				body = []byte("{not json")
			}
			_, err := gitlab.ParseWebhook(h.event, body)
			require.Error(t, err)
			assert.False(t, errors.Is(err, vcs.ErrIgnored), "a broken hook is not silently ignored")
			assert.Contains(t, err.Error(), c.want)
		})
	}
	t.Run("no event header", func(t *testing.T) {
		_, err := gitlab.ParseWebhook("", []byte(`{}`))
		require.ErrorContains(t, err, "without X-Gitlab-Event")
	})
}

func TestNoteHooks(t *testing.T) {
	t.Run("a new note is a command comment by the hook's user", func(t *testing.T) {
		ev, err := note(t, 3, "dave", "/dagctl apply prod").parse()
		require.NoError(t, err)
		require.NotNil(t, ev.Comment)
		id, err := gitlab.CommentID(3, 1244)
		require.NoError(t, err)
		assert.Equal(t, vcs.Comment{ID: id, Author: "dave", Body: "/dagctl apply prod"}, ev.Comment.Comment,
			"the port's id of note 1244 on !3, which React and UpdateComment take")
		iid, noteID, err := gitlab.SplitCommentID(ev.Comment.Comment.ID)
		require.NoError(t, err)
		assert.Equal(t, [2]int64{3, 1244}, [2]int64{iid, noteID})
		assert.Equal(t, 3, ev.Comment.Number)
		assert.False(t, ev.Comment.Edited)
		assert.Equal(t, "gitlab:acme/data/warehouse#3", ev.OrderingKey())
	})
	t.Run("a note from before GitLab 16.11 (no action) is new", func(t *testing.T) {
		h := loadHook(t, "note.merge_request.gitlab-com.json")
		ev, err := h.parse()
		require.NoError(t, err)
		require.NotNil(t, ev.Comment)
		assert.False(t, ev.Comment.Edited)
		assert.NotEmpty(t, ev.Comment.Comment.Author)
		assert.Positive(t, ev.Comment.Number)
	})
	t.Run("an edited note is edited: it never runs a command", func(t *testing.T) {
		ev, err := note(t, 3, "dave", "/dagctl apply prod").set("object_attributes.action", "update").parse()
		require.NoError(t, err)
		assert.True(t, ev.Comment.Edited)
	})
}

func TestPushHooks(t *testing.T) {
	t.Run("a push to a branch", func(t *testing.T) {
		h := loadHook(t, "push.json")
		ev, err := h.parse()
		require.NoError(t, err)
		require.NotNil(t, ev.Push)
		assert.Equal(t, vcs.PushEvent{Ref: "refs/heads/master", Before: "95790bf891e76fee5e1747ab589903a6a1f80f22",
			After: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7", Pusher: "jsmith"}, *ev.Push)
		assert.Equal(t, vcs.Repo{Forge: "gitlab", Owner: "mike", Name: "diaspora", CloneURL: "http://example.com/mike/diaspora.git",
			DefaultBranch: "master"}, ev.Repo)
		assert.Equal(t, "gitlab:mike/diaspora", ev.OrderingKey())
		assert.Equal(t, "gitlab:mike/diaspora", gitlab.OrderingKey(h.body()))
	})
	t.Run("a branch deleted", func(t *testing.T) {
		ev, err := loadHook(t, "push.json").set("after", strings.Repeat("0", 40)).set("total_commits_count", 0).parse()
		require.NoError(t, err)
		assert.True(t, ev.Push.Deleted)
	})
	t.Run("a push of more commits than the hook lists", func(t *testing.T) {
		ev, err := loadHook(t, "push.json").set("total_commits_count", 250).parse()
		require.NoError(t, err)
		assert.Equal(t, "da1560886d4f094c3e6c9ef40349f7d38b5d27d7", ev.Push.After, "before..after bound the push, not commits[]")
	})
}

// The intake's ordering key, read from the body alone, is the parsed event's.
func TestOrderingKeyIsTheEventsKey(t *testing.T) {
	for _, h := range []*hook{
		mr(t, "merge_request.open.json", "open", 5, head, "alice"),
		mr(t, "merge_request.approved.json", "approved", 5, head, "dave"),
		note(t, 5, "dave", "/dagctl plan"),
		loadHook(t, "push.json"),
	} {
		ev, err := h.parse()
		require.NoError(t, err)
		assert.Equal(t, ev.OrderingKey(), gitlab.OrderingKey(h.body()), h.event)
	}
	assert.Equal(t, "gitlab:acme/data/warehouse", gitlab.OrderingKey(note(t, 5, "a", "b").set("object_attributes.noteable_type", "Issue").body()))
	assert.Equal(t, "gitlab:unparsable", gitlab.OrderingKey([]byte("nope")))
}
