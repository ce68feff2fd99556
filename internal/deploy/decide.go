package deploy

import (
	"fmt"
	"strings"

	"github.com/dagctl/dagctl-bot/internal/plan"
	"github.com/dagctl/dagctl-bot/internal/repoconfig"
)

// Step is the point of an apply at which the decision is taken: each can change the answer.
type Step int

const (
	// StepAsked: the apply is asked for (a `/dagctl apply` comment, or a merge).
	StepAsked Step = iota
	// StepLocked: the environment's lock was tried; the PR and the content are checked again under it.
	StepLocked
	// StepReplanned: the plan was made again at the commit to apply, and its scope compared.
	StepReplanned
)

// Facts are everything the deploy decision looks at, as plain data. The handlers gather them from the forge and
// the store; the expensive ones (forge reads) are pointers, nil until gathered: Decide asks for them one at a
// time (Decision.Need), in the order the rules need them, so that a request refused early reads nothing more.
type Facts struct {
	Step    Step
	Trigger repoconfig.ApplyTrigger
	User    string // who asked: the commenter, or whoever merged
	Request Request
	PR      PR
	Target  *Target // nil until the request's targets are resolved
}

// Request is what the apply command asked for.
type Request struct {
	EnvNamed bool   // the command named the environment
	Accept   string // a prefix of the content hash an admin accepts (`--accept`)
	// UserIsAdmin is gathered when Accept is set.
	UserIsAdmin *bool
}

// PR is the pull request, fresh from the forge.
type PR struct {
	Closed    bool
	Merged    bool
	Mergeable *bool // nil: the forge has not computed it
	HeadSHA   string
	BaseRef   string
	// DefaultBranch is the repository's default branch (the trust root).
	DefaultBranch string
	// BaseIsDeployBranch: the PR targets a branch that deploys, as the trusted config says.
	BaseIsDeployBranch bool
}

// Target is one (project, environment) the apply is for.
type Target struct {
	Env Env
	// Name is how messages name the target: "prod", or "analytics/prod" with several projects.
	Name string
	// SHA is the commit to apply: the PR's head (by comment), its merge commit, or the deploy branch's head.
	SHA string
	// AtBranchHead: SHA is the deploy branch's head (an admin's --accept on a merged PR), which contains itself.
	AtBranchHead bool
	Plan         Plan
	Applier      *bool // the user is an allowed applier; gathered when the environment names appliers
	Behind       *int  // commits SHA is behind the deploy branch; gathered for protected environments
	Approval     *Approval
	Lock         *Lock            // at StepLocked: who holds the environment's lock
	Content      *ReviewedContent // at StepLocked, for protected environments
	// ContentAccepted: an admin accepted the content at StepLocked; carried to StepReplanned.
	ContentAccepted bool
	// ScopeDifferences are the approved plan's scope against the plan made again at SHA (StepReplanned).
	ScopeDifferences []string
}

// Env is the environment as the trusted config says now.
type Env struct {
	Name             string
	AppliesOnTrigger bool // the environment is applied by this trigger
	NeedsApproval    bool // protected: applied only with someone else's approval, from a deploy branch
	Appliers         []string
}

// EnvOf is an environment of the trusted config as the decision sees it for a trigger.
func EnvOf(e repoconfig.Environment, trigger repoconfig.ApplyTrigger) Env {
	return Env{Name: e.Name, AppliesOnTrigger: e.AppliesOn(trigger), NeedsApproval: e.NeedsApproval(), Appliers: e.Appliers}
}

// Plan is the newest plan of the target at the PR's head, and its applies.
type Plan struct {
	Found         bool // a plan exists at the PR's head
	Status        plan.Status
	HasSummary    bool
	Uncategorized []string // models the framework cannot categorise
	Tool          string   // the project's framework ("sqlmesh"), which the refusal of uncategorised changes names
	ApplyRunning  int64    // the id of an apply of this plan that is queued or running, or 0
	Applied       bool     // an apply of this plan succeeded
}

// Approval is what the approval rules said of the plan.
type Approval struct {
	Approved bool
	Describe string // the result in words (approval.Result.Describe)
}

// Lock is the environment's lock as the apply found it.
type Lock struct {
	Ours   bool // this apply holds it
	PR     int
	User   string
	PlanID int64
}

// ReviewedContent is what the content rule found: the project's content hash at SHA and the files that differ
// from the last applied content that the approved change does not account for (UnreviewedFiles).
type ReviewedContent struct {
	Hash       string
	Unreviewed []string
}

// Verdict is what to do.
type Verdict string

