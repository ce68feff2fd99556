// Package memforge is an in-process forge with real state behind the vcs.Forge port: repositories with commits
// (files per commit, parents, authors), branches, pull requests, reviews with their commit and time,
// comments (ByBot only for the bot's own account), reactions, statuses with their history, permissions and
// teams. Handler tests run against it in milliseconds; the chaos and soak runs use it as their forge.
//
// Its clock is the forge's: every write advances it by one second, so that "before" and "after" (a review
// given after a status was posted) are decided by the order of events, never by the wall clock.
package memforge

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// Name is the forge name memforge answers to in vcs.Repo.Forge.
const Name = "memforge"

// BotLogin is the bot's own account: comments the bot writes are its, and only those are ByBot.
const BotLogin = "dagctl-bot[bot]"

// DefaultFileListCap is how many files ChangedFiles lists before it says Truncated (GitHub's 3,000).
const DefaultFileListCap = 3000

// Delete, as a file's content in Commit, removes the file.
const Delete = "\x00delete"

// Forge is the fake. Its zero value is not usable: use New.
type Forge struct {
	mu     sync.Mutex
	now    time.Time
	nextID int64
	repos  map[string]*repo
	// FileListCap bounds ChangedFiles (and Tree when TreeCap is set); set it before use.
	FileListCap int
	// TreeCap, when positive, truncates Tree after that many files.
	TreeCap int
	limits  vcs.Limits
	fail    failures
	// gitlabReviews, when set, lists reviews in GitLab's shape (GitLabReviews).
	gitlabReviews *gitlabMode
	// pipelines: statuses join pipelines, as GitLab's do (GitLabPipelines).
	pipelines bool
}

type commit struct {
	sha     string
	parents []string
	author  string
	files   map[string]string // path → content
}

type pullRequest struct {
	pr      vcs.PullRequest
	reviews []vcs.Review
}

type comment struct {
	vcs.Comment
	number  int
	deleted bool
	history []string // earlier bodies
}

// Status is a status as memforge holds it, one per (commit, name) as a status-only forge keeps them (GitLab's
// commit statuses): its newest write, every write it had, and when it last reached a final state.
type Status struct {
	vcs.Status
	ID       int64
	PostedAt time.Time // zero while not final
	History  []vcs.Status
}

type repo struct {
	info        vcs.Repo
	commits     map[string]*commit
	branches    map[string]string
	prs         map[int]*pullRequest
	comments    []*comment
	reactions   map[int64][]vcs.Reaction
	statuses    []*Status
	permissions map[string]vcs.Permission
	teams       map[string]map[string]bool
}

// New returns an empty forge whose clock starts at a fixed instant.
func New() *Forge {
	return &Forge{
		now:         time.Date(2024, 1, 15, 9, 0, 0, 0, time.UTC),
		repos:       map[string]*repo{},
		FileListCap: DefaultFileListCap,
		limits:      vcs.Limits{CommentChars: 65536, CheckOutputSize: 65535},
	}
}

// SetLimits changes the size limits the forge reports.
func (f *Forge) SetLimits(l vcs.Limits) { f.mu.Lock(); f.limits = l; f.mu.Unlock() }

// tick advances the forge's clock and returns the new instant. The caller holds mu.
func (f *Forge) tick() time.Time {
	f.now = f.now.Add(time.Second)
	return f.now
}

func (f *Forge) id() int64 { f.nextID++; return f.nextID }

// Now is the forge's clock.
func (f *Forge) Now() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.now }

// AddRepo creates owner/name with a default branch and an initial commit of files by author.
func (f *Forge) AddRepo(owner, name, defaultBranch, author string, files map[string]string) vcs.Repo {
	f.mu.Lock()
	defer f.mu.Unlock()
	info := vcs.Repo{Forge: Name, Owner: owner, Name: name, DefaultBranch: defaultBranch,
		CloneURL: "memforge://" + owner + "/" + name}
	r := &repo{info: info, commits: map[string]*commit{}, branches: map[string]string{}, prs: map[int]*pullRequest{},
		reactions: map[int64][]vcs.Reaction{}, permissions: map[string]vcs.Permission{}, teams: map[string]map[string]bool{}}
	f.repos[info.FullName()] = r
	c := r.newCommit(nil, author, files)
	r.branches[defaultBranch] = c.sha
	return info
}

func (f *Forge) repo(r vcs.Repo) (*repo, error) {
	got, ok := f.repos[r.FullName()]
	if !ok {
		return nil, fmt.Errorf("repository %s: %w", r.FullName(), vcs.ErrNotFound)
	}
	return got, nil
}

// must is repo for the test-side helpers, which are given repositories the test created.
func (f *Forge) must(r vcs.Repo) *repo {
	got, err := f.repo(r)
	if err != nil {
		panic(err)
	}
	return got
}

