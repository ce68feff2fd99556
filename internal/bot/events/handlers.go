// Package events holds the bot's thin handlers, one per event kind (pull request, comment, review, rerequest,
// push, installation): each gathers what its rules need from the forge and the store, asks the pure rules
// (repoconfig, command, approval, deploy.Decide) and carries out the answer through the job runner, the apply
// sequence and the reporter.
package events

import (
	"log/slog"
	"time"

	"github.com/dagctl/dagctl-bot/internal/bot/apply"
	"github.com/dagctl/dagctl-bot/internal/bot/approvals"
	"github.com/dagctl/dagctl-bot/internal/bot/jobrun"
	"github.com/dagctl/dagctl-bot/internal/bot/prstate"
	"github.com/dagctl/dagctl-bot/internal/bot/report"
	"github.com/dagctl/dagctl-bot/internal/jobs"
)

// Handlers handle events.
type Handlers struct {
	Store prstate.Store
	// Executor is asked which secrets it refuses (jobs.SecretChecker) when the config is read.
	Executor jobs.Executor
	// ExecutorName is stored with each run ("local", "kubernetes").
	ExecutorName string
	Log          *slog.Logger
	Locks        *prstate.PRLocks
	Report       *report.Reporter
	Approvals    *approvals.Evaluator
	Runner       *jobrun.Runner
	Applies      *apply.Sequence
	// CommandExpiry and Now decide whether a comment's commands are too late to run (command.Expired).
	CommandExpiry time.Duration
	Now           func() time.Time
}
