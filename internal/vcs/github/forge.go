package github

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/bradleyfalzon/ghinstallation/v2"
	gh "github.com/google/go-github/v88/github"

	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// GitHub's size limits (shared/forge-limits.md).
const (
	// MaxCommentChars is the longest issue comment body GitHub accepts; longer ones get a 422.
	MaxCommentChars = 65536
	// MaxCheckOutput is the longest check run output.summary and output.text. GitHub counts characters; the
	// adapter applies it to bytes, the stricter reading.
	MaxCheckOutput = 65535
	// perPage is GitHub's largest page size.
	perPage = 100
)

// truncatedNote ends a check output that was cut to fit.
const truncatedNote = "\n\n… (truncated to fit GitHub's check output limit)"

// Installation is one installation of the app: it implements vcs.Forge.
type Installation struct {
	app    *App
	id     int64
	client *gh.Client
	tokens *tokenTransport
}

var _ vcs.Forge = (*Installation)(nil)

// ID is the installation id.
func (i *Installation) ID() int64 { return i.id }

// Limits are GitHub's size limits.
func (i *Installation) Limits() vcs.Limits {
	return vcs.Limits{CommentChars: MaxCommentChars, CheckOutputSize: MaxCheckOutput}
}

// Account is the installation as vcs.Repo.Account names it: its id in decimal.
func (i *Installation) Account() string { return AccountOf(i.id) }

// AccountOf is vcs.Repo.Account for installation id.
func AccountOf(installationID int64) string {
	if installationID == 0 {
		return ""
	}
	return strconv.FormatInt(installationID, 10)
}

// InstallationOf reads vcs.Repo.Account back as an installation id.
func InstallationOf(account string) (int64, error) {
	id, err := strconv.ParseInt(account, 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("github: account %q is not an installation id", account)
	}
	return id, nil
}

// checkRepo refuses a repository that names another installation: its token would not see it.
func (i *Installation) checkRepo(repo vcs.Repo) error {
	if repo.Account != "" && repo.Account != i.Account() {
		return fmt.Errorf("github: %s belongs to installation %s, not %d", repo.FullName(), repo.Account, i.id)
	}
	if repo.Owner == "" || repo.Name == "" {
		return fmt.Errorf("github: repository owner and name are required (got %q)", repo.FullName())
	}
	return nil
}

// PullRequest fetches a pull request.
func (i *Installation) PullRequest(ctx context.Context, repo vcs.Repo, number int) (vcs.PullRequest, error) {
	if err := i.checkRepo(repo); err != nil {
		return vcs.PullRequest{}, err
	}
	pr, _, err := i.client.PullRequests.Get(ctx, repo.Owner, repo.Name, number)
	if err != nil {
		return vcs.PullRequest{}, mapError(fmt.Sprintf("get pull request %s#%d", repo.FullName(), number), err)
	}
	return pullRequest(repo, pr), nil
}

// pullRequest translates a GitHub pull request (from the API or a webhook) for repo.
func pullRequest(repo vcs.Repo, pr *gh.PullRequest) vcs.PullRequest {
	head, base := pr.GetHead(), pr.GetBase()
	if repo.CloneURL == "" {
		repo.CloneURL = base.GetRepo().GetCloneURL()
	}
	if repo.DefaultBranch == "" {
		repo.DefaultBranch = base.GetRepo().GetDefaultBranch()
	}
	out := vcs.PullRequest{
		Repo:           repo,
		Number:         pr.GetNumber(),
		Title:          pr.GetTitle(),
		Author:         pr.GetUser().GetLogin(),
		HeadSHA:        head.GetSHA(),
		BaseSHA:        base.GetSHA(),
		HeadRef:        head.GetRef(),
		BaseRef:        base.GetRef(),
		HeadCloneURL:   head.GetRepo().GetCloneURL(),
		Draft:          pr.GetDraft(),
		State:          pr.GetState(),
		Merged:         pr.GetMerged(),
		MergeCommitSHA: pr.GetMergeCommitSHA(),
		Mergeable:      pr.Mergeable,
		URL:            pr.GetHTMLURL(),
	}
	// A deleted fork leaves head.repo null: its code is no more trusted than a live fork's.
	baseName := base.GetRepo().GetFullName()
	if baseName == "" {
		baseName = repo.FullName()
	}
	out.Fork = head.GetRepo() == nil || !strings.EqualFold(head.GetRepo().GetFullName(), baseName)
	return out
}

