// Package prstate holds what every part of the bot shares about a pull request: the Store port, what a stored
// plan remembers of its PR (PlanContext), the PR's current plans, check names, and the per-PR lock that
// serialises work on one PR's checks and sticky comment.
package prstate

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"

	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/repoconfig"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// Check kinds, the first part of a check run's name. Branch protection keys on the full names
// ("dagctl/plan: prod"): never change them casually.
const (
	CheckPlan     = "plan"
	CheckApproval = "approval"
	CheckApply    = "apply"
)

// CheckName is the check run's name for a kind, project and environment: "dagctl/plan: prod", or with several
// projects "dagctl/plan: analytics/prod".
func CheckName(kind string, cfg repoconfig.Config, project, env string) string {
	if len(cfg.Projects) > 1 {
		return fmt.Sprintf("dagctl/%s: %s/%s", kind, project, env)
	}
	return fmt.Sprintf("dagctl/%s: %s", kind, env)
}

// PlanContext is what a stored plan remembers of its PR and target, so that it can be run, re-run after a
// restart, and reported without the event that created it.
type PlanContext struct {
	PR      vcs.PullRequest        `json:"pr"`
	Project repoconfig.Project     `json:"project"`
	Env     repoconfig.Environment `json:"env"`
	// MultiProject: the repository has several projects, so check names carry the project.
	MultiProject bool           `json:"multi_project,omitempty"`
	Job          repoconfig.Job `json:"job"`
	// PREnvironment: Env is the PR's own environment (pr_environment), removed when the PR is closed.
	PREnvironment bool `json:"pr_environment,omitempty"`
	// StateFrom is, for a PR environment's plan, the environment whose production state it compares with and
	// builds on (dbt's PR build defers to it): the trusted config's prod, else its first protected environment.
	StateFrom string `json:"state_from,omitempty"`
	// Delivery is the delivery of the command that asked for the plan (Delivery.Key; "" for automatic plans,
	// keyed by their head): a replay of the command finds its plan by it.
	Delivery string `json:"delivery,omitempty"`
}

// StateEnvironment is the environment whose last deploy the plan compares with: its own, or for a PR
// environment StateFrom when set.
func (pc PlanContext) StateEnvironment() string {
	if pc.PREnvironment && pc.StateFrom != "" {
		return pc.StateFrom
	}
	return pc.Env.Name
}

// PRNumber is the PR whose own environment the plan is in, 0 for any other environment: a framework names what
// it builds for the PR by it (dbt: the PR's schema).
func (pc PlanContext) PRNumber() int {
	if pc.PREnvironment {
		return pc.PR.Number
	}
	return 0
}

// ProductionEnvironment is the environment a PR environment takes its production state from: prod when the
// config has it, else the first protected environment, else none.
func ProductionEnvironment(cfg repoconfig.Config) string {
	if _, ok := cfg.Environment("prod"); ok {
		return "prod"
	}
	for _, e := range cfg.Environments {
		if e.Protected {
			return e.Name
		}
	}
	return ""
}

// Config is the part of the repository's config the plan was made with.
func (pc PlanContext) Config() repoconfig.Config {
	cfg := repoconfig.Config{Projects: []repoconfig.Project{pc.Project}, Environments: []repoconfig.Environment{pc.Env}, Job: pc.Job}
	if pc.MultiProject {
		cfg.Projects = append(cfg.Projects, repoconfig.Project{Name: "(other)"})
	}
	return cfg
}

// CheckName is the name of the plan's check of that kind.
func (pc PlanContext) CheckName(kind string) string {
	return CheckName(kind, pc.Config(), pc.Project.Name, pc.Env.Name)
}

// NeedsApproval reports whether applying the plan's environment needs reviews at all.
func (pc PlanContext) NeedsApproval() bool { return pc.Env.NeedsApproval() }

// DecodeContext reads a stored plan's context.
func DecodeContext(p db.Plan) (PlanContext, error) {
	var pc PlanContext
	if err := json.Unmarshal(p.Context, &pc); err != nil {
		return pc, fmt.Errorf("plan %d: unreadable context: %w", p.ID, err)
	}
	return pc, nil
}

// CurrentPlans are the latest plan per (project, environment) of the PR's newest head, in creation order.
func CurrentPlans(plans []db.Plan) []db.Plan {
	if len(plans) == 0 {
		return nil
	}
	sort.Slice(plans, func(i, j int) bool { return plans[i].ID < plans[j].ID })
	head := plans[len(plans)-1].HeadSHA
	latest := map[string]int{}
	var out []db.Plan
	for _, p := range plans {
		if p.HeadSHA != head {
			continue
		}
		key := p.Project + "\x00" + p.Environment
		if i, ok := latest[key]; ok {
			out[i] = p
			continue
		}
		latest[key] = len(out)
		out = append(out, p)
	}
	return out
}

// LatestRun is the id of the plan's newest run, or 0.
func LatestRun(ctx context.Context, store Store, planID int64) int64 {
	runs, err := store.ListRuns(ctx, planID)
	if err != nil || len(runs) == 0 {
		return 0
	}
	return runs[len(runs)-1].ID
}

// PRLocks serialise work on one PR's checks and sticky comment, across the handlers, the job runner and the
// apply sequence. A PR's entry lives while someone holds or waits for its lock, so a bot that runs for months
// keeps none for the PRs it saw.
type PRLocks struct {
	mu    sync.Mutex
	locks map[string]*prLock
}

type prLock struct {
	sync.Mutex
	users int // holders and waiters, counted under PRLocks.mu
}

// Lock takes the PR's lock and returns its release, which must be called once.
func (l *PRLocks) Lock(repo vcs.Repo, number int) func() {
	key := fmt.Sprintf("%s:%s#%d", repo.Forge, repo.FullName(), number)
	l.mu.Lock()
	if l.locks == nil {
		l.locks = map[string]*prLock{}
	}
	m, ok := l.locks[key]
	if !ok {
		m = &prLock{}
		l.locks[key] = m
	}
	m.users++
	l.mu.Unlock()
	m.Lock()
	return func() {
		m.Unlock()
		l.mu.Lock()
		if m.users--; m.users == 0 {
			delete(l.locks, key)
		}
		l.mu.Unlock()
	}
}

// Short is a commit's short form, as messages show it.
func Short(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}

// entries is how many PRs have a lock entry (for tests).
func (l *PRLocks) entries() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.locks)
}
