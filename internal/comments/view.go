// Package comments renders what the bot writes on a pull request: the sticky comment (one or more bodies, each
// within the forge's size limit) and the check-run output of one (project, environment). Pure rendering: plain
// data in, markdown out, no I/O. Everything user-controlled (model names, errors, user names, notes) is escaped,
// so that no input can break the layout.
package comments

import "github.com/dagctl/dagctl-bot/internal/plan"

// View is everything one pull request's sticky comment shows.
type View struct {
	// Repo ("owner/name") and PR identify the pull request for the adapters and logs; the comment, posted on
	// that PR, does not repeat them.
	Repo    string
	PR      int
	HeadSHA string // the commit the plans are for; shown shortened
	// Notes are shown under the title, one line each, e.g. "Fork PR: a user with write permission comments
	// `/dagctl plan`". Plain text; `backticked` spans render as code.
	Notes    []string
	Sections []Section
}

// State is where one (project, environment) is, as the comment and the check run show it: the plan lifecycle
// (plan.Status) extended with the apply steps.
type State string

const (
	StateQueued      State = "queued"     // a plan job is waiting for a runner
	StatePlanning    State = "planning"   // a plan job is running
	StatePlanned     State = "planned"    // plan ready with changes; see Approval for whether it may be applied
	StateNoChanges   State = "no-changes" // nothing to apply
	StatePlanFailed  State = "plan-failed"
	StateCancelled   State = "cancelled"
	StateStale       State = "stale" // superseded by a newer commit
	StateApplying    State = "applying"
	StateApplied     State = "applied"
	StateApplyFailed State = "apply-failed"
)

// StateOf maps a stored plan's status to the state shown.
func StateOf(s plan.Status) State {
	switch s {
	case plan.StatusQueued:
		return StateQueued
	case plan.StatusRunning:
		return StatePlanning
	case plan.StatusReady:
		return StatePlanned
	case plan.StatusNoChanges:
		return StateNoChanges
	case plan.StatusFailed:
		return StatePlanFailed
	case plan.StatusCancelled:
		return StateCancelled
	case plan.StatusStale:
		return StateStale
	}
	return State(s)
}

// Approval is the approval state of one plan, computed by the caller from the forge's reviews.
type Approval struct {
	ApprovedBy []string // logins that approved the current head
	// Missing says, in words, what is still needed, e.g. "1 more approval from `org/data-team`". Empty when the
	// plan may be applied as far as approvals go.
	Missing []string
}

// Satisfied reports whether nothing is missing.
func (a Approval) Satisfied() bool { return len(a.Missing) == 0 }

// Section is one (project, environment) of the pull request.
type Section struct {
	Project     string // empty when the repository has a single project
	Environment string
	State       State
	// Summary is the plan's summary; nil while queued or planning, and when the plan failed.
	Summary *plan.Summary
	// Error is the failure text (plan or apply), shown in a code block; its end is kept when it is too long.
	Error string
	// LogURL points at the full log. Every truncation in the output points here.
	LogURL      string
	TriggeredBy string // the user whose push or command made this plan
	Approval    Approval
	// ApplyByComment: `/dagctl apply <env>` applies this environment. ApplyOnMerge: merging the PR does. Neither:
	// the bot only plans it.
	ApplyByComment bool
	ApplyOnMerge   bool
	// Note is one extra line, e.g. "Locked by #42: the apply waits for it". Plain text; `backticks` render as code.
	Note string
}

// name is how the section is named to users, matching the check names ("<project>/<env>" with several
// projects).
func (s Section) name() string {
	if s.Project == "" {
		return s.Environment
	}
	return s.Project + "/" + s.Environment
}