// Reviews lists every review of a pull request, oldest first.
func (i *Installation) Reviews(ctx context.Context, repo vcs.Repo, number int) ([]vcs.Review, error) {
	if err := i.checkRepo(repo); err != nil {
		return nil, err
	}
	var out []vcs.Review
	opts := &gh.ListOptions{PerPage: perPage}
	for {
		page, resp, err := i.client.PullRequests.ListReviews(ctx, repo.Owner, repo.Name, number, opts)
		if err != nil {
			return nil, mapError(fmt.Sprintf("list reviews of %s#%d", repo.FullName(), number), err)
		}
		for _, r := range page {
			out = append(out, review(r))
		}
		if resp.NextPage == 0 {
			return out, nil
		}
		opts.Page = resp.NextPage
	}
}

// review translates a review; the API spells states in upper case, webhooks in lower case.
func review(r *gh.PullRequestReview) vcs.Review {
	return vcs.Review{
		ID:          r.GetID(),
		User:        r.GetUser().GetLogin(),
		State:       vcs.ReviewState(strings.ToLower(r.GetState())),
		CommitSHA:   r.GetCommitID(),
		SubmittedAt: r.GetSubmittedAt().Time,
	}
}

// webFlow is the account GitHub commits web edits as: not a person who could approve or be blocked.
const webFlow = "web-flow"

// CommitAuthors lists the accounts that authored or committed the pull request's commits, in order of first
// appearance. Commits whose emails belong to no account contribute nothing.
func (i *Installation) CommitAuthors(ctx context.Context, repo vcs.Repo, number int) ([]string, error) {
	if err := i.checkRepo(repo); err != nil {
		return nil, err
	}
	var out []string
	seen := map[string]bool{}
	add := func(login string) {
		if login != "" && login != webFlow && !seen[strings.ToLower(login)] {
			seen[strings.ToLower(login)] = true
			out = append(out, login)
		}
	}
	opts := &gh.ListOptions{PerPage: perPage}
	for {
		page, resp, err := i.client.PullRequests.ListCommits(ctx, repo.Owner, repo.Name, number, opts)
		if err != nil {
			return nil, mapError(fmt.Sprintf("list commits of %s#%d", repo.FullName(), number), err)
		}
		for _, c := range page {
			add(c.GetAuthor().GetLogin())
			add(c.GetCommitter().GetLogin())
		}
		if resp.NextPage == 0 {
			return out, nil
		}
		opts.Page = resp.NextPage
	}
}

// Permission is user's access to the repository: maintain counts as write, triage as read, and a login GitHub
// does not know has none.
func (i *Installation) Permission(ctx context.Context, repo vcs.Repo, user string) (vcs.Permission, error) {
	if err := i.checkRepo(repo); err != nil {
		return vcs.PermissionNone, err
	}
	level, _, err := i.client.Repositories.GetPermissionLevel(ctx, repo.Owner, repo.Name, user)
	if err != nil {
		err = mapError(fmt.Sprintf("permission of %s on %s", user, repo.FullName()), err)
		if errors.Is(err, vcs.ErrNotFound) {
			return vcs.PermissionNone, nil
		}
		return vcs.PermissionNone, err
	}
	return foldPermission(level.GetPermission()), nil
}

func foldPermission(p string) vcs.Permission {
	switch strings.ToLower(p) {
	case "admin":
		return vcs.PermissionAdmin
	case "maintain", "write", "push":
		return vcs.PermissionWrite
	case "triage", "read", "pull":
		return vcs.PermissionRead
	}
	return vcs.PermissionNone
}

