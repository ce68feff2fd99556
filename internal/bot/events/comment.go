package events

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/dagctl/dagctl-bot/internal/command"
	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/plan"
	"github.com/dagctl/dagctl-bot/internal/repoconfig"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// Comment runs the `/dagctl` commands of a new PR comment, unless they expired while the delivery waited
// (receivedAt is the intake's stamp): then the PR is told instead.
func (h *Handlers) Comment(ctx context.Context, forge vcs.Forge, repo vcs.Repo, ev vcs.CommentEvent, receivedAt time.Time) error {
	if ev.Edited {
		return vcs.ErrIgnored // an edit never runs a command: it would re-run an old one, or hide who ran it
	}
	cmds, parseErr := command.Parse(ev.Comment.Body)
	if parseErr == nil && len(cmds) == 0 {
		return vcs.ErrIgnored
	}
	pr := vcs.PullRequest{Repo: repo, Number: ev.Number}
	perm, err := forge.Permission(ctx, repo, ev.Comment.Author)
	if err != nil {
		return err
	}
	if !perm.CanWrite() {
		_ = h.Report.React(ctx, repo, ev.Comment.ID, vcs.ReactionConfused)
		return h.Report.ReplyError(ctx, forge, pr, fmt.Sprintf("@%s, only users with write permission can run `/dagctl` commands (you have %s).", ev.Comment.Author, perm))
	}
	if parseErr != nil {
		_ = h.Report.React(ctx, repo, ev.Comment.ID, vcs.ReactionConfused)
		return h.Report.ReplyError(ctx, forge, pr, parseErr.Error()+"\n\n"+command.Usage)
	}
	if h.Now != nil && command.Expired(receivedAt, h.Now(), h.CommandExpiry) {
		h.Log.Warn("comment commands expired before they could be handled", "pr", ev.Number, "author", ev.Comment.Author,
			"received", receivedAt, "expiry", h.CommandExpiry)
		return h.Report.Reply(ctx, pr, command.ExpiredNotice(cmds, ev.Comment.Author, receivedAt, h.CommandExpiry))
	}
	if err := h.Report.React(ctx, repo, ev.Comment.ID, vcs.ReactionEyes); err != nil {
		h.Log.Warn("reacting to a command", "err", err)
	}
	pr, err = forge.PullRequest(ctx, repo, ev.Number)
	if err != nil {
		return err
	}
	for _, cmd := range cmds {
		if err := h.runCommand(ctx, forge, pr, ev.Comment.Author, cmd); err != nil {
			return err
		}
	}
	return nil
}

func (h *Handlers) runCommand(ctx context.Context, forge vcs.Forge, pr vcs.PullRequest, user string, cmd command.Command) error {
	switch cmd.Verb {
	case command.Help:
		return h.Report.Reply(ctx, pr, command.Usage)
	case command.Plan:
		if pr.State == "closed" {
			return h.Report.ReplyError(ctx, forge, pr, "This PR is closed: there is nothing to plan.")
		}
		return h.planPR(ctx, forge, pr, user, &cmd)
	case command.Apply:
		return h.applyByComment(ctx, forge, pr, user, cmd.Env, cmd.Accept)
	case command.Cancel:
		return h.cancelPR(ctx, forge, pr, user)
	case command.Unlock:
		return h.unlockCommand(ctx, forge, pr, user, cmd.Env)
	}
	return h.Report.ReplyError(ctx, forge, pr, fmt.Sprintf("`/dagctl %s` is not available in this version of dagctl-bot.", cmd.Verb))
}

// cancelPR stops the PR's running plans and applies; their checks end as cancelled and applies release their
// locks as they stop.
func (h *Handlers) cancelPR(ctx context.Context, forge vcs.Forge, pr vcs.PullRequest, user string) error {
	if err := h.closePR(ctx, forge, pr, "cancelled by "+user); err != nil {
		return err
	}
	return h.Report.Reply(ctx, pr, fmt.Sprintf("🚫 Cancelled this PR's running jobs for @%s.", user))
}

// unlockCommand releases an environment's lock (admins only): the named environment's, or every lock this PR
// holds.
func (h *Handlers) unlockCommand(ctx context.Context, forge vcs.Forge, pr vcs.PullRequest, user, env string) error {
	perm, err := forge.Permission(ctx, pr.Repo, user)
	if err != nil {
		return err
	}
	if perm != vcs.PermissionAdmin {
		return h.Report.ReplyError(ctx, forge, pr, fmt.Sprintf("@%s, only admins can unlock environments.", user))
	}
	var released []string
	if env != "" {
		held, ok, err := h.Store.ForceUnlock(ctx, pr.Repo.Forge, pr.Repo.FullName(), env)
		if err != nil {
			return err
		}
		if ok {
			released = append(released, fmt.Sprintf("`%s` (held by #%d, %s)", env, held.Owner.PR, held.Owner.User))
		}
	} else {
		locks, err := h.Store.LocksHeldByPR(ctx, pr.Repo.Forge, pr.Repo.FullName(), pr.Number)
		if err != nil {
			return err
		}
		for _, l := range locks {
			if _, ok, err := h.Store.ForceUnlock(ctx, l.Forge, l.Repo, l.Environment); err != nil {
				return err
			} else if ok {
				released = append(released, "`"+l.Environment+"`")
			}
		}
	}
	msg := "🔓 Nothing was locked."
	if len(released) > 0 {
		msg = "🔓 Unlocked " + strings.Join(released, ", ") + " for @" + user + "."
	}
	return h.Report.Reply(ctx, pr, msg)
}

