package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/command"
	"github.com/dagctl/dagctl-bot/internal/comments"
	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/forgetest/githubfake"
	"github.com/dagctl/dagctl-bot/internal/forgetest/gitlabfake"
	"github.com/dagctl/dagctl-bot/internal/server"
	"github.com/dagctl/dagctl-bot/internal/serverconfig"
	"github.com/dagctl/dagctl-bot/internal/testutil"
)

// A smoke test of a bot configured for GitLab alone: the settings name no GitHub App at all, and the bot is
// driven over HTTP by GitLab's hooks (the shared payloads, adjusted to gitlabfake's project) while gitlabfake
// plays GitLab's API and git. It is built on gitlabfake directly, not on the forge-neutral world, so that it
// checks the server's own GitLab wiring: the settings, the route, the token check, the parser, the adapter.

const (
	glBotUser     = "dagctl-bot"
	glHookSecret  = "gl-hook-s3cret"
	glProjectPath = "acme/warehouse"
)

// gitLabAlone is a bot serving GitLab alone, over gitlabfake, with the example project on main.
type gitLabAlone struct {
	t       *testing.T
	fake    *gitlabfake.Fake
	project *gitlabfake.Project
	git     *githubfake.GitRepo
	base    string
	srv     *server.Server
	http    *httptest.Server
	logs    *strings.Builder
}

