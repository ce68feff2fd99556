package bot

import "github.com/dagctl/dagctl-bot/internal/bot/jobrun"

// The job settings and the plan job's interpretation live with the job runner; these names keep what
// internal/server and cmd/ call.
type (
	JobSettings = jobrun.JobSettings
	JobRequest  = jobrun.JobRequest
	PlanOutcome = jobrun.PlanOutcome
	Tail        = jobrun.Tail
)

var (
	InterpretPlan   = jobrun.InterpretPlan
	RunJob          = jobrun.RunJob
	NewTail         = jobrun.NewTail
	DescribeRefused = jobrun.DescribeRefused
)