// InTeam reports whether user is an active member of a team, given as "org/slug" or as "slug" of the
// repository owner's organisation. A pending invitation is not membership.
func (i *Installation) InTeam(ctx context.Context, repo vcs.Repo, team string, user string) (bool, error) {
	if err := i.checkRepo(repo); err != nil {
		return false, err
	}
	org, slug, found := strings.Cut(team, "/")
	if !found {
		org, slug = repo.Owner, team
	}
	m, _, err := i.client.Teams.GetTeamMembershipBySlug(ctx, org, slug, user)
	if err != nil {
		err = mapError(fmt.Sprintf("membership of %s in %s/%s", user, org, slug), err)
		if errors.Is(err, vcs.ErrNotFound) {
			return false, nil
		}
		return false, err
	}
	return m.GetState() == "active", nil
}

// ReadFile reads a file at ref through the contents API; vcs.ErrNotFound when the file (or ref) does not
// exist. Files over 1 MB, which the API does not inline, are fetched with the raw media type.
func (i *Installation) ReadFile(ctx context.Context, repo vcs.Repo, ref, path string) ([]byte, error) {
	if err := i.checkRepo(repo); err != nil {
		return nil, err
	}
	op := fmt.Sprintf("read %s@%s:%s", repo.FullName(), ref, path)
	file, dir, _, err := i.client.Repositories.GetContents(ctx, repo.Owner, repo.Name, path,
		&gh.RepositoryContentGetOptions{Ref: ref})
	if err != nil {
		return nil, mapError(op, err)
	}
	if file == nil || dir != nil {
		return nil, fmt.Errorf("github: %s: is a directory", op)
	}
	if file.GetEncoding() == "none" {
		return i.readRaw(ctx, repo, ref, path, op)
	}
	content, err := file.GetContent()
	if err != nil {
		return nil, fmt.Errorf("github: %s: %w", op, err)
	}
	return []byte(content), nil
}

