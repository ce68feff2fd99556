package bot

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/deploy"
	"github.com/dagctl/dagctl-bot/internal/repoconfig"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// divergence says why applying head to a protected environment would roll it back: head does not contain the
// deploy branch's current head, so what was merged since would be undone. "" when it does (or the environment is
// not protected: a shared dev environment is rebuilt from whatever PR applies last).
func (b *Bot) divergence(ctx context.Context, forge vcs.Forge, repo vcs.Repo, branch, head string, env repoconfig.Environment) (string, error) {
	if !env.NeedsApproval() {
		return "", nil
	}
	c, err := forge.Compare(ctx, repo, branch, head)
	if err != nil {
		return "", fmt.Errorf("comparing %s with %s: %w", short(head), branch, err)
	}
	if c.Behind == 0 {
		return "", nil
	}
	return fmt.Sprintf("`%s`: this PR's head %s is %d commit(s) behind `%s`: applying it would roll `%s` back by what was merged since. Update the branch, then apply the new plan.",
		env.Name, short(head), c.Behind, branch, env.Name), nil
}

// contentCheck is what the content rule found for an apply.
type contentCheck struct {
	hash     string // the project's content hash at the apply's commit; "" for unprotected environments
	accepted bool   // an admin accepted unreviewed files: the plan at the commit is applied as it is
}

// protectedContent checks, under the environment's lock, what a protected environment is about to receive: the
// PR must still contain the deploy branch's head (by comment), and the project's files may differ from what the
// environment was last applied from only by what the approved plan's PR changed. It returns the ending when the
// apply must stop.
func (b *Bot) protectedContent(ctx context.Context, forge vcs.Forge, req applyRequest) (contentCheck, *applyEnding) {
	if !needsApproval(req.pc) {
		return contentCheck{}, nil
	}
	refuse := func(title, summary string) (contentCheck, *applyEnding) {
		return contentCheck{}, &applyEnding{conclusion: vcs.ConclusionFailure, title: title, summary: summary, exitCode: -1, reason: title}
	}
	if req.trigger == repoconfig.ApplyOnComment && !req.atBranchHead {
		why, err := b.divergence(ctx, forge, req.pc.PR.Repo, req.pc.PR.BaseRef, req.sha, req.pc.Env)
		if err != nil {
			return refuse("Could not compare with the deploy branch", err.Error())
		}
		if why != "" {
			return refuse("Refused: the PR is behind its deploy branch", why+"\n\nNothing was applied.")
		}
	}
	unreviewed, hash, err := b.unreviewedFiles(ctx, forge, req)
	if err != nil {
		return refuse("Could not compare the content with the last apply", err.Error()+"\n\nNothing was applied.")
	}
	if len(unreviewed) == 0 {
		return contentCheck{hash: hash}, nil
	}
	if req.accept != "" && strings.HasPrefix(hash, req.accept) {
		b.log.Warn("applying content no approved plan covered, accepted by an admin", "env", req.pc.Env.Name, "user", req.user, "files", len(unreviewed), "hash", hash)
		return contentCheck{hash: hash, accepted: true}, nil
	}
	return refuse("Refused: files changed since the last apply that no approved plan covered", unreviewedSummary(req, unreviewed, hash))
}

