package gitlab_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/forgetest/gitlabfake"
	"github.com/dagctl/dagctl-bot/internal/vcs"
	"github.com/dagctl/dagctl-bot/internal/vcs/gitlab"
	"github.com/dagctl/dagctl-bot/internal/vcs/vcstest"
)

// The GitLab adapter meets the port's contract over the fake, through HTTP.
func TestGitLabMeetsThePortContract(t *testing.T) {
	vcstest.Run(t, func(t *testing.T) vcstest.World { return &contractWorld{env: newEnv(t)} })
}

type contractWorld struct{ *env }

func (w *contractWorld) Forge() vcs.Forge        { return w.forge }
func (w *contractWorld) Repo() vcs.Repo          { return w.repo }
func (w *contractWorld) Now() time.Time          { return w.fake.Now() }
func (w *contractWorld) Advance(d time.Duration) { w.fake.Advance(d) }
func (w *contractWorld) MaxChangedFiles() int    { return gitlabfake.DefaultMaxMRFiles }
func (w *contractWorld) BotLookalike() string    { return "dagctl_bot" }

func (w *contractWorld) OpenPR(files map[string]string) (int, string) { return w.openMR(files) }

func (w *contractWorld) CommentAs(number int, login, body string) {
	w.project.AddNote(int64(number), login, body)
}

// CommentAsOtherBot comments through the API as another bot account that is a member of the project.
func (w *contractWorld) CommentAsOtherBot(number int, body string) {
	w.fake.AddUser(gitlabfake.User{Username: "project_1_bot_other", Bot: true})
	w.project.SetMember("project_1_bot_other", gitlabfake.Developer)
	_, err := w.adapter(w.fake.AddToken("project_1_bot_other")).CreateComment(w.ctx, w.repo, number, body)
	require.NoError(w.t, err)
}

func (w *contractWorld) Approve(number int, user string) time.Time {
	return w.project.Approve(int64(number), user)
}

// Shown is what the merge request page shows of the statuses with this name on a commit (the newest of each
// name: GitLab lists retried ones only when asked), in the core's words by the adapter's documented mapping:
// GitLab's pending is queued before the status first started or ended, and blocked after (the bot never
// queues a status again on the same commit once it ran); a success whose description starts with the neutral
// prefix is neutral.
func (w *contractWorld) Shown(commit, name string) []vcstest.Shown {
	all := w.project.Statuses(commit)
	begun := false
	for _, s := range all {
		if s.Name == name && (!s.StartedAt.IsZero() || !s.FinishedAt.IsZero()) {
			begun = true
		}
	}
	var out []vcstest.Shown
	for _, s := range all {
		if s.Name != name || s.Retried {
			continue
		}
		state := map[string]vcs.StatusState{"running": vcs.StatusRunning, "success": vcs.StatusSuccess,
			"failed": vcs.StatusFailure, "canceled": vcs.StatusCancelled, "skipped": vcs.StatusSkipped}[s.Status]
		desc := s.Description
		switch {
		case s.Status == "pending" && begun:
			state = vcs.StatusBlocked
		case s.Status == "pending":
			state = vcs.StatusQueued
		case s.Status == "success" && strings.HasPrefix(desc, gitlab.NeutralPrefix):
			state, desc = vcs.StatusNeutral, strings.TrimPrefix(desc, gitlab.NeutralPrefix)
		}
		out = append(out, vcstest.Shown{State: state, Description: desc})
	}
	return out
}
