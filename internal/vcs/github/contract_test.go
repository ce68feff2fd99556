package github_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/forgetest/githubfake"
	"github.com/dagctl/dagctl-bot/internal/vcs"
	"github.com/dagctl/dagctl-bot/internal/vcs/github"
	"github.com/dagctl/dagctl-bot/internal/vcs/vcstest"
)

// The GitHub adapter meets the port's contract, through the App (as the server uses it) over the fake.
func TestGitHubMeetsThePortContract(t *testing.T) {
	vcstest.Run(t, func(t *testing.T) vcstest.World { return &contractWorld{env: newEnv(t)} })
}

type contractWorld struct {
	*env
	prs int
}

func (w *contractWorld) Forge() vcs.Forge { return w.app }
func (w *contractWorld) Repo() vcs.Repo   { return w.repo }
func (w *contractWorld) Now() time.Time   { return w.fake.Now() }

func (w *contractWorld) Advance(d time.Duration) { w.fake.Advance(d) }
func (w *contractWorld) MaxChangedFiles() int    { return githubfake.MaxPRFiles }
func (w *contractWorld) BotLookalike() string    { return testAppSlug + "[bot]" }

func (w *contractWorld) OpenPR(files map[string]string) (int, string) {
	w.prs++
	branch := fmt.Sprintf("contract-%d", w.prs)
	w.git.Git("checkout", "--quiet", "-b", branch, "main")
	// Written and added at once: a git process per file would take seconds past GitHub's file cap.
	for name, content := range files {
		path := filepath.Join(w.git.Dir, filepath.FromSlash(name))
		require.NoError(w.t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(w.t, os.WriteFile(path, []byte(content), 0o644))
	}
	w.git.Git("add", "--all")
	w.git.Git("commit", "--quiet", "-m", "change on "+branch)
	head := w.git.SHA("HEAD")
	w.fr.SetPR(githubfake.PR{Number: w.prs, Title: branch, Author: "alice", HeadRef: branch, HeadSHA: head,
		BaseRef: "main", BaseSHA: w.git.SHA("main")})
	return w.prs, head
}

func (w *contractWorld) CommentAs(number int, login, body string) {
	w.fr.AddComment(number, login, body)
}

// CommentAsOtherBot comments as another app installed on the same account.
func (w *contractWorld) CommentAsOtherBot(number int, body string) {
	const otherAppID, otherInstallation = 5151, 78
	pemBytes, pub := appKey(w.t)
	w.fake.AddApp(otherAppID, "other-app", pub)
	w.fake.AddInstallation(githubfake.Installation{ID: otherInstallation, AppID: otherAppID, Account: testOwner})
	other, err := github.NewInstallation(github.Config{AppID: otherAppID, PrivateKey: pemBytes,
		APIURL: w.fake.APIURL(), Now: w.fake.Now, Sleep: w.sleep, MinWriteInterval: -1}, otherInstallation)
	require.NoError(w.t, err)
	repo := w.repo
	repo.Account = other.Account()
	_, err = other.CreateComment(w.ctx, repo, number, body)
	require.NoError(w.t, err)
}

func (w *contractWorld) Approve(number int, user string) time.Time {
	pr, ok := w.fr.PR(number)
	require.True(w.t, ok)
	w.fr.AddReview(number, githubfake.Review{User: user, State: "APPROVED", CommitID: pr.HeadSHA})
	return w.fake.Now() // the fake stamps a review with its clock
}

// Shown maps the fake's check runs back to the core's states, by GitHub's documented meaning.
func (w *contractWorld) Shown(commit, name string) []vcstest.Shown {
	var out []vcstest.Shown
	for _, c := range w.fr.CheckRuns() {
		if c.HeadSHA != commit || c.Name != name {
			continue
		}
		state := map[string]vcs.StatusState{"queued": vcs.StatusQueued, "in_progress": vcs.StatusRunning}[c.Status]
		if c.Status == "completed" {
			state = map[string]vcs.StatusState{
				"success": vcs.StatusSuccess, "failure": vcs.StatusFailure, "neutral": vcs.StatusNeutral,
				"cancelled": vcs.StatusCancelled, "skipped": vcs.StatusSkipped, "action_required": vcs.StatusBlocked,
			}[c.Conclusion]
		}
		out = append(out, vcstest.Shown{State: state, Description: c.Title})
	}
	return out
}