// newGitLabAlone starts the bot with only DAGCTL_GITLAB_* settings (the clone token too when withCloneToken).
func newGitLabAlone(t *testing.T, withCloneToken bool) *gitLabAlone {
	t.Helper()
	testutil.CheckNoLeakedGoroutines(t) // first: it runs after every cleanup
	fake := gitlabfake.New(t)
	fake.AddUser(gitlabfake.User{Username: glBotUser, Bot: true})
	token := fake.AddToken(glBotUser)
	git := githubfake.NewGitRepo(t, "main")
	base := git.Commit("main", testutil.ExampleFiles(t), "the example project")
	namespace, path, _ := strings.Cut(glProjectPath, "/")
	project := fake.AddProject(namespace, path, git.Dir, "main")
	project.SetMember(glBotUser, gitlabfake.Developer)
	project.SetMember("alice", gitlabfake.Developer)
	project.SetMember("bob", gitlabfake.Developer)

	dir := t.TempDir()
	state := filepath.Join(dir, "state.duckdb")
	cfg := serverconfig.Config{
		DB:        filepath.Join(dir, "bot", "dagctl.db"),
		Executor:  serverconfig.ExecutorLocal,
		PublicURL: publicURL,
		SQLMesh:   testutil.SQLMesh(t),
		WorkDir:   filepath.Join(dir, "work"),
		JobEnv:    []string{"EXAMPLE_DUCKDB_PATH"},
		JobUsers:  serverconfig.JobUsers{Mode: serverconfig.JobUsersOff},
		// GitLab's settings and nothing of GitHub's: no app id, key or webhook secret.
		GitLab: serverconfig.GitLab{URL: fake.URL(), Token: serverconfig.Secret(token), WebhookSecret: glHookSecret},
	}
	if withCloneToken {
		cfg.GitLab.CloneToken = serverconfig.Secret(fake.AddToken(glBotUser, gitlabfake.ScopeReadRepository))
	}
	require.False(t, cfg.GitHub.Enabled())
	w := &gitLabAlone{t: t, fake: fake, project: project, git: git, base: base, logs: &strings.Builder{}}
	srv, err := server.New(context.Background(), cfg, server.Options{
		Log:           slog.New(slog.NewTextHandler(w.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:           fake.Now,
		Sleep:         fake.Sleep,
		ExecutionTime: executionTime,
		Environ:       append(os.Environ(), "EXAMPLE_DUCKDB_PATH="+state),
		MaxJobs:       1,
	})
	require.NoError(t, err)
	w.srv = srv
	// Served with the limits `dagctl-bot serve` has, as the e2e harness does.
	w.http = httptest.NewUnstartedServer(srv.Handler())
	w.http.Config = server.NewHTTPServer("", srv.Handler(), server.DefaultHTTPLimits)
	w.http.Start()
	require.NoError(t, srv.Recover(context.Background()))
	srv.StartSending(context.Background())
	t.Cleanup(func() {
		w.http.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = srv.Close(ctx)
		if t.Failed() {
			t.Logf("bot log:\n%s", w.logs.String())
		}
	})
	return w
}

// settle handles queued deliveries, waits for their jobs and sends the outbox's writes, until nothing is left.
func (w *gitLabAlone) settle() {
	w.t.Helper()
	ctx := context.Background()
	for {
		n := w.srv.Drain(ctx)
		w.srv.WaitJobs()
		require.NoError(w.t, w.srv.WaitWrites(ctx))
		if n == 0 {
			return
		}
	}
}

// glHook is a shared GitLab payload as a document whose fields a test sets by dotted path.
type glHook map[string]any

func loadGLHook(t *testing.T, name string) glHook {
	t.Helper()
	shared, err := githubfake.SharedDir()
	require.NoError(t, err)
	raw, err := os.ReadFile(filepath.Join(shared, "payloads", "gitlab", name))
	require.NoError(t, err)
	var doc glHook
	require.NoError(t, json.Unmarshal(raw, &doc))
	return doc
}

func (h glHook) set(path string, v any) glHook {
	keys := strings.Split(path, ".")
	m := map[string]any(h)
	for _, k := range keys[:len(keys)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[k] = next
		}
		m = next
	}
	m[keys[len(keys)-1]] = v
	return h
}

// ofProject points every project of the hook (the hook's, and a merge request's source and target under prefix)
// at the fake's project.
func (h glHook) ofProject(p *gitlabfake.Project, prefixes ...string) glHook {
	for _, prefix := range append([]string{"project"}, prefixes...) {
		h.set(prefix+".id", p.ID).set(prefix+".path_with_namespace", p.FullPath()).set(prefix+".default_branch", p.DefaultBranch).
			set(prefix+".web_url", p.WebURL()).set(prefix+".http_url", p.CloneURL()).set(prefix+".git_http_url", p.CloneURL()).
			set(prefix+".url", p.CloneURL())
	}
	return h
}

func (h glHook) body(t *testing.T) []byte {
	t.Helper()
	b, err := json.Marshal(h)
	require.NoError(t, err)
	return b
}

// glDelivery is one hook as GitLab sends it: the event, the secret token, the event's UUID and, as GitLab 17.4+
// does, an idempotency key that stays the same across GitLab's retries.
type glDelivery struct {
	event, token, uuid, idempotencyKey string
	body                               []byte
}

// post sends the delivery to path and answers the status and the body of the answer.
func (w *gitLabAlone) post(path string, d glDelivery) (int, string) {
	w.t.Helper()
	req, err := http.NewRequest(http.MethodPost, w.http.URL+path, bytes.NewReader(d.body))
	require.NoError(w.t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Gitlab-Event", d.event)
	req.Header.Set("X-Gitlab-Token", d.token)
	req.Header.Set("X-Gitlab-Event-UUID", d.uuid)
	if d.idempotencyKey != "" {
		req.Header.Set("Idempotency-Key", d.idempotencyKey)
	}
	resp, err := w.http.Client().Do(req)
	require.NoError(w.t, err)
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(answer)
}

func (w *gitLabAlone) get(path string) (int, string) {
	w.t.Helper()
	resp, err := w.http.Client().Get(w.http.URL + path)
	require.NoError(w.t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// openMR pushes a branch with files on top of main, opens its merge request by author on the fake, and returns
// its iid, its head and its Merge Request Hook (action open).
func (w *gitLabAlone) openMR(branch, author string, files map[string]string) (int64, string, glHook) {
	w.t.Helper()
	w.git.Git("checkout", "--quiet", "main")
	head := w.git.Commit(branch, files, "change on "+branch)
	iid := w.project.SetMR(gitlabfake.MR{Title: "Change " + branch, Author: author, SourceBranch: branch, HeadSHA: head, BaseSHA: w.base})
	hook := loadGLHook(w.t, "merge_request.open.json").ofProject(w.project, "object_attributes.source", "object_attributes.target").
		set("user.username", author).
		set("object_attributes.iid", iid).set("object_attributes.title", "Change "+branch).
		set("object_attributes.source_branch", branch).set("object_attributes.target_branch", "main").
		set("object_attributes.source_project_id", w.project.ID).set("object_attributes.target_project_id", w.project.ID).
		set("object_attributes.last_commit.id", head).set("object_attributes.action", "open")
	return iid, head, hook
}

// noteHook is the Note Hook of a new note on the merge request.
func (w *gitLabAlone) noteHook(iid, noteID int64, author, body, head string) glHook {
	return loadGLHook(w.t, "note.merge_request.json").ofProject(w.project, "merge_request.source", "merge_request.target").
		set("user.username", author).set("project_id", w.project.ID).
		set("object_attributes.id", noteID).set("object_attributes.note", body).set("object_attributes.action", "create").
		set("object_attributes.noteable_type", "MergeRequest").set("object_attributes.project_id", w.project.ID).
		set("merge_request.iid", iid).set("merge_request.target_branch", "main").
		set("merge_request.source_project_id", w.project.ID).set("merge_request.target_project_id", w.project.ID).
		set("merge_request.last_commit.id", head)
}

// planStatus is the commit's current GitLab status of that name (a retried one is history).
func (w *gitLabAlone) planStatus(sha, name string) (gitlabfake.CommitStatus, bool) {
	for _, s := range w.project.Statuses(sha) {
		if s.Name == name && !s.Retried {
			return s, true
		}
	}
	return gitlabfake.CommitStatus{}, false
}

// A bot with only GitLab's settings serves GitLab alone: a hook with the wrong token is refused and stores
// nothing, GitHub's route says GitHub is not set up (it neither fails nor accepts), and /readyz warns that jobs
// would clone with the api token while no clone token is set.
func TestABotWithOnlyGitLabSettingsRefusesWhatItMustAndSaysWhatIsMissing(t *testing.T) {
	w := newGitLabAlone(t, false)
	_, _, hook := w.openMR("x", "alice", nonBreaking)
	bad := glDelivery{event: "Merge Request Hook", token: "not-the-secret", uuid: "bad-uuid", idempotencyKey: "bad-key", body: hook.body(t)}
	status, _ := w.post("/webhooks/gitlab", bad)
	assert.Equal(t, http.StatusUnauthorized, status)
	_, err := w.srv.Store().GetDelivery(context.Background(), "gitlab", "bad-key")
	assert.ErrorIs(t, err, db.ErrNotFound, "a refused hook is not stored")
	queued, err := w.srv.Store().ListDeliveries(context.Background(), false)
	require.NoError(t, err)
	assert.Empty(t, queued)

	// GitHub's route exists (/setup could still add an app) and answers that it is not set up.
	req, err := http.NewRequest(http.MethodPost, w.http.URL+"/webhooks/github", strings.NewReader(`{"zen":"hi"}`))
	require.NoError(t, err)
	req.Header.Set("X-GitHub-Event", "ping")
	req.Header.Set("X-GitHub-Delivery", "gh-1")
	req.Header.Set("X-Hub-Signature-256", "sha256=00")
	resp, err := w.http.Client().Do(req)
	require.NoError(t, err)
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Contains(t, string(answer), "not set up")
	_, err = w.srv.Store().GetDelivery(context.Background(), "github", "gh-1")
	assert.ErrorIs(t, err, db.ErrNotFound)

	status, body := w.get("/readyz")
	assert.Equal(t, http.StatusOK, status)
	assert.Contains(t, body, "warning: GitLab jobs would clone with the api token")
	assert.Contains(t, body, serverconfig.EnvGitLabCloneToken)
	w.settle()
	assert.Empty(t, w.project.Statuses(w.git.SHA("x")), "nothing was planned")
	assert.Contains(t, w.logs.String(), "serving GitLab without a GitHub App")
}

// The same bot plans a merge request with the real sqlmesh: the hook is stored once however often GitLab sends
// it, the plan statuses reach a final state, the bot's user writes one sticky note, and a Developer's
// `/dagctl help` gets the usage and 👀 on the command note. With a clone token set, /readyz warns of nothing.
func TestABotServingGitLabAlonePlansAMergeRequestAndAnswersCommands(t *testing.T) {
	w := newGitLabAlone(t, true)
	iid, head, hook := w.openMR("x", "alice", nonBreaking)
	open := glDelivery{event: "Merge Request Hook", token: glHookSecret, uuid: "open-uuid", idempotencyKey: "open-key", body: hook.body(t)}
	status, _ := w.post("/webhooks/gitlab", open)
	assert.Equal(t, http.StatusAccepted, status)
	status, _ = w.post("/webhooks/gitlab", open)
	assert.Equal(t, http.StatusOK, status, "the same delivery again is a duplicate")
	retried := open
	retried.uuid = "open-uuid-retry" // GitLab's retry of one event keeps its idempotency key
	status, _ = w.post("/webhooks/gitlab", retried)
	assert.Equal(t, http.StatusOK, status, "GitLab's retry is a duplicate")
	queued, err := w.srv.Store().ListDeliveries(context.Background(), false)
	require.NoError(t, err)
	require.Len(t, queued, 1, "stored once")
	assert.Equal(t, "open-key", queued[0].DeliveryID)
	w.settle()

	for _, env := range []string{"prod", "dev"} {
		st, ok := w.planStatus(head, "dagctl/plan: "+env)
		if assert.True(t, ok, "dagctl/plan: %s on the head", env) {
			assert.Equal(t, "success", st.Status, "dagctl/plan: %s", env)
			assert.False(t, st.FinishedAt.IsZero(), "a final state has its time")
			assert.Equal(t, glBotUser, st.Author)
		}
	}
	var sticky []gitlabfake.Note
	for _, n := range w.project.Notes(iid) {
		if _, ok := comments.MarkerPart(n.Body); ok && !n.Deleted {
			sticky = append(sticky, n)
		}
	}
	require.Len(t, sticky, 1, "one sticky note")
	assert.Equal(t, glBotUser, sticky[0].Author)
	assert.Contains(t, sticky[0].Body, "customer_totals")

	noteID := w.project.AddNote(iid, "bob", "/dagctl help")
	help := glDelivery{event: "Note Hook", token: glHookSecret, uuid: "help-uuid", idempotencyKey: "help-key",
		body: w.noteHook(iid, noteID, "bob", "/dagctl help", head).body(t)}
	status, _ = w.post("/webhooks/gitlab", help)
	assert.Equal(t, http.StatusAccepted, status)
	w.settle()
	notes := w.project.Notes(iid)
	last := notes[len(notes)-1]
	assert.Equal(t, glBotUser, last.Author, "the bot replied")
	assert.Contains(t, last.Body, command.Usage)
	var awards []gitlabfake.Award
	for _, n := range notes {
		if n.ID == noteID {
			awards = n.Awards
		}
	}
	if assert.Len(t, awards, 1, "one award emoji on the command note") {
		assert.Equal(t, "eyes", awards[0].Name)
		assert.Equal(t, glBotUser, awards[0].User)
	}

	status, body := w.get("/readyz")
	assert.Equal(t, http.StatusOK, status)
	assert.NotContains(t, body, serverconfig.EnvGitLabCloneToken, "a clone token is set")
}
