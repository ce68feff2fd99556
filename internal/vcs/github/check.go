package github

// CheckStatus is where a check is.
type CheckStatus string

const (
	CheckQueued     CheckStatus = "queued"
	CheckInProgress CheckStatus = "in_progress"
	CheckCompleted  CheckStatus = "completed"
)

// CheckConclusion is how a completed check ended.
type CheckConclusion string

const (
	ConclusionSuccess        CheckConclusion = "success"
	ConclusionFailure        CheckConclusion = "failure"
	ConclusionNeutral        CheckConclusion = "neutral"
	ConclusionCancelled      CheckConclusion = "cancelled"
	ConclusionActionRequired CheckConclusion = "action_required"
	ConclusionSkipped        CheckConclusion = "skipped"
)

// Check is a GitHub check run, as this adapter writes it: vcs.Status is what the core speaks (PutStatus maps it).
type Check struct {
	ID         int64           `json:"id,omitempty"` // zero until created
	Name       string          `json:"name"`
	HeadSHA    string          `json:"head_sha"`
	Status     CheckStatus     `json:"status"`
	Conclusion CheckConclusion `json:"conclusion,omitempty"`
	Title      string          `json:"title,omitempty"`
	Summary    string          `json:"summary,omitempty"`
	Text       string          `json:"text,omitempty"`
	DetailsURL string          `json:"details_url,omitempty"`
	// ExternalID ties the check to the bot's own record (a run id), so that rerequests can be traced back.
	ExternalID string `json:"external_id,omitempty"`
}