// unreviewedFiles compares the project's files at the apply's commit with the environment's last applied content
// and the approved plan's change, with trees read from the forge (never from the job). The first apply of an
// environment has nothing to compare with: its plan covers the whole project.
func (b *Bot) unreviewedFiles(ctx context.Context, forge vcs.Forge, req applyRequest) ([]string, string, error) {
	repo, p := req.pc.PR.Repo, req.plan
	tree := func(sha string) (deploy.Files, error) {
		t, err := forge.Tree(ctx, repo, sha)
		if err != nil {
			return nil, fmt.Errorf("reading the files of %s: %w", short(sha), err)
		}
		if t.Truncated {
			return nil, fmt.Errorf("the forge's file list of %s is truncated, so its content cannot be compared", short(sha))
		}
		return t.Files, nil
	}
	target, err := tree(req.sha)
	if err != nil {
		return nil, "", err
	}
	hash := deploy.ContentHash(req.pc.Project.Path, target)
	last, err := b.store.LastApplied(ctx, p.Forge, p.Repo, p.Project, req.pc.Env.Name)
	switch {
	case errors.Is(err, db.ErrNotFound):
		return nil, hash, nil
	case err != nil:
		return nil, "", err
	case last.ContentHash == hash:
		return nil, hash, nil // the same content as applied last (a re-apply, a squash of it)
	}
	c := deploy.Content{ProjectPath: req.pc.Project.Path, Target: target}
	if c.LastApplied, err = tree(last.CommitSHA); err != nil {
		return nil, "", err
	}
	if c.Planned, err = tree(p.HeadSHA); err != nil {
		return nil, "", err
	}
	fork, err := forge.Compare(ctx, repo, p.BaseSHA, p.HeadSHA)
	if err != nil {
		return nil, "", fmt.Errorf("finding where the PR forked: %w", err)
	}
	if c.ForkPoint, err = tree(fork.MergeBase); err != nil {
		return nil, "", err
	}
	return deploy.UnreviewedFiles(c), hash, nil
}

// maxListedFiles bounds the files named in a refusal.
const maxListedFiles = 30

func unreviewedSummary(req applyRequest, files []string, hash string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "`%s` was last applied from content that differs from %s in files the approved plan's PR did not change (or changed differently): nobody approved them for `%s`.\n\n",
		req.pc.Env.Name, short(req.sha), req.pc.Env.Name)
	for i, f := range files {
		if i == maxListedFiles {
			fmt.Fprintf(&b, "- … and %d more\n", len(files)-maxListedFiles)
			break
		}
		fmt.Fprintf(&b, "- `%s`\n", f)
	}
	fmt.Fprintf(&b, "\nNothing was applied. Open a PR that plans these changes and have it approved, or an admin who reviewed them comments `/dagctl apply %s --accept %s` on this PR to apply the deploy branch's head as it is.",
		req.pc.Env.Name, hash[:16])
	return b.String()
}

// advanceAppliedContent moves a protected environment's record of applied content to a merge that had nothing to
// apply (a PR that changed no model: docs, CI files) when the PR's approval holds and the merge adds nothing
// else: the environment's state is then what the merged content says, and the next apply is not refused for
// files that were reviewed here. Best effort: without it the next apply names those files.
func (b *Bot) advanceAppliedContent(ctx context.Context, forge vcs.Forge, c candidate, sha, merger string) {
	if !needsApproval(c.pc) {
		return
	}
	if _, err := b.store.LastApplied(ctx, c.plan.Forge, c.plan.Repo, c.plan.Project, c.pc.Env.Name); err != nil {
		return // never applied by the bot: the first apply covers the whole project anyway
	}
	res, err := b.evaluateApproval(ctx, forge, c.plan, c.pc)
	if err != nil || !res.Approved {
		return
	}
	req := applyRequest{plan: c.plan, pc: c.pc, sha: sha, user: merger, trigger: repoconfig.ApplyOnMerge}
	unreviewed, hash, err := b.unreviewedFiles(ctx, forge, req)
	if err != nil || len(unreviewed) > 0 {
		return
	}
	if err := b.store.RecordApplied(ctx, db.AppliedContent{Forge: c.plan.Forge, Repo: c.plan.Repo, Project: c.plan.Project,
		Environment: c.pc.Env.Name, CommitSHA: sha, ContentHash: hash, PlanID: c.plan.ID, AppliedAt: time.Now()}); err != nil {
		b.log.Warn("recording reviewed content", "env", c.pc.Env.Name, "err", err)
	}
}