const (
	Apply       Verdict = "apply"
	Refuse      Verdict = "refuse"
	Wait        Verdict = "wait"          // the lock is held by another apply, or a merge's plan has not ended: ask again then
	NothingToDo Verdict = "nothing to do" // no changes, applied already, or a branch that does not deploy
	Undecided   Verdict = "undecided"     // a fact is missing: Need names it
)

// Need is a fact Decide needs before it can decide.
type Need string

const (
	NeedAdmin    Need = "admin"    // Request.UserIsAdmin
	NeedTarget   Need = "target"   // Facts.Target
	NeedApplier  Need = "applier"  // Target.Applier
	NeedBehind   Need = "behind"   // Target.Behind
	NeedApproval Need = "approval" // Target.Approval
	NeedLock     Need = "lock"     // Target.Lock
	NeedContent  Need = "content"  // Target.Content
)

// Decision is the verdict with its reasons (for Apply, informational ones such as an accepted content).
type Decision struct {
	Verdict Verdict
	Reasons []Reason
	Need    Need
}

// Reason is one rule's finding: a stable code, and the text shown on the PR (Title on the apply's check).
type Reason struct {
	Code    Code
	Title   string
	Message string
}

// Has reports whether the decision gives a reason of that code.
func (d Decision) Has(c Code) bool {
	for _, r := range d.Reasons {
		if r.Code == c {
			return true
		}
	}
	return false
}

// Messages are the reasons' messages, in order.
func (d Decision) Messages() []string {
	out := make([]string, len(d.Reasons))
	for i, r := range d.Reasons {
		out[i] = r.Message
	}
	return out
}

// Decide says whether a plan may be applied now. Pure: it reads only the facts, and rules that need a fact not
// gathered yet return Undecided with what they need.
func Decide(f Facts) Decision {
	switch f.Step {
	case StepLocked:
		return decideLocked(f)
	case StepReplanned:
		return decideReplanned(f)
	}
	if d, decided := decideRequest(f); decided {
		return d
	}
	if f.Target == nil {
		return need(NeedTarget)
	}
	if d, decided := decideTarget(f, *f.Target); decided {
		return d
	}
	return decidePlan(f, *f.Target)
}

func need(n Need) Decision { return Decision{Verdict: Undecided, Need: n} }

func verdict(v Verdict, code Code, msg string) Decision {
	return Decision{Verdict: v, Reasons: []Reason{{Code: code, Message: msg}}}
}

func refuse(code Code, msg string) Decision { return verdict(Refuse, code, msg) }

// decideRequest holds the rules about the PR and the request as a whole, before any target is looked at.
func decideRequest(f Facts) (Decision, bool) {
	if f.Trigger == repoconfig.ApplyOnMerge {
		if !f.PR.BaseIsDeployBranch {
			return verdict(NothingToDo, CodeNotDeployBranch, "merged into a branch that does not deploy"), true
		}
		return Decision{}, false
	}
	overMerged := f.PR.Merged && f.Request.Accept != ""
	switch {
	case f.PR.Closed && !overMerged:
		return refuse(CodePRClosed, "This PR is closed: nothing is applied."), true
	case !f.PR.Merged && f.PR.Mergeable != nil && !*f.PR.Mergeable:
		return refuse(CodeConflicts, "This PR has conflicts with its base branch: resolve them, and apply the new plan."), true
	case overMerged && !f.Request.EnvNamed:
		return refuse(CodeEnvUnnamed, "Name the environment: `/dagctl apply <env> --accept <hash>`."), true
	case f.Request.Accept != "" && f.Request.UserIsAdmin == nil:
		return need(NeedAdmin), true
	case f.Request.Accept != "" && !*f.Request.UserIsAdmin:
		return refuse(CodeNotAdmin, fmt.Sprintf("@%s, only admins can accept content no approved plan covered (`--accept`).", f.User)), true
	}
	return Decision{}, false
}

