package gitlab

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	gl "gitlab.com/gitlab-org/api/client-go"

	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// GitLab's limits the adapter relies on (../shared/forge-limits.md, "GitLab: REST API limits used by the bot").
const (
	// MaxNoteChars is the longest note body GitLab accepts: Gitlab::Database::MAX_TEXT_SIZE_LIMIT (gitlab-foss
	// commit 5af535d9, "Limit the size of issuable description and comments to 1_000_000").
	MaxNoteChars = 1_000_000
	// MaxDescriptionChars is the longest commit status description GitLab keeps (its column is a string of 255).
	MaxDescriptionChars = 255
	// perPage is GitLab's largest page size.
	perPage = 100
)

// Name is the forge's name in vcs.Repo.Forge.
const Name = "gitlab"

// Options configure the adapter.
type Options struct {
	// BaseURL is GitLab's root ("https://gitlab.com", or a self-managed instance's); the API is BaseURL/api/v4.
	BaseURL string
	// Token is the bot user's access token with the api scope (DAGCTL_GITLAB_TOKEN).
	Token string
	// CloneToken is a read_repository token for jobs' clones (DAGCTL_GITLAB_CLONE_TOKEN); "" clones with Token.
	CloneToken string
	// HTTPClient carries the requests (nil: a default client).
	HTTPClient *http.Client
	// Now is the clock a Retry-After is read on (nil: time.Now).
	Now func() time.Time
}

// Forge is GitLab behind vcs.Forge for every project the token's user can reach.
type Forge struct {
	client     *gl.Client
	token      string
	cloneToken string
	now        func() time.Time

	mu  sync.Mutex
	bot *gl.User // GET /user, once it answered
}

var _ vcs.Forge = (*Forge)(nil)

