package memforge

import (
	"slices"
	"time"

	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// The test's side of the forge: what people do on it, and what the test observes.

// OpenPR opens (or updates) a pull request from branch into base, with its head and base at the branches' current
// commits, and returns it as the forge reports it.
func (f *Forge) OpenPR(rp vcs.Repo, number int, branch, base, author string) vcs.PullRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.must(rp)
	pr := vcs.PullRequest{Repo: r.info, Number: number, Title: "Change " + branch, Author: author,
		HeadSHA: r.branches[branch], BaseSHA: r.branches[base], HeadRef: branch, BaseRef: base,
		HeadCloneURL: r.info.CloneURL, State: "open"}
	if old, ok := r.prs[number]; ok {
		old.pr = pr
	} else {
		r.prs[number] = &pullRequest{pr: pr}
	}
	f.tick()
	return pr
}

// UpdatePR changes a pull request as the forge holds it (a push moved its head, it was closed or merged, it is
// a draft or a fork's).
func (f *Forge) UpdatePR(rp vcs.Repo, number int, change func(*vcs.PullRequest)) vcs.PullRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.must(rp).prs[number]
	change(&p.pr)
	f.tick()
	return p.pr
}

// Review adds a review by user on commit sha, submitted now on the forge's clock, and returns it.
func (f *Forge) Review(rp vcs.Repo, number int, user string, state vcs.ReviewState, sha string) vcs.Review {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.must(rp).prs[number]
	rv := vcs.Review{ID: f.id(), User: user, State: state, CommitSHA: sha, SubmittedAt: f.tick()}
	p.reviews = append(p.reviews, rv)
	return rv
}

// DismissReview dismisses a review.
func (f *Forge) DismissReview(rp vcs.Repo, number int, id int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.must(rp).prs[number]
	for i := range p.reviews {
		if p.reviews[i].ID == id {
			p.reviews[i].State = vcs.ReviewDismissed
		}
	}
	f.tick()
}

// SetPermission sets a user's access to the repository.
func (f *Forge) SetPermission(rp vcs.Repo, user string, p vcs.Permission) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.must(rp).permissions[user] = p
}

// AddToTeam makes user a member of team ("org/slug", or a slug of the repository's owner).
func (f *Forge) AddToTeam(rp vcs.Repo, team, user string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.must(rp)
	team = r.teamKey(team)
	if r.teams[team] == nil {
		r.teams[team] = map[string]bool{}
	}
	r.teams[team][user] = true
}

func (r *repo) teamKey(team string) string {
	for i := 0; i < len(team); i++ {
		if team[i] == '/' {
			return team
		}
	}
	return r.info.Owner + "/" + team
}

// AddComment is user commenting on the PR; it returns the comment as the forge delivers it.
func (f *Forge) AddComment(rp vcs.Repo, number int, user, body string) vcs.Comment {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.addComment(f.must(rp), number, user, body).Comment
}

func (f *Forge) addComment(r *repo, number int, user, body string) *comment {
	c := &comment{Comment: vcs.Comment{ID: f.id(), Author: user, Body: body, ByBot: user == BotLogin}, number: number}
	r.comments = append(r.comments, c)
	f.tick()
	return c
}

// CommentsOf are the PR's comments that are not deleted, oldest first.
func (f *Forge) CommentsOf(rp vcs.Repo, number int) []vcs.Comment {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []vcs.Comment
	for _, c := range f.must(rp).comments {
		if c.number == number && !c.deleted {
			out = append(out, c.Comment)
		}
	}
	return out
}

// CommentHistory is a comment's earlier bodies (empty: never edited) and whether it was deleted.
func (f *Forge) CommentHistory(rp vcs.Repo, id int64) (history []string, deleted bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.must(rp).comments {
		if c.ID == id {
			return append([]string(nil), c.history...), c.deleted
		}
	}
	return nil, false
}

// ReactionsOf are the reactions on a comment, oldest first.
func (f *Forge) ReactionsOf(rp vcs.Repo, commentID int64) []vcs.Reaction {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]vcs.Reaction(nil), f.must(rp).reactions[commentID]...)
}

// Statuses are every status the bot wrote, in the order they were first written, each with its history.
func (f *Forge) Statuses(rp vcs.Repo) []Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Status
	for _, st := range f.must(rp).statuses {
		cp := *st
		cp.History = append([]vcs.Status(nil), st.History...)
		out = append(out, cp)
	}
	return out
}

// StatusNamed is the status with that name on the commit.
func (f *Forge) StatusNamed(rp vcs.Repo, name, sha string) (Status, bool) {
	for _, st := range f.Statuses(rp) {
		if st.Name == name && st.CommitSHA == sha {
			return st, true
		}
	}
	return Status{}, false
}

// States are every state the status went through, oldest first.
func (s Status) States() []vcs.StatusState {
	var out []vcs.StatusState
	for _, h := range s.History {
		out = append(out, h.State)
	}
	return out
}

// Unapprove withdraws user's approvals of the PR, as GitLab's unapprove does: its approvals API lists them no more.
// It returns the forge's time of the withdrawal.
func (f *Forge) Unapprove(rp vcs.Repo, number int, user string) time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.must(rp).prs[number]
	p.reviews = slices.DeleteFunc(p.reviews, func(r vcs.Review) bool {
		return r.User == user && r.State == vcs.ReviewApproved
	})
	return f.tick()
}