// decideTarget holds the rules about the environment (by comment): its trigger, its appliers, the trust root and
// divergence from the deploy branch.
func decideTarget(f Facts, t Target) (Decision, bool) {
	if f.Trigger != repoconfig.ApplyOnComment {
		return Decision{}, false
	}
	overMerged := f.PR.Merged && f.Request.Accept != ""
	switch {
	case !t.Env.AppliesOnTrigger && !overMerged:
		return refuse(CodeNotOnTrigger, fmt.Sprintf("`%s` is not applied by comment: it is applied when the PR is merged (apply_on in %s).", t.Env.Name, repoconfig.Path)), true
	case len(t.Env.Appliers) > 0 && t.Applier == nil:
		return need(NeedApplier), true
	case len(t.Env.Appliers) > 0 && !*t.Applier:
		return refuse(CodeNotApplier, fmt.Sprintf("@%s may not apply `%s` (appliers: %s)", f.User, t.Env.Name, strings.Join(t.Env.Appliers, ", "))), true
	case t.Env.NeedsApproval && !f.PR.BaseIsDeployBranch:
		return refuse(CodeNotDeployBranch, fmt.Sprintf("`%s` is protected and this PR targets `%s`, which is not a deploy branch (the default branch `%s`, or one named in `deploy_branches` of its %s): it can be planned here, and applied from a PR into a deploy branch", t.Env.Name, f.PR.BaseRef, f.PR.DefaultBranch, repoconfig.Path)), true
	case overMerged || !t.Env.NeedsApproval:
		return Decision{}, false
	case t.Behind == nil:
		return need(NeedBehind), true
	case *t.Behind > 0:
		return refuse(CodeBehind, behindMessage(f, t)), true
	}
	return Decision{}, false
}

// decidePlan holds the rules about the target's plan: its status, its applies and its approval. A merge skips
// what has nothing to apply before it says why the rest cannot be applied; a comment says why first.
func decidePlan(f Facts, t Target) Decision {
	p := t.Plan
	byMerge := f.Trigger == repoconfig.ApplyOnMerge
	switch {
	case byMerge && p.Found && p.Status == plan.StatusNoChanges:
		return verdict(NothingToDo, CodeNoChanges, fmt.Sprintf("`%s` has no changes to apply", t.Env.Name))
	case byMerge && p.Applied:
		return verdict(NothingToDo, CodeApplied, fmt.Sprintf("`%s` is applied already", t.Name))
	case byMerge && p.Found && unfinished(p.Status) && t.Env.NeedsApproval:
		// No review can have counted for a plan whose result was not posted: the merge was not approved.
		return refuse(CodeNotApproved, fmt.Sprintf("`%s` was NOT applied: the PR was merged without the required approval (its plan for %s had not finished, and a review counts only once the plan's result is posted).", t.Env.Name, shortSHA(f.PR.HeadSHA)))
	case byMerge && p.Found && unfinished(p.Status):
		// The merge asked for this head to be applied: its apply waits for the plan instead of being lost.
		return verdict(Wait, CodePlanRunning, fmt.Sprintf("`%s` waits for its plan for %s, which has not finished: it is applied when the plan ends.", t.Name, shortSHA(f.PR.HeadSHA)))
	}
	if code, msg := planRefusal(f, t); code != "" {
		if byMerge {
			msg = fmt.Sprintf("`%s` was NOT applied: %s.", t.Env.Name, msg)
		}
		return refuse(code, msg)
	}
	if p.Status == plan.StatusNoChanges {
		msg := fmt.Sprintf("`%s` has no changes to apply", t.Env.Name)
		if f.Request.EnvNamed {
			return refuse(CodeNoChanges, msg)
		}
		return verdict(NothingToDo, CodeNoChanges, msg)
	}
	switch {
	case t.Approval == nil:
		return need(NeedApproval)
	case !t.Approval.Approved && byMerge:
		return refuse(CodeNotApproved, fmt.Sprintf("`%s` was NOT applied: the PR was merged without the required approval (%s).", t.Env.Name, t.Approval.Describe))
	case !t.Approval.Approved:
		return refuse(CodeNotApproved, fmt.Sprintf("`%s` is not approved: %s", t.Env.Name, t.Approval.Describe))
	}
	return Decision{Verdict: Apply}
}

// unfinished reports whether a plan is still queued or running.
func unfinished(s plan.Status) bool { return s == plan.StatusQueued || s == plan.StatusRunning }

// planRefusal says why the plan itself cannot be applied, or "" when it can.
func planRefusal(f Facts, t Target) (Code, string) {
	p := t.Plan
	switch {
	case !p.Found:
		return CodeNoPlan, fmt.Sprintf("`%s` has no plan for %s: comment `/dagctl plan %s` first", t.Name, shortSHA(f.PR.HeadSHA), t.Env.Name)
	case p.Status == plan.StatusNoChanges:
	case p.Status != plan.StatusReady:
		return CodePlanNotReady, fmt.Sprintf("`%s`'s plan for %s is %s", t.Name, shortSHA(f.PR.HeadSHA), p.Status)
	case !p.HasSummary:
		return CodeNoSummary, fmt.Sprintf("`%s`'s plan has no summary", t.Name)
	case len(p.Uncategorized) > 0:
		return CodeUncategorized, fmt.Sprintf("`%s` has changes %s cannot categorise (%s): categorise them in the project and push", t.Name, toolName(p.Tool), strings.Join(p.Uncategorized, ", "))
	}
	switch {
	case p.ApplyRunning != 0:
		return CodeApplyRunning, fmt.Sprintf("`%s` is being applied already (run %d)", t.Name, p.ApplyRunning)
	case p.Applied:
		return CodeApplied, fmt.Sprintf("`%s` is applied already: push a new commit to plan more changes", t.Name)
	}
	return "", ""
}

