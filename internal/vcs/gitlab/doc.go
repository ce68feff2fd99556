// Package gitlab is the GitLab adapter of the forge port (vcs.Forge) over gitlab.com/gitlab-org/api/client-go
// (the maintained successor of github.com/xanzy/go-gitlab), for gitlab.com and self-managed GitLab alike. It
// serves every project the one configured token's user is a member of: vcs.Repo.Forge is "gitlab", Owner the
// namespace's full path ("group/subgroup"), Name the project's path, Account "".
//
// What it reports is what GitLab says, translated:
//
//   - Merge requests: Fork when the source project is not the target project (the head is fetched from the
//     source project's clone URL); Draft from `draft`; Mergeable means "no conflicts" (`has_conflicts`,
//     `detailed_merge_status`), never "the pipeline passed", which the bot's own statuses decide.
//   - Statuses: commit statuses (status.go has the mapping); StatusPostedAt is the status's finished_at.
//   - Comments: notes of the merge request; ByBot only for notes of the token's user (GET /user, by id). A
//     comment id names the merge request and the note together (CommentID): GitLab edits a note only through
//     its merge request.
//   - Reviews: approvals (`approved_by`), which carry no commit and, on most versions, no time: ReviewFacts
//     says neither, and the core times them from the merge request hook events it stored.
//   - Permissions from member access levels (Maintainer and Owner: admin; Developer: write; Guest, Planner and
//     Reporter: read); InTeam is membership of a group, given by its full path.
//
// Errors: 404 → vcs.ErrNotFound, 401/403 → vcs.ErrPermission, 400/409/422 → vcs.ErrInvalid, 429 →
// *vcs.RateLimited (its reset from RateLimit-Reset or Retry-After), anything else (5xx, the network) transient.
// The client itself never retries: the bot's retry policy (internal/retry) waits, so a rate limit is not
// answered with more requests.
package gitlab