func (i *Installation) readRaw(ctx context.Context, repo vcs.Repo, ref, path, op string) ([]byte, error) {
	u := fmt.Sprintf("repos/%s/%s/contents/%s?ref=%s", url.PathEscape(repo.Owner), url.PathEscape(repo.Name),
		(&url.URL{Path: strings.TrimPrefix(path, "/")}).EscapedPath(), url.QueryEscape(ref))
	req, err := i.client.NewRequest(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/vnd.github.raw+json")
	var buf bytes.Buffer
	if _, err := i.client.Do(req, &buf); err != nil {
		return nil, mapError(op, err)
	}
	return buf.Bytes(), nil
}

// CloneToken is the installation's access token, for git over HTTPS as user x-access-token. It is valid for up
// to an hour; ask again for each clone.
func (i *Installation) CloneToken(ctx context.Context, repo vcs.Repo) (string, error) {
	if err := i.checkRepo(repo); err != nil {
		return "", err
	}
	token, err := i.tokens.Token(ctx)
	if err != nil {
		return "", mapError("installation token", err)
	}
	return token, nil
}

// CreateCheck creates a check run and returns its id. It is the adapter's own: the core writes statuses
// (PutStatus), which are check runs created and updated through these two.
func (i *Installation) CreateCheck(ctx context.Context, repo vcs.Repo, check Check) (int64, error) {
	if err := i.checkRepo(repo); err != nil {
		return 0, err
	}
	if check.Name == "" || check.HeadSHA == "" {
		return 0, errors.New("github: a check needs a name and a head SHA")
	}
	opts := gh.CreateCheckRunOptions{
		Name:       check.Name,
		HeadSHA:    check.HeadSHA,
		DetailsURL: optional(check.DetailsURL),
		ExternalID: optional(check.ExternalID),
		Status:     optional(string(check.Status)),
		Output:     checkOutput(check),
	}
	if check.Status == CheckCompleted || (check.Status == "" && check.Conclusion != "") {
		opts.Conclusion = optional(string(check.Conclusion))
	}
	run, _, err := i.client.Checks.CreateCheckRun(ctx, repo.Owner, repo.Name, opts)
	if err != nil {
		return 0, mapError(fmt.Sprintf("create check %q on %s@%s", check.Name, repo.FullName(), check.HeadSHA), err)
	}
	return run.GetID(), nil
}

// UpdateCheck updates check run check.ID: status, conclusion, output and links. Name must be the check's name
// (GitHub would rename it otherwise). The adapter's own, as CreateCheck.
func (i *Installation) UpdateCheck(ctx context.Context, repo vcs.Repo, check Check) error {
	if err := i.checkRepo(repo); err != nil {
		return err
	}
	if check.ID == 0 || check.Name == "" {
		return errors.New("github: updating a check needs its id and name")
	}
	opts := gh.UpdateCheckRunOptions{
		Name:       check.Name,
		DetailsURL: optional(check.DetailsURL),
		ExternalID: optional(check.ExternalID),
		Status:     optional(string(check.Status)),
		Output:     checkOutput(check),
	}
	if check.Status == CheckCompleted || (check.Status == "" && check.Conclusion != "") {
		opts.Conclusion = optional(string(check.Conclusion))
	}
	if _, _, err := i.client.Checks.UpdateCheckRun(ctx, repo.Owner, repo.Name, check.ID, opts); err != nil {
		return mapError(fmt.Sprintf("update check %d (%q) on %s", check.ID, check.Name, repo.FullName()), err)
	}
	return nil
}

// checkOutput is the output of a check, or nil when it has none. GitHub requires title and summary together:
// a missing title is the check's name, a missing summary its title. Summary and text are cut to GitHub's limit
// rather than have the update refused and the check stuck.
func checkOutput(check Check) *gh.CheckRunOutput {
	if check.Title == "" && check.Summary == "" && check.Text == "" {
		return nil
	}
	title := check.Title
	if title == "" {
		title = check.Name
	}
	summary := check.Summary
	if summary == "" {
		summary = title
	}
	out := &gh.CheckRunOutput{Title: &title, Summary: gh.Ptr(truncate(summary, MaxCheckOutput))}
	if check.Text != "" {
		out.Text = gh.Ptr(truncate(check.Text, MaxCheckOutput))
	}
	return out
}

// truncate cuts s to at most limit bytes on a UTF-8 boundary, ending with truncatedNote when it cut.
func truncate(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	cut := limit - len(truncatedNote)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + truncatedNote
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// Comments lists every comment on a pull request's conversation, oldest first; ByBot marks the app's own.
func (i *Installation) Comments(ctx context.Context, repo vcs.Repo, number int) ([]vcs.Comment, error) {
	if err := i.checkRepo(repo); err != nil {
		return nil, err
	}
	bot, err := i.app.BotLogin(ctx)
	if err != nil {
		return nil, err
	}
	var out []vcs.Comment
	opts := &gh.IssueListCommentsOptions{ListOptions: gh.ListOptions{PerPage: perPage}}
	for {
		page, resp, err := i.client.Issues.ListComments(ctx, repo.Owner, repo.Name, number, opts)
		if err != nil {
			return nil, mapError(fmt.Sprintf("list comments of %s#%d", repo.FullName(), number), err)
		}
		for _, c := range page {
			out = append(out, vcs.Comment{ID: c.GetID(), Author: c.GetUser().GetLogin(), Body: c.GetBody(),
				ByBot: writtenBy(c.GetUser(), bot)})
		}
		if resp.NextPage == 0 {
			return out, nil
		}
		opts.Page = resp.NextPage
	}
}

// CreateComment comments on a pull request. A body over MaxCommentChars is refused by GitHub (422): size it
// before.
func (i *Installation) CreateComment(ctx context.Context, repo vcs.Repo, number int, body string) (int64, error) {
	if err := i.checkRepo(repo); err != nil {
		return 0, err
	}
	c, _, err := i.client.Issues.CreateComment(ctx, repo.Owner, repo.Name, number, &gh.IssueComment{Body: &body})
	if err != nil {
		return 0, mapError(fmt.Sprintf("comment on %s#%d", repo.FullName(), number), err)
	}
	return c.GetID(), nil
}

// UpdateComment replaces a comment's body.
func (i *Installation) UpdateComment(ctx context.Context, repo vcs.Repo, id int64, body string) error {
	if err := i.checkRepo(repo); err != nil {
		return err
	}
	if _, _, err := i.client.Issues.EditComment(ctx, repo.Owner, repo.Name, id, &gh.IssueComment{Body: &body}); err != nil {
		return mapError(fmt.Sprintf("update comment %d on %s", id, repo.FullName()), err)
	}
	return nil
}

// DeleteComment deletes a comment; vcs.ErrNotFound when it is already gone.
func (i *Installation) DeleteComment(ctx context.Context, repo vcs.Repo, id int64) error {
	if err := i.checkRepo(repo); err != nil {
		return err
	}
	if _, err := i.client.Issues.DeleteComment(ctx, repo.Owner, repo.Name, id); err != nil {
		return mapError(fmt.Sprintf("delete comment %d on %s", id, repo.FullName()), err)
	}
	return nil
}

// React adds a reaction to a pull request comment (adding one that exists is not an error).
func (i *Installation) React(ctx context.Context, repo vcs.Repo, commentID int64, reaction vcs.Reaction) error {
	if err := i.checkRepo(repo); err != nil {
		return err
	}
	if _, _, err := i.client.Reactions.CreateIssueCommentReaction(ctx, repo.Owner, repo.Name, commentID, string(reaction)); err != nil {
		return mapError(fmt.Sprintf("react %s to comment %d on %s", reaction, commentID, repo.FullName()), err)
	}
	return nil
}

// mapError turns go-github's and ghinstallation's errors into the vcs sentinels, keeping the original error
// in the chain: 404 → vcs.ErrNotFound; a rate limit that outlasted the retries → vcs.RateLimited (an ErrRateLimited, with its reset); 401 and
// 403 (refused credentials or permissions) → vcs.ErrPermission; 422 → vcs.ErrInvalid.
func mapError(op string, err error) error {
	if err == nil {
		return nil
	}
	var (
		rateErr    *gh.RateLimitError
		abuseErr   *gh.AbuseRateLimitError
		respErr    *gh.ErrorResponse
		installErr *ghinstallation.HTTPError
	)
	switch {
	case errors.As(err, &rateErr):
		return fmt.Errorf("github: %s: %w", op, &vcs.RateLimited{Reset: rateLimitReset(rateErr.Response), Err: err})
	case errors.As(err, &abuseErr):
		return fmt.Errorf("github: %s: %w", op, &vcs.RateLimited{Reset: rateLimitReset(abuseErr.Response), Err: err})
	case errors.As(err, &respErr) && respErr.Response != nil:
		if isRateLimited(respErr.Response.StatusCode, respErr.Response.Header, respErr.Message+" "+respErr.DocumentationURL) {
			return fmt.Errorf("github: %s: %w", op, &vcs.RateLimited{Reset: rateLimitReset(respErr.Response), Err: err})
		}
		return classifyStatus(op, respErr.Response.StatusCode, err)
	case errors.As(err, &installErr) && installErr.Response != nil:
		// No token for the installation (removed, suspended, or the app's key refused): retrying will not help.
		switch installErr.Response.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound:
			return fmt.Errorf("github: %s: %w: %w", op, vcs.ErrPermission, err)
		}
	}
	return fmt.Errorf("github: %s: %w", op, err)
}

func classifyStatus(op string, status int, err error) error {
	switch status {
	case http.StatusNotFound:
		return fmt.Errorf("github: %s: %w: %w", op, vcs.ErrNotFound, err)
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Errorf("github: %s: %w: %w", op, vcs.ErrPermission, err)
	case http.StatusUnprocessableEntity:
		return fmt.Errorf("github: %s: %w: %w", op, vcs.ErrInvalid, err)
	}
	return fmt.Errorf("github: %s: %w", op, err)
}

// ReadAccess is Permission with the id of the account GitHub answered for (0 for a login it does not know).
func (i *Installation) ReadAccess(ctx context.Context, repo vcs.Repo, login string) (vcs.Permission, int64, error) {
	if err := i.checkRepo(repo); err != nil {
		return vcs.PermissionNone, 0, err
	}
	level, _, err := i.client.Repositories.GetPermissionLevel(ctx, repo.Owner, repo.Name, login)
	if err != nil {
		err = mapError(fmt.Sprintf("permission of %s on %s", login, repo.FullName()), err)
		if errors.Is(err, vcs.ErrNotFound) {
			return vcs.PermissionNone, 0, nil
		}
		return vcs.PermissionNone, 0, err
	}
	return foldPermission(level.GetPermission()), level.GetUser().GetID(), nil
}
