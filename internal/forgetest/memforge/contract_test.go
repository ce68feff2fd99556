package memforge_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/dagctl/dagctl-bot/internal/forgetest/memforge"
	"github.com/dagctl/dagctl-bot/internal/vcs"
	"github.com/dagctl/dagctl-bot/internal/vcs/vcstest"
)

// memforge meets the port's contract as the GitHub adapter does, so handler tests on it stand for a real forge.
func TestMemforgeMeetsThePortContract(t *testing.T) {
	vcstest.Run(t, func(t *testing.T) vcstest.World {
		f, repo := newRepo(t)
		f.FileListCap = 50 // GitHub's 3,000 would only make the test slower
		return &contractWorld{f: f, repo: repo}
	})
}

type contractWorld struct {
	f    *memforge.Forge
	repo vcs.Repo
	prs  int
}

func (w *contractWorld) Forge() vcs.Forge        { return w.f }
func (w *contractWorld) Repo() vcs.Repo          { return w.repo }
func (w *contractWorld) Now() time.Time          { return w.f.Now() }
func (w *contractWorld) Advance(d time.Duration) { w.f.Advance(d) }
func (w *contractWorld) MaxChangedFiles() int    { return w.f.FileListCap }
func (w *contractWorld) BotLookalike() string    { return "dagctl-bot" }

func (w *contractWorld) OpenPR(files map[string]string) (int, string) {
	w.prs++
	branch := fmt.Sprintf("contract-%d", w.prs)
	head := w.f.Commit(w.repo, branch, "alice", files)
	w.f.OpenPR(w.repo, w.prs, branch, "main", "alice")
	return w.prs, head
}

func (w *contractWorld) CommentAs(number int, login, body string) {
	w.f.AddComment(w.repo, number, login, body)
}
func (w *contractWorld) CommentAsOtherBot(number int, body string) {
	w.f.AddComment(w.repo, number, "other-app[bot]", body)
}

func (w *contractWorld) Approve(number int, user string) time.Time {
	pr := w.f.UpdatePR(w.repo, number, func(*vcs.PullRequest) {})
	return w.f.Review(w.repo, number, user, vcs.ReviewApproved, pr.HeadSHA).SubmittedAt
}

// Shown is memforge's one status of the commit and name, as it holds it.
func (w *contractWorld) Shown(commit, name string) []vcstest.Shown {
	st, ok := w.f.StatusNamed(w.repo, name, commit)
	if !ok {
		return nil
	}
	return []vcstest.Shown{{State: st.State, Description: st.Description}}
}
