package outbox_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/forgetest/githubfake"
	"github.com/dagctl/dagctl-bot/internal/forgetest/gitlabfake"
	"github.com/dagctl/dagctl-bot/internal/outbox"
	"github.com/dagctl/dagctl-bot/internal/vcs"
	"github.com/dagctl/dagctl-bot/internal/vcs/gitlab"
)

// glWorld is gitlabfake over HTTP with one merge request, the GitLab adapter and an outbox on a store.
type glWorld struct {
	t       *testing.T
	fake    *gitlabfake.Fake
	project *gitlabfake.Project
	head    string
	iid     int64
	repo    vcs.Repo
	acct    outbox.Account
	store   *db.Store
	box     *outbox.Outbox
}

func newGLWorld(t *testing.T) *glWorld {
	t.Helper()
	fake := gitlabfake.New(t)
	fake.AddUser(gitlabfake.User{Username: "dagctl-bot", Bot: true})
	token := fake.AddToken("dagctl-bot")
	git := githubfake.NewGitRepo(t, "main")
	base := git.Commit("main", map[string]string{"README.md": "hello"}, "init")
	head := git.Commit("change", map[string]string{"README.md": "hello again"}, "change")
	project := fake.AddProject("acme", "warehouse", git.Dir, "main")
	project.SetMember("dagctl-bot", gitlabfake.Developer)
	iid := project.SetMR(gitlabfake.MR{Title: "Change", Author: "alice", SourceBranch: "change", HeadSHA: head, BaseSHA: base})
	forge, err := gitlab.New(gitlab.Options{BaseURL: fake.URL(), Token: token, HTTPClient: fake.Client(), Now: fake.Now})
	require.NoError(t, err)
	store, err := db.Open(filepath.Join(t.TempDir(), "dagctl.db"), db.WithClock(fake.Now))
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	repo := vcs.Repo{Forge: gitlab.Name, Owner: "acme", Name: "warehouse"}
	box := outbox.New(store, func(outbox.Account) (outbox.Forge, error) { return forge, nil },
		outbox.Config{Now: fake.Now, Sleep: fake.Sleep, Log: slog.New(slog.DiscardHandler)})
	return &glWorld{t: t, fake: fake, project: project, head: head, iid: iid, repo: repo, acct: outbox.AccountOf(repo), store: store, box: box}
}

func (w *glWorld) put(name string, state vcs.StatusState, desc string) {
	w.t.Helper()
	st := vcs.Status{Name: name, CommitSHA: w.head, State: state, Description: desc, Output: &vcs.StatusOutput{Title: desc, Summary: "long"}}
	require.NoError(w.t, w.box.PutStatusSlot(context.Background(), w.acct, w.repo, st, "plan:1", outbox.PriorityResult))
}

func (w *glWorld) rejoin(name string, pipeline int64) bool {
	w.t.Helper()
	return w.rejoinAt(name, pipeline, outbox.PriorityResult)
}

func (w *glWorld) rejoinAt(name string, pipeline int64, prio outbox.Priority) bool {
	w.t.Helper()
	ok, err := w.box.RejoinSlot(context.Background(), w.acct, w.repo, w.head, name, "plan:1", strconv.FormatInt(pipeline, 10), prio)
	require.NoError(w.t, err)
	return ok
}

func (w *glWorld) drain() { w.t.Helper(); require.NoError(w.t, w.box.Drain(context.Background())) }

// inPipeline is the bot's current status of the name in the pipeline.
func (w *glWorld) inPipeline(pipeline int64, name string) (gitlabfake.CommitStatus, bool) {
	for _, s := range w.project.Statuses(w.head) {
		if s.PipelineID == pipeline && s.Name == name && !s.Retried {
			return s, true
		}
	}
	return gitlabfake.CommitStatus{}, false
}

// The statuses the bot showed join the team's pipeline that started after them, as they were shown; the key's
// ref stays the status first written, so the plan's posted time does not move.
func TestARejoinWritesTheShownStatusesIntoTheTeamsPipeline(t *testing.T) {
	w := newGLWorld(t)
	w.put("dagctl/plan: prod", vcs.StatusSuccess, "1 model changed")
	w.put("dagctl/approval: prod", vcs.StatusBlocked, "Waiting for approval")
	w.drain()
	ctx := context.Background()
	firstRef, err := w.box.SlotRef(ctx, w.acct, w.repo, w.head, "dagctl/plan: prod", "plan:1")
	require.NoError(t, err)
	require.NotEmpty(t, firstRef)

	team := w.project.StartPipeline(gitlabfake.TeamPipeline{SHA: w.head, Ref: "change", Jobs: map[string]string{"test": "success"}})
	allowed, _ := w.project.MergeAllowedByPipeline(w.iid)
	require.True(t, allowed, "the hole: the team's pipeline has none of the bot's statuses")

	assert.True(t, w.rejoin("dagctl/plan: prod", team))
	assert.True(t, w.rejoin("dagctl/approval: prod", team))
	assert.False(t, w.rejoin("dagctl/apply: prod", team), "never shown: nothing to write")
	w.drain()
	allowed, why := w.project.MergeAllowedByPipeline(w.iid)
	assert.False(t, allowed, why)
	approval, ok := w.inPipeline(team, "dagctl/approval: prod")
	require.True(t, ok)
	assert.Equal(t, "pending", approval.Status)
	assert.Equal(t, "Waiting for approval", approval.Description)
	plan, ok := w.inPipeline(team, "dagctl/plan: prod")
	require.True(t, ok)
	assert.Equal(t, "success", plan.Status)
	ref, err := w.box.SlotRef(ctx, w.acct, w.repo, w.head, "dagctl/plan: prod", "plan:1")
	require.NoError(t, err)
	assert.Equal(t, firstRef, ref)

	// Asked again (the pipeline's next hook): nothing new is written.
	before := len(w.project.Statuses(w.head))
	assert.True(t, w.rejoin("dagctl/approval: prod", team))
	w.drain()
	assert.Len(t, w.project.Statuses(w.head), before)
}

// The status is read when the rejoin is sent: a newer state sent in between is what joins the pipeline, never
// the state the rejoin saw when it was asked for.
func TestARejoinWritesTheNewestShownState(t *testing.T) {
	w := newGLWorld(t)
	w.put("dagctl/approval: prod", vcs.StatusBlocked, "Waiting for approval")
	w.drain()
	older := w.project.StartPipeline(gitlabfake.TeamPipeline{SHA: w.head, Ref: "change"})
	assert.True(t, w.rejoinAt("dagctl/approval: prod", older, outbox.PriorityProgress))
	newer := w.project.StartPipeline(gitlabfake.TeamPipeline{SHA: w.head, Ref: "change"})
	// Enqueued after the rejoin and sent before it (a higher priority), into the newest pipeline.
	w.put("dagctl/approval: prod", vcs.StatusSuccess, "Approved by bob")
	w.drain()
	for _, pl := range []int64{newer, older} {
		st, ok := w.inPipeline(pl, "dagctl/approval: prod")
		require.True(t, ok, "pipeline %d", pl)
		assert.Equal(t, "success", st.Status, "pipeline %d", pl)
		assert.Equal(t, "Approved by bob", st.Description)
	}
}