// toolName is the framework a message names, when the facts say which.
func toolName(tool string) string {
	if tool == "" {
		return "the framework"
	}
	return tool
}

// decideLocked holds the rules checked again under the environment's lock, for protected environments: the PR
// must still contain the deploy branch's head (by comment), and the content may differ from the last applied
// content only by what the approved plan's PR changed, unless an admin accepted that content.
func decideLocked(f Facts) Decision {
	if f.Target == nil {
		return need(NeedTarget)
	}
	t := *f.Target
	switch {
	case t.Lock == nil:
		return need(NeedLock)
	case !t.Lock.Ours:
		return verdict(Wait, CodeLocked, fmt.Sprintf("Waiting: `%s` is locked by #%d (%s), applying plan %d.", t.Env.Name, t.Lock.PR, t.Lock.User, t.Lock.PlanID))
	case !t.Env.NeedsApproval:
		return Decision{Verdict: Apply}
	}
	if f.Trigger == repoconfig.ApplyOnComment && !t.AtBranchHead {
		switch {
		case t.Behind == nil:
			return need(NeedBehind)
		case *t.Behind > 0:
			d := refuse(CodeBehind, behindMessage(f, t)+"\n\nNothing was applied.")
			d.Reasons[0].Title = "Refused: the PR is behind its deploy branch"
			return d
		}
	}
	switch {
	case t.Content == nil:
		return need(NeedContent)
	case len(t.Content.Unreviewed) == 0:
		return Decision{Verdict: Apply}
	case f.Request.Accept != "" && strings.HasPrefix(t.Content.Hash, f.Request.Accept):
		return verdict(Apply, CodeContentAccepted, fmt.Sprintf("@%s accepted content %s, which no approved plan covered (%d files)", f.User, shortHash(t.Content.Hash), len(t.Content.Unreviewed)))
	}
	d := refuse(CodeUnreviewed, unreviewedMessage(t))
	d.Reasons[0].Title = "Refused: files changed since the last apply that no approved plan covered"
	return d
}

// decideReplanned compares the approved plan's scope with the plan made again at the commit to apply. Content
// an admin accepted is applied as it plans now.
func decideReplanned(f Facts) Decision {
	if f.Target == nil {
		return need(NeedTarget)
	}
	t := *f.Target
	if len(t.ScopeDifferences) == 0 || t.ContentAccepted {
		return Decision{Verdict: Apply}
	}
	d := refuse(CodeScopeChanged, "Planning again at "+shortSHA(t.SHA)+" gives a different plan than the one approved:\n\n- "+strings.Join(t.ScopeDifferences, "\n- ")+
		"\n\nNothing was applied. The new plan is on the PR and needs a fresh approval.")
	d.Reasons[0].Title = "Refused: the plan changed since it was approved"
	return d
}

func behindMessage(f Facts, t Target) string {
	return fmt.Sprintf("`%s`: this PR's head %s is %d commit(s) behind `%s`: applying it would roll `%s` back by what was merged since. Update the branch, then apply the new plan.",
		t.Env.Name, shortSHA(t.SHA), *t.Behind, f.PR.BaseRef, t.Env.Name)
}

// maxListedFiles bounds the files named in a refusal.
const maxListedFiles = 30

func unreviewedMessage(t Target) string {
	var b strings.Builder
	fmt.Fprintf(&b, "`%s` was last applied from content that differs from %s in files the approved plan's PR did not change (or changed differently): nobody approved them for `%s`.\n\n",
		t.Env.Name, shortSHA(t.SHA), t.Env.Name)
	for i, f := range t.Content.Unreviewed {
		if i == maxListedFiles {
			fmt.Fprintf(&b, "- … and %d more\n", len(t.Content.Unreviewed)-maxListedFiles)
			break
		}
		fmt.Fprintf(&b, "- `%s`\n", f)
	}
	fmt.Fprintf(&b, "\nNothing was applied. Open a PR that plans these changes and have it approved, or an admin who reviewed them comments `/dagctl apply %s --accept %s` on this PR to apply the deploy branch's head as it is.",
		t.Env.Name, shortHash(t.Content.Hash))
	return b.String()
}

func shortSHA(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}

func shortHash(hash string) string {
	if len(hash) > 16 {
		return hash[:16]
	}
	return hash
}