// newCommit stores a commit of files on top of parents (the first parent's files, changed by files). Its SHA
// is derived from its content, parents and author, so equal histories give equal SHAs.
func (r *repo) newCommit(parents []string, author string, files map[string]string) *commit {
	all := map[string]string{}
	if len(parents) > 0 {
		for k, v := range r.commits[parents[0]].files {
			all[k] = v
		}
	}
	for k, v := range files {
		if v == Delete {
			delete(all, k)
		} else {
			all[k] = v
		}
	}
	h := sha1.New()
	fmt.Fprintf(h, "parents %v\nauthor %s\nn %d\n", parents, author, len(r.commits))
	for _, p := range sortedKeys(all) {
		fmt.Fprintf(h, "%s\x00%s\x00", p, blobID(all[p]))
	}
	c := &commit{sha: hex.EncodeToString(h.Sum(nil)), parents: parents, author: author, files: all}
	r.commits[c.sha] = c
	return c
}

// Commit adds a commit of files (Delete removes one) by author on top of branch (created from the default
// branch when missing) and returns its SHA.
func (f *Forge) Commit(rp vcs.Repo, branch, author string, files map[string]string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.must(rp)
	parent, ok := r.branches[branch]
	if !ok {
		parent = r.branches[r.info.DefaultBranch]
	}
	c := r.newCommit([]string{parent}, author, files)
	r.branches[branch] = c.sha
	f.tick()
	return c.sha
}

// Merge merges branch into into with a merge commit by author and returns the merge commit.
func (f *Forge) Merge(rp vcs.Repo, into, branch, author string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.must(rp)
	base, head := r.branches[into], r.branches[branch]
	// The merge's files: the target's, with what the branch changed since their merge base.
	mb := r.mergeBase(base, head)
	changes := map[string]string{}
	for p, v := range r.commits[head].files {
		if r.commits[mb].files[p] != v {
			changes[p] = v
		}
	}
	for p := range r.commits[mb].files {
		if _, ok := r.commits[head].files[p]; !ok {
			changes[p] = Delete
		}
	}
	c := r.newCommit([]string{base, head}, author, changes)
	r.branches[into] = c.sha
	f.tick()
	return c.sha
}

// BranchSHA is the commit a branch points to, for the test.
func (f *Forge) BranchSHA(rp vcs.Repo, branch string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.must(rp).branches[branch]
}

// Files are the files of a commit (nil for an unknown commit): what a job would check out.
func (f *Forge) Files(rp vcs.Repo, sha string) map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.must(rp).commits[sha]
	if !ok {
		return nil
	}
	out := make(map[string]string, len(c.files))
	for k, v := range c.files {
		out[k] = v
	}
	return out
}

// FilesOf finds a commit's files in any repository: what a replayed or captured job checks out from its SHA.
func (f *Forge) FilesOf(sha string) (map[string]string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.repos {
		if c, ok := r.commits[sha]; ok {
			out := make(map[string]string, len(c.files))
			for k, v := range c.files {
				out[k] = v
			}
			return out, true
		}
	}
	return nil, false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func blobID(content string) string {
	sum := sha1.Sum([]byte("blob " + fmt.Sprint(len(content)) + "\x00" + content))
	return hex.EncodeToString(sum[:])
}

// ancestors is every commit reachable from sha, sha included.
func (r *repo) ancestors(sha string) map[string]bool {
	seen := map[string]bool{}
	stack := []string{sha}
	for len(stack) > 0 {
		s := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[s] || r.commits[s] == nil {
			continue
		}
		seen[s] = true
		stack = append(stack, r.commits[s].parents...)
	}
	return seen
}

// mergeBase is the first common ancestor found walking back from head, breadth first.
func (r *repo) mergeBase(base, head string) string {
	inBase := r.ancestors(base)
	queue := []string{head}
	seen := map[string]bool{}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		if seen[s] || r.commits[s] == nil {
			continue
		}
		seen[s] = true
		if inBase[s] {
			return s
		}
		queue = append(queue, r.commits[s].parents...)
	}
	return ""
}

// resolve turns a branch name or a commit SHA into a commit.
func (r *repo) resolve(ref string) (*commit, error) {
	ref = strings.TrimPrefix(ref, "refs/heads/")
	if sha, ok := r.branches[ref]; ok {
		return r.commits[sha], nil
	}
	if c, ok := r.commits[ref]; ok {
		return c, nil
	}
	return nil, fmt.Errorf("ref %q: %w", ref, vcs.ErrNotFound)
}

// Advance moves the forge's clock forward.
func (f *Forge) Advance(d time.Duration) { f.mu.Lock(); defer f.mu.Unlock(); f.now = f.now.Add(d) }
