package memforge

import (
	"context"
	"fmt"
	"time"

	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// The vcs.Forge port, as the bot sees the forge. Updates keep what they leave out, as GitHub's do.

var _ vcs.Forge = (*Forge)(nil)

func (f *Forge) PullRequest(_ context.Context, rp vcs.Repo, number int) (vcs.PullRequest, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, err := f.repo(rp)
	if err != nil {
		return vcs.PullRequest{}, err
	}
	p, ok := r.prs[number]
	if !ok {
		return vcs.PullRequest{}, fmt.Errorf("%s#%d: %w", rp.FullName(), number, vcs.ErrNotFound)
	}
	return p.pr, nil
}

func (f *Forge) Reviews(_ context.Context, rp vcs.Repo, number int) ([]vcs.Review, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, err := f.repo(rp)
	if err != nil {
		return nil, err
	}
	p, ok := r.prs[number]
	if !ok {
		return nil, fmt.Errorf("%s#%d: %w", rp.FullName(), number, vcs.ErrNotFound)
	}
	out := append([]vcs.Review(nil), p.reviews...)
	if f.gitlabReviews != nil {
		for i := range out {
			out[i].CommitSHA = "" // GitLab's approvals name no commit
			if !f.gitlabReviews.dated {
				out[i].SubmittedAt = time.Time{} // nor, without approved_at, a time
			}
		}
	}
	return out, nil
}

// CommitAuthors are the authors of the commits the PR's head has and its base branch lacks.
func (f *Forge) CommitAuthors(_ context.Context, rp vcs.Repo, number int) ([]string, error) {
	if err := f.injected("CommitAuthors"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	r, err := f.repo(rp)
	if err != nil {
		return nil, err
	}
	p, ok := r.prs[number]
	if !ok {
		return nil, fmt.Errorf("%s#%d: %w", rp.FullName(), number, vcs.ErrNotFound)
	}
	inBase := r.ancestors(r.branches[p.pr.BaseRef])
	seen := map[string]bool{}
	var out []string
	for sha := range r.ancestors(p.pr.HeadSHA) {
		if a := r.commits[sha].author; !inBase[sha] && a != "" && !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	return out, nil
}

func (f *Forge) Permission(_ context.Context, rp vcs.Repo, user string) (vcs.Permission, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, err := f.repo(rp)
	if err != nil {
		return "", err
	}
	if p, ok := r.permissions[user]; ok {
		return p, nil
	}
	return vcs.PermissionNone, nil
}

func (f *Forge) InTeam(_ context.Context, rp vcs.Repo, team, user string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, err := f.repo(rp)
	if err != nil {
		return false, err
	}
	return r.teams[r.teamKey(team)][user], nil
}

func (f *Forge) ReadFile(_ context.Context, rp vcs.Repo, ref, path string) ([]byte, error) {
	if err := f.injected("ReadFile"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	r, err := f.repo(rp)
	if err != nil {
		return nil, err
	}
	c, err := r.resolve(ref)
	if err != nil {
		return nil, err
	}
	content, ok := c.files[path]
	if !ok {
		return nil, fmt.Errorf("%s@%s:%s: %w", rp.FullName(), ref, path, vcs.ErrNotFound)
	}
	return []byte(content), nil
}

// CloneToken is a fixed credential: jobs against memforge are replayed or check out the forge's files.
func (f *Forge) CloneToken(context.Context, vcs.Repo) (string, error) {
	if err := f.injected("CloneToken"); err != nil {
		return "", err
	}
	return "memforge-clone-token", nil
}

// Comments lists the PR's comments; ByBot only for the bot's own account.
func (f *Forge) Comments(_ context.Context, rp vcs.Repo, number int) ([]vcs.Comment, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, err := f.repo(rp)
	if err != nil {
		return nil, err
	}
	var out []vcs.Comment
	for _, c := range r.comments {
		if c.number == number && !c.deleted {
			out = append(out, c.Comment)
		}
	}
	return out, nil
}

func (f *Forge) CreateComment(_ context.Context, rp vcs.Repo, number int, body string) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, err := f.repo(rp)
	if err != nil {
		return 0, err
	}
	if _, ok := r.prs[number]; !ok {
		return 0, fmt.Errorf("%s#%d: %w", rp.FullName(), number, vcs.ErrNotFound)
	}
	if n := len([]rune(body)); n > f.limits.CommentChars {
		return 0, fmt.Errorf("memforge: a comment of %d characters is over the limit of %d", n, f.limits.CommentChars)
	}
	return f.addComment(r, number, BotLogin, body).ID, nil
}

// ownComment finds a live comment the bot may change: like the forges, memforge lets an app edit only its own.
func (r *repo) ownComment(id int64) (*comment, error) {
	for _, c := range r.comments {
		if c.ID == id && !c.deleted {
			if !c.ByBot {
				return nil, fmt.Errorf("comment %d is %s's: %w", id, c.Author, vcs.ErrPermission)
			}
			return c, nil
		}
	}
	return nil, fmt.Errorf("comment %d: %w", id, vcs.ErrNotFound)
}

func (f *Forge) UpdateComment(_ context.Context, rp vcs.Repo, id int64, body string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, err := f.repo(rp)
	if err != nil {
		return err
	}
	c, err := r.ownComment(id)
	if err != nil {
		return err
	}
	if n := len([]rune(body)); n > f.limits.CommentChars {
		return fmt.Errorf("memforge: a comment of %d characters is over the limit of %d", n, f.limits.CommentChars)
	}
	c.history = append(c.history, c.Body)
	c.Body = body
	f.tick()
	return nil
}

func (f *Forge) DeleteComment(_ context.Context, rp vcs.Repo, id int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, err := f.repo(rp)
	if err != nil {
		return err
	}
	c, err := r.ownComment(id)
	if err != nil {
		return err
	}
	c.deleted = true
	f.tick()
	return nil
}

func (f *Forge) React(_ context.Context, rp vcs.Repo, commentID int64, reaction vcs.Reaction) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, err := f.repo(rp)
	if err != nil {
		return err
	}
	r.reactions[commentID] = append(r.reactions[commentID], reaction)
	f.tick()
	return nil
}

func (f *Forge) Compare(_ context.Context, rp vcs.Repo, base, head string) (vcs.Comparison, error) {
	if err := f.injected("Compare"); err != nil {
		return vcs.Comparison{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	r, err := f.repo(rp)
	if err != nil {
		return vcs.Comparison{}, err
	}
	b, err := r.resolve(base)
	if err != nil {
		return vcs.Comparison{}, err
	}
	h, err := r.resolve(head)
	if err != nil {
		return vcs.Comparison{}, err
	}
	inBase, inHead := r.ancestors(b.sha), r.ancestors(h.sha)
	cmp := vcs.Comparison{MergeBase: r.mergeBase(b.sha, h.sha)}
	for sha := range inHead {
		if !inBase[sha] {
			cmp.Ahead++
		}
	}
	for sha := range inBase {
		if !inHead[sha] {
			cmp.Behind++
		}
	}
	return cmp, nil
}

// ChangedFiles is the PR's diff from its merge base with the base branch, cut at FileListCap.
func (f *Forge) ChangedFiles(_ context.Context, rp vcs.Repo, number int) (vcs.FileList, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, err := f.repo(rp)
	if err != nil {
		return vcs.FileList{}, err
	}
	p, ok := r.prs[number]
	if !ok {
		return vcs.FileList{}, fmt.Errorf("%s#%d: %w", rp.FullName(), number, vcs.ErrNotFound)
	}
	head := r.commits[p.pr.HeadSHA]
	base := r.commits[r.mergeBase(r.branches[p.pr.BaseRef], p.pr.HeadSHA)]
	if head == nil || base == nil {
		return vcs.FileList{}, fmt.Errorf("%s#%d: its commits: %w", rp.FullName(), number, vcs.ErrNotFound)
	}
	var list vcs.FileList
	for _, path := range sortedKeys(unionOf(head.files, base.files)) {
		h, inHead := head.files[path]
		b, inBase := base.files[path]
		if inHead == inBase && h == b {
			continue
		}
		if len(list.Paths) == f.FileListCap {
			list.Truncated = true
			break
		}
		list.Paths = append(list.Paths, path)
	}
	return list, nil
}

func unionOf(a, b map[string]string) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

func (f *Forge) BranchHead(_ context.Context, rp vcs.Repo, branch string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, err := f.repo(rp)
	if err != nil {
		return "", err
	}
	sha, ok := r.branches[branch]
	if !ok {
		return "", fmt.Errorf("branch %s: %w", branch, vcs.ErrNotFound)
	}
	return sha, nil
}

func (f *Forge) Tree(_ context.Context, rp vcs.Repo, sha string) (vcs.Tree, error) {
	if err := f.injected("Tree"); err != nil {
		return vcs.Tree{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	r, err := f.repo(rp)
	if err != nil {
		return vcs.Tree{}, err
	}
	c, err := r.resolve(sha)
	if err != nil {
		return vcs.Tree{}, err
	}
	tree := vcs.Tree{Files: map[string]string{}}
	for _, path := range sortedKeys(c.files) {
		if f.TreeCap > 0 && len(tree.Files) == f.TreeCap {
			tree.Truncated = true
			break
		}
		tree.Files[path] = blobID(c.files[path])
	}
	return tree, nil
}

func (f *Forge) Limits() vcs.Limits { f.mu.Lock(); defer f.mu.Unlock(); return f.limits }
