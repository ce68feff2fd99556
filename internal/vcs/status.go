package vcs

// StatusState is where a per-(commit, name) status is, in the core's words. Each adapter maps it to its forge
// and documents the mapping: GitHub check runs have all eight; GitLab commit statuses have pending, running,
// success, failed, canceled and skipped, so "blocked" and "neutral" need an adapter's decision.
type StatusState string

const (
	StatusQueued    StatusState = "queued"
	StatusRunning   StatusState = "running"
	StatusSuccess   StatusState = "success"
	StatusFailure   StatusState = "failure"
	StatusNeutral   StatusState = "neutral"   // finished, neither passing nor failing (informational)
	StatusBlocked   StatusState = "blocked"   // waiting on a person: an approval, or an apply by comment
	StatusCancelled StatusState = "cancelled" // stopped before it finished (superseded, cancelled)
	StatusSkipped   StatusState = "skipped"
)

// Final reports whether the state is an end state (a status in it is not expected to change again).
// Blocked is final for the forge (GitHub completes the check run as action_required): it changes only when a
// person acts, and the bot then writes a new state.
func (s StatusState) Final() bool { return s != StatusQueued && s != StatusRunning }

// Status is what the core reports per (commit, name): GitHub shows it as a check run, GitLab and Gitea as a
// commit status. Names are stable ("dagctl/plan: prod"): branch protection and "pipelines must succeed" key on
// them.
type Status struct {
	Name      string      `json:"name"`
	CommitSHA string      `json:"commit_sha"`
	State     StatusState `json:"state"`
	// Description is one line. Forges cap it (GitLab: 255 characters); the adapter shortens it.
	Description string `json:"description"`
	// DetailsURL is where a person reads more (the plan's log or page).
	DetailsURL string `json:"details_url,omitempty"`
	// ExternalID ties the status to the bot's record (plan:ID, apply:RUN), for rerequests.
	ExternalID string `json:"external_id,omitempty"`
	// Output is the rich part, for forges that show one (GitHub's check run summary and text); others drop it.
	Output *StatusOutput `json:"output,omitempty"`
	// Pipeline, when set, is the forge's group of a commit's statuses this write must join, as the adapter
	// spells it (GitLab: a pipeline id, which "Pipelines must succeed" reads). "" lets the forge choose (GitLab:
	// the commit's newest pipeline). Forges whose statuses belong to the commit alone (GitHub) ignore it.
	Pipeline string `json:"pipeline,omitempty"`
}

// StatusOutput is a status's rich output: a title, a markdown summary and details.
type StatusOutput struct {
	Title   string `json:"title"`
	Summary string `json:"summary"`
	Text    string `json:"text,omitempty"`
}

// StatusRef is what an adapter needs to write the same status again (GitHub: the check run's id). The core
// stores it and passes it back; forges that upsert by (commit, name) return "". It is opaque to the core.
type StatusRef string
