package githubfake

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Repo is a repository on the fake. Its methods drive and inspect the repository's state.
type Repo struct {
	f             *Fake
	id            int64
	owner, name   string
	gitDir        string // "" when the repository has no code
	defaultBranch string

	prs         map[int]*PR
	reviews     map[int][]*Review
	comments    []*Comment
	reactions   map[int64][]Reaction
	checkRuns   []*CheckRun
	permissions map[string]string // login → GitHub role
}

// AddRepo registers owner/name. gitDir is a git repository on disk (bare or with a work tree) that serves the
// contents API and git clones; "" for a repository without code. defaultBranch "" means "main".
func (f *Fake) AddRepo(owner, name, gitDir, defaultBranch string) *Repo {
	if defaultBranch == "" {
		defaultBranch = "main"
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.userID(owner)
	r := &Repo{
		f: f, id: f.newID(), owner: owner, name: name, gitDir: gitDir, defaultBranch: defaultBranch,
		prs: map[int]*PR{}, reviews: map[int][]*Review{}, reactions: map[int64][]Reaction{},
		permissions: map[string]string{},
	}
	f.repos[strings.ToLower(owner+"/"+name)] = r
	return r
}

// Repo returns a registered repository.
func (f *Fake) Repo(owner, name string) (*Repo, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.repos[strings.ToLower(owner+"/"+name)]
	return r, ok
}

// FullName is owner/name.
func (r *Repo) FullName() string { return r.owner + "/" + r.name }

// ID is the repository's numeric id.
func (r *Repo) ID() int64 { return r.id }

// CloneURL is where git clones the repository from (with the installation token as password).
func (r *Repo) CloneURL() string { return r.f.URL() + "/" + r.owner + "/" + r.name + ".git" }

// HTMLURL is the repository's web address on the fake.
func (r *Repo) HTMLURL() string { return r.f.URL() + "/" + r.owner + "/" + r.name }

// DefaultBranch is the repository's default branch.
func (r *Repo) DefaultBranch() string { return r.defaultBranch }

// PR is a pull request on the fake.
type PR struct {
	Number  int
	Title   string
	Body    string
	Author  string
	HeadRef string
	HeadSHA string
	BaseRef string
	BaseSHA string
	// HeadRepo is the "owner/name" of a fork holding the head; "" when the head is in this repository.
	HeadRepo       string
	Draft          bool
	State          string // "open" (default) or "closed"
	Merged         bool
	MergeCommitSHA string
	// Mergeable nil means GitHub is still computing it.
	Mergeable *bool
	// Commits, when set, are what the commits endpoint lists; otherwise the git history BaseSHA..HeadSHA is.
	Commits []Commit
}

// Commit is a commit as the pull request commits endpoint lists it.
type Commit struct {
	SHA            string
	Message        string
	AuthorName     string
	AuthorEmail    string
	CommitterName  string
	CommitterEmail string
	Date           time.Time
}

// SetPR creates or replaces a pull request. Like GitHub, it points refs/pull/<number>/head of a git-backed
// repository at the head commit when that commit is in the repository, so fork heads can be fetched from the
// base repository.
func (r *Repo) SetPR(pr PR) {
	if pr.State == "" {
		pr.State = "open"
	}
	if pr.BaseRef == "" {
		pr.BaseRef = r.defaultBranch
	}
	if r.gitDir != "" && pr.HeadSHA != "" {
		if sha, err := resolveCommit(r.gitDir, pr.HeadSHA); err == nil {
			_, _ = git(r.gitDir, "update-ref", fmt.Sprintf("refs/pull/%d/head", pr.Number), sha)
		}
	}
	r.f.mu.Lock()
	defer r.f.mu.Unlock()
	r.f.userID(pr.Author)
	cp := pr
	r.prs[pr.Number] = &cp
}

// PR returns a pull request.
func (r *Repo) PR(number int) (PR, bool) {
	r.f.mu.Lock()
	defer r.f.mu.Unlock()
	pr, ok := r.prs[number]
	if !ok {
		return PR{}, false
	}
	return *pr, true
}

// Review is a pull request review. State is GitHub's API spelling: APPROVED, CHANGES_REQUESTED, COMMENTED,
// DISMISSED or PENDING.
type Review struct {
	ID          int64
	User        string
	State       string
	Body        string
	CommitID    string
	SubmittedAt time.Time
}

// AddReview adds a review to a pull request and returns its id (assigned when zero). A zero SubmittedAt is the
// fake's now.
func (r *Repo) AddReview(number int, review Review) int64 {
	r.f.mu.Lock()
	defer r.f.mu.Unlock()
	if review.ID == 0 {
		review.ID = r.f.newID()
	}
	if review.SubmittedAt.IsZero() {
		// A person reviews after seeing what the bot posted: a second later on the fake's clock, so the review's
		// time is after the plan check's completion, as the approval rules require.
		r.f.now = r.f.now.Add(time.Second)
		review.SubmittedAt = r.f.now
	}
	r.f.userID(review.User)
	r.reviews[number] = append(r.reviews[number], &review)
	return review.ID
}

// DismissReview sets a review's state to DISMISSED.
func (r *Repo) DismissReview(number int, id int64) {
	r.f.mu.Lock()
	defer r.f.mu.Unlock()
	for _, rv := range r.reviews[number] {
		if rv.ID == id {
			rv.State = "DISMISSED"
		}
	}
}

// SetPermission gives user a role on the repository: admin, maintain, write, triage, read or none. The
// permission endpoint answers the folded permission and the role name, as GitHub does.
func (r *Repo) SetPermission(user, role string) {
	r.f.mu.Lock()
	defer r.f.mu.Unlock()
	r.f.userID(user)
	r.permissions[strings.ToLower(user)] = role
}

// Comment is an issue comment on a pull request.
type Comment struct {
	ID        int64
	Number    int
	User      string
	Bot       bool
	Body      string
	CreatedAt time.Time
	UpdatedAt time.Time
	// History holds the earlier bodies, oldest first.
	History []string
	Deleted bool
}

// AddComment adds a comment by user (a person) to a pull request and returns its id.
func (r *Repo) AddComment(number int, user, body string) int64 {
	r.f.mu.Lock()
	defer r.f.mu.Unlock()
	r.f.userID(user)
	return r.addComment(number, user, false, body).ID
}

// addComment appends a comment. Callers hold f.mu.
func (r *Repo) addComment(number int, user string, bot bool, body string) *Comment {
	c := &Comment{
		ID: r.f.newID(), Number: number, User: user, Bot: bot, Body: body, CreatedAt: r.f.now, UpdatedAt: r.f.now,
	}
	r.comments = append(r.comments, c)
	return c
}

// Comments returns the live (not deleted) comments on a pull request, oldest first.
func (r *Repo) Comments(number int) []Comment {
	r.f.mu.Lock()
	defer r.f.mu.Unlock()
	var out []Comment
	for _, c := range r.comments {
		if c.Number == number && !c.Deleted {
			out = append(out, c.copy())
		}
	}
	return out
}

// Comment returns a comment by id, deleted ones included, with its edit history.
func (r *Repo) Comment(id int64) (Comment, bool) {
	r.f.mu.Lock()
	defer r.f.mu.Unlock()
	c := r.findComment(id, true)
	if c == nil {
		return Comment{}, false
	}
	return c.copy(), true
}

func (c *Comment) copy() Comment {
	cp := *c
	cp.History = append([]string(nil), c.History...)
	return cp
}

func (r *Repo) findComment(id int64, withDeleted bool) *Comment {
	for _, c := range r.comments {
		if c.ID == id && (withDeleted || !c.Deleted) {
			return c
		}
	}
	return nil
}

// Reaction is an emoji reaction on a comment.
type Reaction struct {
	ID      int64
	User    string
	Content string
}

// Reactions returns the reactions on a comment.
func (r *Repo) Reactions(commentID int64) []Reaction {
	r.f.mu.Lock()
	defer r.f.mu.Unlock()
	return append([]Reaction(nil), r.reactions[commentID]...)
}

// CheckRunState is what a check run showed at one moment.
type CheckRunState struct {
	Status     string
	Conclusion string
	Title      string
	Summary    string
	Text       string
	DetailsURL string
	ExternalID string
	// At is on the fake's clock.
	At time.Time
}

// CheckRun is a check run with every state it went through (History[0] is the state it was created with; the
// last entry equals the current state).
type CheckRun struct {
	ID      int64
	Name    string
	HeadSHA string
	AppID   int64
	CheckRunState
	StartedAt   time.Time
	CompletedAt time.Time
	History     []CheckRunState
}

func (c *CheckRun) copy() CheckRun {
	cp := *c
	cp.History = append([]CheckRunState(nil), c.History...)
	return cp
}

// CheckRuns returns every check run of the repository, in creation order.
func (r *Repo) CheckRuns() []CheckRun {
	r.f.mu.Lock()
	defer r.f.mu.Unlock()
	out := make([]CheckRun, 0, len(r.checkRuns))
	for _, c := range r.checkRuns {
		out = append(out, c.copy())
	}
	return out
}

// CheckRun returns the latest check run with this name on headSHA.
func (r *Repo) CheckRun(name, headSHA string) (CheckRun, bool) {
	r.f.mu.Lock()
	defer r.f.mu.Unlock()
	for i := len(r.checkRuns) - 1; i >= 0; i-- {
		c := r.checkRuns[i]
		if c.Name == name && c.HeadSHA == headSHA {
			return c.copy(), true
		}
	}
	return CheckRun{}, false
}

// Statuses lists the statuses a check run went through, e.g. [queued in_progress completed].
func (c CheckRun) Statuses() []string {
	var out []string
	for _, s := range c.History {
		out = append(out, s.Status)
	}
	return out
}

// String shows a check run briefly, for test failure messages.
func (c CheckRun) String() string {
	return fmt.Sprintf("%s@%.7s %s/%s %q", c.Name, c.HeadSHA, c.Status, c.Conclusion, c.Title)
}

// prsForSHA lists the open pull requests of this repository whose head is sha. Callers hold f.mu.
func (r *Repo) prsForSHA(sha string) []*PR {
	var out []*PR
	for _, pr := range r.prs {
		if pr.HeadSHA == sha && pr.HeadRepo == "" && pr.State == "open" {
			out = append(out, pr)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Number < out[j].Number })
	return out
}
