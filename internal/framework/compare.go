package framework

import (
	"github.com/dagctl/dagctl-bot/internal/plan"
	"github.com/dagctl/dagctl-bot/internal/repoconfig"
)

// Comparer is a framework whose plan compares the head with a base commit (dbt: the version, the changed
// files, a parse of the base). For such a framework the bot picks the base commit itself (the commit last
// applied to the environment, else the merge base: from its store and the forge's API), has the plan job check
// it out beside the head (jobs.Source.BaseSHA), and completes the job's summary from both commits as the forge
// shows them (Complete). The job runs the PR's code and prints what it likes: what the commits say is never
// taken from it.
type Comparer interface {
	// CommitFiles are the repository paths of the files Complete reads at each commit besides its tree
	// (dbt: .dagctl/config.yaml and the project's dbt_project.yml).
	CommitFiles(p repoconfig.Project) []string
	// Complete fills the part of a plan's summary that comes from the commits. An error says what cannot be
	// read, in words a PR author can act on (a file at its line); the plan fails with it.
	Complete(s *plan.Summary, c Comparison) error
}

// Comparison is the two commits of one plan as the forge shows them, as plain data.
type Comparison struct {
	Project     repoconfig.Project // the governing project (repoconfig.Merge)
	Environment string
	Head        Commit
	// Base is the commit the head is compared with; nil when there is none (nothing was applied to the
	// environment and the PR has no merge base).
	Base *Commit
	// BaseIsDeployed: Base is the commit last applied to the environment, not the merge base.
	BaseIsDeployed bool
	// HasProductionState: the job was given the environment's state of its last successful deploy (dbt: the
	// production manifest, DAGCTL_DBT_STATE), as the bot stored it from that deploy (StateKeeper).
	HasProductionState bool
	// PRNumber is the PR whose own environment Environment is (see CommandRequest.PRNumber).
	PRNumber int
}

// Commit is one commit of a Comparison.
type Commit struct {
	SHA string
	// Tree maps every file of the commit to its content id (a blob hash), complete (never a truncated list).
	Tree map[string]string
	// Files are those of CommitFiles the commit has, by path; a path it lacks is absent.
	Files map[string][]byte
}

// ComparerOf is fw's Comparer, when its plans compare two commits.
func ComparerOf(fw Framework) (Comparer, bool) {
	c, ok := fw.(Comparer)
	return c, ok
}

// CompletePlan completes a finished plan job's outcome from the commits (Comparer.Complete) and says again
// what it means: a completed summary may deploy where the job's alone did not (plan.Outcome). An outcome
// without a summary, or one that failed, is left as it is; one the commits cannot complete fails, saying why.
// Pure.
func CompletePlan(c Comparer, o PlanOutcome, cmp Comparison) PlanOutcome {
	if o.Summary == nil || o.Status == plan.StatusFailed || o.Status == plan.StatusCancelled {
		return o
	}
	if err := c.Complete(o.Summary, cmp); err != nil {
		o.Summary, o.Status, o.Error = nil, plan.StatusFailed, err.Error()
		return o
	}
	if o.Error == "" {
		o.Status = plan.Outcome(*o.Summary)
	}
	return o
}