// Rerequest plans again when someone asks a plan check to run again: the check's own commit, only while it is
// the PR's head, and only for a user with write permission (as `/dagctl plan --sha` of that commit would).
func (h *Handlers) Rerequest(ctx context.Context, forge vcs.Forge, repo vcs.Repo, ev vcs.RerequestEvent) error {
	id, ok := strings.CutPrefix(ev.ExternalID, "plan:")
	if !ok {
		return vcs.ErrIgnored
	}
	planID, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return vcs.ErrIgnored
	}
	p, err := h.Store.GetPlan(ctx, planID)
	if err != nil {
		return err
	}
	if p.PR == 0 || p.Forge != repo.Forge || p.Repo != repo.FullName() {
		return vcs.ErrIgnored // a push's plan, or a check of another repository
	}
	pr, err := forge.PullRequest(ctx, repo, p.PR)
	if err != nil {
		return err
	}
	if pr.State == "closed" {
		return vcs.ErrIgnored
	}
	perm, err := forge.Permission(ctx, repo, ev.Sender)
	if err != nil {
		return err
	}
	if !perm.CanWrite() {
		return h.Report.ReplyError(ctx, forge, pr, fmt.Sprintf("@%s, only users with write permission can re-run plans (you have %s): nothing was planned.", ev.Sender, perm))
	}
	cmd := command.Command{Verb: command.Plan, Env: p.Environment, Flags: p.Flags, SHA: p.HeadSHA}
	return h.planPR(ctx, forge, pr, ev.Sender, &cmd)
}

// Push plans a push to the default branch for the environments applied on merge, and reports it on the
// commit. It never applies: only an approved pull request's plan is applied. Pushes to other branches arrive as
// pull_request events when they matter.
func (h *Handlers) Push(ctx context.Context, forge vcs.Forge, repo vcs.Repo, ev vcs.PushEvent) error {
	if ev.Deleted || repo.DefaultBranch == "" || ev.Ref != "refs/heads/"+repo.DefaultBranch {
		return vcs.ErrIgnored
	}
	commit := vcs.PullRequest{Repo: repo, HeadSHA: ev.After, BaseSHA: ev.Before, HeadRef: repo.DefaultBranch,
		BaseRef: repo.DefaultBranch, Author: ev.Pusher, State: "open"}
	if strings.Trim(ev.Before, "0") == "" {
		commit.BaseSHA = ev.After // a new branch: its own config is the base
	}
	cfg, present, err := h.loadConfig(ctx, forge, commit)
	if err != nil || !present {
		if err != nil {
			h.Log.Warn("push to the default branch: config unusable", "sha", ev.After, "err", err)
		}
		return vcs.ErrIgnored
	}
	var targets []Target
	for _, e := range cfg.Environments {
		if e.AppliesOn(repoconfig.ApplyOnMerge) {
			for _, p := range cfg.Projects {
				targets = append(targets, Target{Project: p, Env: e})
			}
		}
	}
	// One plan per commit and target: a replayed push finds its plans. The default branch's plans are all of
	// "PR 0", so this reads them all: one read a push.
	existing, err := h.Store.ListPlansByPR(ctx, repo.Forge, repo.FullName(), 0)
	if err != nil {
		return err
	}
	for _, t := range targets {
		if hasPlanFor(existing, ev.After, t, plan.Flags{}, "") {
			continue
		}
		if err := h.startPlan(ctx, forge, commit, cfg, t, plan.Flags{}, ev.Pusher, ""); err != nil {
			return err
		}
	}
	return nil
}

// Installation keeps the store's installations and repositories current.
func (h *Handlers) Installation(ctx context.Context, forge string, ev vcs.InstallationEvent) error {
	switch ev.Action {
	case "deleted":
		return h.Store.RemoveInstallation(ctx, forge, ev.Account)
	case "created", "suspend", "unsuspend", "added", "removed", "new_permissions_accepted":
		if err := h.Store.UpsertInstallation(ctx, db.Installation{
			Forge: forge, Account: ev.Account, Owner: ev.Owner, Suspended: ev.Action == "suspend",
		}); err != nil {
			return err
		}
		for _, r := range ev.Added {
			if err := h.Store.UpsertRepo(ctx, db.Repo{
				Forge: forge, FullName: r.FullName(), Account: ev.Account, CloneURL: r.CloneURL, DefaultBranch: r.DefaultBranch,
			}); err != nil {
				return err
			}
		}
		for _, r := range ev.Removed {
			if err := h.Store.RemoveRepo(ctx, forge, r.FullName()); err != nil && !errors.Is(err, db.ErrNotFound) {
				return err
			}
		}
		return nil
	}
	return vcs.ErrIgnored
}