// New builds the adapter. It makes no request: a bad token shows on the first call (401 → vcs.ErrPermission).
func New(o Options) (*Forge, error) {
	if o.Token == "" {
		return nil, errors.New("gitlab: a token is required")
	}
	if o.BaseURL == "" {
		o.BaseURL = "https://gitlab.com"
	}
	opts := []gl.ClientOptionFunc{gl.WithBaseURL(strings.TrimSuffix(o.BaseURL, "/") + "/api/v4"), gl.WithoutRetries()}
	if o.HTTPClient != nil {
		opts = append(opts, gl.WithHTTPClient(o.HTTPClient))
	}
	client, err := gl.NewClient(o.Token, opts...)
	if err != nil {
		return nil, fmt.Errorf("gitlab: %w", err)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	clone := o.CloneToken
	if clone == "" {
		clone = o.Token
	}
	return &Forge{client: client, token: o.Token, cloneToken: clone, now: o.Now}, nil
}

// Limits: notes up to MaxNoteChars; GitLab shows no rich output (CheckOutputSize 0: none is sent).
func (f *Forge) Limits() vcs.Limits { return vcs.Limits{CommentChars: MaxNoteChars} }

// ReviewFacts: GitLab's approvals name no commit, and only some versions say when they were given; the core
// times them from the merge request hooks it stored.
func (f *Forge) ReviewFacts() vcs.ReviewFacts { return vcs.ReviewFacts{} }

// pid is the project as the API names it: its full path (client-go escapes it).
func pid(repo vcs.Repo) (string, error) {
	if repo.Account != "" {
		return "", fmt.Errorf("gitlab: %s names account %q: GitLab serves one token, account \"\"", repo.FullName(), repo.Account)
	}
	if repo.Owner == "" || repo.Name == "" {
		return "", fmt.Errorf("gitlab: a project needs its namespace and path (got %q)", repo.FullName())
	}
	return repo.FullName(), nil
}

// Bot is the token's user (GET /user), asked once it answers.
func (f *Forge) Bot(ctx context.Context) (*gl.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.bot != nil {
		return f.bot, nil
	}
	u, _, err := f.client.Users.CurrentUser(gl.WithContext(ctx))
	if err != nil {
		return nil, f.mapError("the token's user", err)
	}
	f.bot = u
	return u, nil
}

// Version is GitLab's version (GET /version).
func (f *Forge) Version(ctx context.Context) (string, error) {
	v, _, err := f.client.Version.GetVersion(gl.WithContext(ctx))
	if err != nil {
		return "", f.mapError("version", err)
	}
	return v.Version, nil
}

// userID is the id of a username; found false when GitLab knows no such user.
func (f *Forge) userID(ctx context.Context, username string) (int64, bool, error) {
	users, _, err := f.client.Users.ListUsers(&gl.ListUsersOptions{Username: &username}, gl.WithContext(ctx))
	if err != nil {
		return 0, false, f.mapError("user "+username, err)
	}
	for _, u := range users {
		if strings.EqualFold(u.Username, username) {
			return u.ID, true, nil
		}
	}
	return 0, false, nil
}

// PullRequest reads a merge request.
func (f *Forge) PullRequest(ctx context.Context, repo vcs.Repo, number int) (vcs.PullRequest, error) {
	id, err := pid(repo)
	if err != nil {
		return vcs.PullRequest{}, err
	}
	op := fmt.Sprintf("merge request %s!%d", id, number)
	mr, _, err := f.client.MergeRequests.GetMergeRequest(id, int64(number), nil, gl.WithContext(ctx))
	if err != nil {
		return vcs.PullRequest{}, f.mapError(op, err)
	}
	if repo.CloneURL == "" || repo.DefaultBranch == "" {
		p, _, err := f.client.Projects.GetProject(id, nil, gl.WithContext(ctx))
		if err != nil {
			return vcs.PullRequest{}, f.mapError("project "+id, err)
		}
		if repo.CloneURL == "" {
			repo.CloneURL = p.HTTPURLToRepo
		}
		if repo.DefaultBranch == "" {
			repo.DefaultBranch = p.DefaultBranch
		}
	}
	out := pullRequest(repo, &mr.BasicMergeRequest)
	out.BaseSHA = mr.DiffRefs.StartSha
	if out.BaseSHA == "" {
		out.BaseSHA = mr.DiffRefs.BaseSha
	}
	if out.Fork {
		// The head is fetched from the source project; a source project the bot cannot read (deleted, private)
		// leaves no URL, and the merge request stays a fork.
		src, _, err := f.client.Projects.GetProject(mr.SourceProjectID, nil, gl.WithContext(ctx))
		switch {
		case err == nil:
			out.HeadCloneURL = src.HTTPURLToRepo
		case !errors.Is(f.mapError(op, err), vcs.ErrNotFound):
			return vcs.PullRequest{}, f.mapError(fmt.Sprintf("source project %d of %s", mr.SourceProjectID, op), err)
		}
	}
	return out, nil
}

// pullRequest translates a merge request (as get or list show it) for repo. HeadCloneURL is the target's; a
// fork's is the caller's to read.
func pullRequest(repo vcs.Repo, mr *gl.BasicMergeRequest) vcs.PullRequest {
	repo.Forge = Name
	out := vcs.PullRequest{
		Repo:    repo,
		Number:  int(mr.IID),
		Title:   mr.Title,
		HeadSHA: mr.SHA,
		HeadRef: mr.SourceBranch,
		BaseRef: mr.TargetBranch,
		Fork:    mr.SourceProjectID != mr.TargetProjectID,
		// GitLab sets draft from a "Draft:" title too; the title is read as well, for versions that did not.
		Draft: mr.Draft || hasDraftPrefix(mr.Title),
		URL:   mr.WebURL,
	}
	if mr.Author != nil {
		out.Author = mr.Author.Username
	}
	if !out.Fork {
		out.HeadCloneURL = repo.CloneURL
	}
	switch mr.State {
	case "opened":
		out.State = "open"
	default: // closed, merged, locked
		out.State = "closed"
	}
	if mr.State == "merged" {
		out.Merged = true
		// The commit the target branch got: the merge commit, else the squash commit (a squash fast-forwarded),
		// else the head itself (a fast-forward merge).
		out.MergeCommitSHA = mr.MergeCommitSHA
		if out.MergeCommitSHA == "" {
			out.MergeCommitSHA = mr.SquashCommitSHA
		}
		if out.MergeCommitSHA == "" {
			out.MergeCommitSHA = mr.SHA
		}
	}
	out.Mergeable = mergeable(mr.HasConflicts, mr.DetailedMergeStatus)
	return out
}

func hasDraftPrefix(title string) bool {
	t := strings.ToLower(strings.TrimSpace(title))
	for _, p := range []string{"draft:", "[draft]", "(draft)"} {
		if strings.HasPrefix(t, p) {
			return true
		}
	}
	return false
}

// mergeable is "no conflicts", nil while GitLab is still checking. Every other reason GitLab gives for not
// merging (a pipeline to pass, approvals, discussions, a draft) is not a conflict: the bot's own statuses are
// among them, and reading them as unmergeable would have /dagctl apply wait on itself.
func mergeable(hasConflicts bool, detailed string) *bool {
	yes, no := true, false
	switch {
	case hasConflicts || detailed == "conflict":
		return &no
	case detailed == "checking" || detailed == "unchecked" || detailed == "preparing" || detailed == "approvals_syncing":
		return nil
	}
	return &yes
}

// OpenPullRequests lists a project's open merge requests (for recovery.OpenPRs: GitLab has no redelivery API).
// A fork's HeadCloneURL is left empty: plans of forks run only a commit a writer names.
func (f *Forge) OpenPullRequests(ctx context.Context, repo vcs.Repo) ([]vcs.PullRequest, error) {
	id, err := pid(repo)
	if err != nil {
		return nil, err
	}
	state := "opened"
	opts := &gl.ListProjectMergeRequestsOptions{State: &state, ListOptions: gl.ListOptions{PerPage: perPage}}
	var out []vcs.PullRequest
	for {
		page, resp, err := f.client.MergeRequests.ListProjectMergeRequests(id, opts, gl.WithContext(ctx))
		if err != nil {
			return nil, f.mapError("open merge requests of "+id, err)
		}
		for _, mr := range page {
			out = append(out, pullRequest(repo, mr))
		}
		if resp.NextPage == 0 {
			return out, nil
		}
		opts.Page = resp.NextPage
	}
}

// approval is one entry of approved_by; approved_at only where GitLab returns it (client-go does not decode it).
type approval struct {
	User struct {
		ID       int64  `json:"id"`
		Username string `json:"username"`
	} `json:"user"`
	ApprovedAt *time.Time `json:"approved_at"`
}

// Reviews are the merge request's approvals (GET /merge_requests/:iid/approvals, which every tier serves),
// each approved, with SubmittedAt from approved_at where GitLab returns it and zero otherwise; never a commit.
func (f *Forge) Reviews(ctx context.Context, repo vcs.Repo, number int) ([]vcs.Review, error) {
	id, err := pid(repo)
	if err != nil {
		return nil, err
	}
	op := fmt.Sprintf("approvals of %s!%d", id, number)
	req, err := f.client.NewRequest(http.MethodGet,
		fmt.Sprintf("projects/%s/merge_requests/%d/approvals", gl.PathEscape(id), number), nil, []gl.RequestOptionFunc{gl.WithContext(ctx)})
	if err != nil {
		return nil, fmt.Errorf("gitlab: %s: %w", op, err)
	}
	var body struct {
		ApprovedBy []approval `json:"approved_by"`
	}
	if _, err := f.client.Do(req, &body); err != nil {
		return nil, f.mapError(op, err)
	}
	out := make([]vcs.Review, 0, len(body.ApprovedBy))
	for _, a := range body.ApprovedBy {
		r := vcs.Review{ID: a.User.ID, User: a.User.Username, State: vcs.ReviewApproved}
		if a.ApprovedAt != nil {
			r.SubmittedAt = a.ApprovedAt.UTC()
		}
		out = append(out, r)
	}
	return out, nil
}

// Permission folds the user's access level in the project (inherited from groups included) to the port's four:
// Maintainer (40) and Owner (50) admin, Developer (30) write, Guest (10), Planner (15) and Reporter (20) read,
// anything else (not a member, minimal access, an unknown user) none.
func (f *Forge) Permission(ctx context.Context, repo vcs.Repo, user string) (vcs.Permission, error) {
	id, err := pid(repo)
	if err != nil {
		return vcs.PermissionNone, err
	}
	uid, found, err := f.userID(ctx, user)
	if err != nil || !found {
		return vcs.PermissionNone, err
	}
	m, _, err := f.client.ProjectMembers.GetInheritedProjectMember(id, uid, gl.WithContext(ctx))
	if err != nil {
		err = f.mapError(fmt.Sprintf("membership of %s in %s", user, id), err)
		if errors.Is(err, vcs.ErrNotFound) {
			return vcs.PermissionNone, nil
		}
		return vcs.PermissionNone, err
	}
	if m.State != "" && m.State != "active" {
		return vcs.PermissionNone, nil // an invitation not yet accepted, a blocked user
	}
	return foldAccess(int(m.AccessLevel)), nil
}

func foldAccess(level int) vcs.Permission {
	switch {
	case level >= int(gl.MaintainerPermissions):
		return vcs.PermissionAdmin
	case level >= int(gl.DeveloperPermissions):
		return vcs.PermissionWrite
	case level >= int(gl.GuestPermissions):
		return vcs.PermissionRead
	}
	return vcs.PermissionNone
}

// InTeam reports whether user is an active member (Guest or more, inherited from parent groups included) of the
// group with full path team ("group/subgroup").
func (f *Forge) InTeam(ctx context.Context, repo vcs.Repo, team string, user string) (bool, error) {
	if _, err := pid(repo); err != nil {
		return false, err
	}
	uid, found, err := f.userID(ctx, user)
	if err != nil || !found {
		return false, err
	}
	m, _, err := f.client.GroupMembers.GetInheritedGroupMember(team, uid, gl.WithContext(ctx))
	if err != nil {
		err = f.mapError(fmt.Sprintf("membership of %s in group %s", user, team), err)
		if errors.Is(err, vcs.ErrNotFound) {
			return false, nil
		}
		return false, err
	}
	return (m.State == "" || m.State == "active") && m.AccessLevel >= gl.GuestPermissions, nil
}

// ReadFile reads a file at ref (raw); vcs.ErrNotFound when the file or ref does not exist.
func (f *Forge) ReadFile(ctx context.Context, repo vcs.Repo, ref, path string) ([]byte, error) {
	id, err := pid(repo)
	if err != nil {
		return nil, err
	}
	data, _, err := f.client.RepositoryFiles.GetRawFile(id, strings.TrimPrefix(path, "/"), &gl.GetRawFileOptions{Ref: &ref}, gl.WithContext(ctx))
	if err != nil {
		return nil, f.mapError(fmt.Sprintf("read %s@%s:%s", id, ref, path), err)
	}
	return data, nil
}

// CloneUser is the basic-auth user name GitLab takes an access token with over git HTTP.
const CloneUser = "oauth2"

// CloneUser is the user name jobs send with CloneToken: oauth2, not GitHub's x-access-token, which GitLab refuses.
func (f *Forge) CloneUser() string { return CloneUser }

// CloneToken is what jobs clone with, as the password of user oauth2: the read_repository token when one is
// configured, else the api token (the server warns about that at start).
func (f *Forge) CloneToken(_ context.Context, repo vcs.Repo) (string, error) {
	if _, err := pid(repo); err != nil {
		return "", err
	}
	return f.cloneToken, nil
}

// BranchHead is the commit a branch points to.
func (f *Forge) BranchHead(ctx context.Context, repo vcs.Repo, branch string) (string, error) {
	id, err := pid(repo)
	if err != nil {
		return "", err
	}
	b, _, err := f.client.Branches.GetBranch(id, branch, gl.WithContext(ctx))
	if err != nil {
		return "", f.mapError(fmt.Sprintf("branch %s of %s", branch, id), err)
	}
	if b.Commit == nil || b.Commit.ID == "" {
		return "", fmt.Errorf("gitlab: branch %s of %s has no commit", branch, id)
	}
	return b.Commit.ID, nil
}

// Compare is how head relates to base: their merge base, and the commits each has that the other lacks
// (GitLab's compare from one to the other, through their merge base).
func (f *Forge) Compare(ctx context.Context, repo vcs.Repo, base, head string) (vcs.Comparison, error) {
	id, err := pid(repo)
	if err != nil {
		return vcs.Comparison{}, err
	}
	op := fmt.Sprintf("compare %s...%s in %s", base, head, id)
	refs := []string{base, head}
	mb, _, err := f.client.Repositories.MergeBase(id, &gl.MergeBaseOptions{Ref: &refs}, gl.WithContext(ctx))
	if err != nil {
		return vcs.Comparison{}, f.mapError(op, err)
	}
	count := func(from, to string) (int, error) {
		c, _, err := f.client.Repositories.Compare(id, &gl.CompareOptions{From: &from, To: &to}, gl.WithContext(ctx))
		if err != nil {
			return 0, f.mapError(op, err)
		}
		return len(c.Commits), nil
	}
	ahead, err := count(base, head)
	if err != nil {
		return vcs.Comparison{}, err
	}
	behind, err := count(head, base)
	if err != nil {
		return vcs.Comparison{}, err
	}
	return vcs.Comparison{MergeBase: mb.ID, Ahead: ahead, Behind: behind}, nil
}

// ChangedFiles lists the merge request's files (its diffs, every page). GitLab stops a merge request's diff at
// its diff_max_files (1,000 by default) and then says changes_count "1000+": the list is Truncated then, or when
// fewer files came than the count.
func (f *Forge) ChangedFiles(ctx context.Context, repo vcs.Repo, number int) (vcs.FileList, error) {
	id, err := pid(repo)
	if err != nil {
		return vcs.FileList{}, err
	}
	op := fmt.Sprintf("files of %s!%d", id, number)
	mr, _, err := f.client.MergeRequests.GetMergeRequest(id, int64(number), nil, gl.WithContext(ctx))
	if err != nil {
		return vcs.FileList{}, f.mapError(op, err)
	}
	var out vcs.FileList
	seen := map[string]bool{}
	add := func(p string) {
		if p != "" && !seen[p] {
			seen[p] = true
			out.Paths = append(out.Paths, p)
		}
	}
	opts := &gl.ListMergeRequestDiffsOptions{ListOptions: gl.ListOptions{PerPage: perPage}}
	files := 0
	for {
		page, resp, err := f.client.MergeRequests.ListMergeRequestDiffs(id, int64(number), opts, gl.WithContext(ctx))
		if err != nil {
			return vcs.FileList{}, f.mapError(op, err)
		}
		for _, d := range page {
			files++
			add(d.OldPath)
			add(d.NewPath)
		}
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	count := strings.TrimSpace(mr.ChangesCount)
	var n int
	_, scanErr := fmt.Sscanf(count, "%d", &n)
	out.Truncated = strings.HasSuffix(count, "+") || scanErr == nil && files < n
	return out, nil
}

// Tree lists every file of a commit with its blob id (recursive, every page).
func (f *Forge) Tree(ctx context.Context, repo vcs.Repo, sha string) (vcs.Tree, error) {
	id, err := pid(repo)
	if err != nil {
		return vcs.Tree{}, err
	}
	recursive := true
	opts := &gl.ListTreeOptions{Ref: &sha, Recursive: &recursive, ListOptions: gl.ListOptions{PerPage: perPage}}
	out := vcs.Tree{Files: map[string]string{}}
	for {
		page, resp, err := f.client.Repositories.ListTree(id, opts, gl.WithContext(ctx))
		if err != nil {
			return vcs.Tree{}, f.mapError(fmt.Sprintf("tree of %s@%s", id, sha), err)
		}
		for _, n := range page {
			if n.Type == "blob" {
				out.Files[n.Path] = n.ID
			}
		}
		if resp.NextPage == 0 {
			return out, nil
		}
		opts.Page = resp.NextPage
	}
}
