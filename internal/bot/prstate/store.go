package prstate

import (
	"context"
	"time"

	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/jobs"
	"github.com/dagctl/dagctl-bot/internal/plan"
)

// Store is what the bot keeps durably: plans with their check runs, runs with their logs, and the
// installations. internal/db implements it on SQLite.
type Store interface {
	CreatePlan(ctx context.Context, p db.Plan) (db.Plan, error)
	GetPlan(ctx context.Context, id int64) (db.Plan, error)
	ListPlansByPR(ctx context.Context, forge, repo string, pr int) ([]db.Plan, error)
	// PRsPlannedAt lists the PRs of a repository with a plan of the commit.
	PRsPlannedAt(ctx context.Context, forge, repo, sha string) ([]int, error)
	// SetPlanStatus moves a plan to a status, as plan.Transition allows.
	SetPlanStatus(ctx context.Context, id int64, to plan.Status) (db.Plan, error)
	SetPlanResult(ctx context.Context, id int64, r db.PlanResult) (db.Plan, error)
	// MarkStale marks the PR's plans of other head commits stale and returns what changed.
	MarkStale(ctx context.Context, forge, repo string, pr int, headSHA string) ([]db.StatusChange, error)
	// SetPlanReported records the status the plan's check run shows, so a restart re-reports only what is behind.
	SetPlanReported(ctx context.Context, id int64, status plan.Status) error
	ListUnreportedPlans(ctx context.Context) ([]db.Plan, error)
	ListPlansInFlight(ctx context.Context) ([]db.Plan, error)
	// SetPlanResultPostedAt records when the forge says the plan's result was posted; the first time stays.
	SetPlanResultPostedAt(ctx context.Context, id int64, at time.Time) error
	// CheckRun is a check run id versions before the outbox stored for a plan (read, never written: the outbox
	// keeps the refs now).
	CheckRun(ctx context.Context, planID int64, name string) (int64, bool, error)

	CreateRun(ctx context.Context, planID int64, kind jobs.Kind, executor string) (db.Run, string, error)
	ListRuns(ctx context.Context, planID int64) ([]db.Run, error)
	StartRun(ctx context.Context, id int64, executorJobID string) (db.Run, error)
	FinishRun(ctx context.Context, id int64, res db.RunResult) (db.Run, error)
	ListUnfinishedRuns(ctx context.Context) ([]db.Run, error)
	// SetRunResume stores what a restarted bot needs to finish a run whose job outlives it; FinishRun deletes it.
	SetRunResume(ctx context.Context, id int64, state []byte) error
	RunResume(ctx context.Context, id int64) ([]byte, error)
	NewRunLogWriter(runID int64, interval time.Duration) *db.RunLogWriter
	RunLog(ctx context.Context, runID int64) ([]db.LogLine, error)

	RunLogTail(ctx context.Context, runID int64, n int) ([]db.LogLine, error)
	// RunResultLines are a job's result lines, kept aside from its capped log.
	RunResultLines(ctx context.Context, runID int64) ([]string, error)

	// Merge waits: a merge's apply waiting for the merged head's plan to end, kept across restarts.
	SetMergeWait(ctx context.Context, planID int64, value []byte) error
	MergeWait(ctx context.Context, planID int64) ([]byte, bool, error)
	DeleteMergeWait(ctx context.Context, planID int64) error
	MergeWaitPlans(ctx context.Context) ([]int64, error)
	// SetPREnded records a PR's end (closed or merged) or its reopening: a plan of an ended PR waits for no
	// approval (the metrics' plans awaiting approval).
	SetPREnded(ctx context.Context, forge, repo string, pr int, ended bool) error

	RecordApproval(ctx context.Context, a db.ApprovalSnapshot) error
	// Review events of a forge whose approvals name no commit, as its verified webhooks reported them: they date
	// the approvals its API lists (approval.DateApprovals). Recording one again stores nothing.
	RecordReviewEvent(ctx context.Context, e db.ReviewEvent) (bool, error)
	ReviewEvents(ctx context.Context, forge, repo string, pr int) ([]db.ReviewEvent, error)
	Approval(ctx context.Context, planID int64) (db.ApprovalSnapshot, error)

	TryLock(ctx context.Context, forge, repo, env string, owner db.LockOwner) (db.Lock, bool, error)
	Unlock(ctx context.Context, forge, repo, env string, owner db.LockOwner) error
	ForceUnlock(ctx context.Context, forge, repo, env string) (db.Lock, bool, error)
	Holder(ctx context.Context, forge, repo, env string) (db.Lock, bool, error)
	LocksHeldByPR(ctx context.Context, forge, repo string, pr int) ([]db.Lock, error)

	RecordApplied(ctx context.Context, a db.AppliedContent) error
	LastApplied(ctx context.Context, forge, repo, project, env string) (db.AppliedContent, error)
	RecordDeployed(ctx context.Context, d db.DeployedState) error
	LastDeployed(ctx context.Context, forge, repo, project, env string) (db.DeployedState, error)
	RecordApplyImage(ctx context.Context, img db.ApplyImage) error
	ApplyImageOf(ctx context.Context, runID int64) (db.ApplyImage, error)

	GetInstallation(ctx context.Context, forge, account string) (db.Installation, error)
	UpsertInstallation(ctx context.Context, in db.Installation) error
	RemoveInstallation(ctx context.Context, forge, account string) error
	UpsertRepo(ctx context.Context, r db.Repo) error
	RemoveRepo(ctx context.Context, forge, fullName string) error
}
