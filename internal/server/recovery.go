package server

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/dagctl/dagctl-bot/internal/bot/prstate"
	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/recovery"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// recoveryLoop recovers what the bot missed while it could not hear: on start and every RecoverInterval, on
// the wall clock (a test's fake clock would make it spin).
func (s *Server) recoveryLoop() *recovery.Loop {
	return &recovery.Loop{Every: s.cfg.RecoverInterval, Steps: s.recoverySteps(), Sleep: sleepContext, Log: s.log}
}

// recoverySteps are built once per server: the reconciler remembers which heads it tried, for the loop and
// RecoverMissed alike.
func (s *Server) recoverySteps() []recovery.Step {
	s.recoveryOnce.Do(func() { s.recoveryStepList = s.newRecoverySteps() })
	return s.recoveryStepList
}

func (s *Server) newRecoverySteps() []recovery.Step {
	var steps []recovery.Step
	for _, name := range s.forges.names() {
		r := &recovery.Redeliverer{
			Forge: name, Source: func() (recovery.Redelivery, bool) { return s.redelivery(name) },
			Stored: s.storedDelivery, Now: s.now, Log: s.log,
		}
		steps = append(steps, recovery.Step{Name: "asking " + name + " for missed webhooks", Run: func(ctx context.Context) error {
			_, err := r.Once(ctx)
			return err
		}})
	}
	reconciler := &recovery.Reconciler{Forges: s.openPRForges, Repos: s.servedRepos, PlannedHeads: s.plannedHeads,
		Plan: s.planMissedAllowed, Log: s.log}
	return append(steps, recovery.Step{Name: "planning open PRs whose head has no plan", Run: func(ctx context.Context) error {
		_, err := reconciler.Once(ctx)
		return err
	}})
}

// RecoverMissed runs each recovery once (Start runs them on start and every RecoverInterval). Tests call it.
func (s *Server) RecoverMissed(ctx context.Context) error {
	var errs []error
	for _, step := range s.recoverySteps() {
		errs = append(errs, step.Run(ctx))
	}
	return errors.Join(errs...)
}

// redelivery is the forge's redelivery API, when its adapter has one and it is configured (GitHub).
func (s *Server) redelivery(name string) (recovery.Redelivery, bool) {
	port, ok := s.forges.get(name)
	if !ok {
		return nil, false
	}
	r, ok := port.(recovery.Redelivery)
	return r, ok
}

// openPRForges are the configured forges whose adapter lists open pull requests.
func (s *Server) openPRForges() map[string]recovery.OpenPRs {
	out := map[string]recovery.OpenPRs{}
	for _, name := range s.forges.names() {
		if port, ok := s.forges.get(name); ok {
			if lister, ok := port.(recovery.OpenPRs); ok {
				out[name] = lister
			}
		}
	}
	return out
}

// servedRepos are the repositories of a forge the bot serves: those its installations named (not suspended)
// and those it has planned for, each once.
func (s *Server) servedRepos(ctx context.Context, forge string) ([]vcs.Repo, error) {
	var out []vcs.Repo
	seen := map[string]bool{}
	add := func(r vcs.Repo) {
		if key := strings.ToLower(r.FullName()); r.Forge == forge && !seen[key] {
			seen[key] = true
			out = append(out, r)
		}
	}
	installed, err := s.store.ListRepos(ctx)
	if err != nil {
		return nil, err
	}
	for _, r := range installed {
		if !r.Suspended {
			add(vcs.Repo{Forge: r.Forge, Owner: r.Owner(), Name: r.Name(), Account: r.Account, CloneURL: r.CloneURL, DefaultBranch: r.DefaultBranch})
		}
	}
	planned, err := s.store.LatestPlanPerRepo(ctx)
	if err != nil {
		return nil, err
	}
	for _, p := range planned {
		if pc, err := prstate.DecodeContext(p); err == nil {
			add(pc.PR.Repo)
		}
	}
	return out, nil
}

// plannedHeads are the head commits the pull request has plans of.
func (s *Server) plannedHeads(ctx context.Context, repo vcs.Repo, pr int) ([]string, error) {
	plans, err := s.store.ListPlansByPR(ctx, repo.Forge, repo.FullName(), pr)
	var heads []string
	for _, p := range plans {
		heads = append(heads, p.HeadSHA)
	}
	return heads, err
}

// storedDelivery reports whether the intake has the delivery, whatever became of it since.
func (s *Server) storedDelivery(ctx context.Context, forge, guid string) (bool, error) {
	_, err := s.store.GetDelivery(ctx, forge, guid)
	if errors.Is(err, db.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

func (s *Server) now() time.Time {
	if s.opts.Now != nil {
		return s.opts.Now()
	}
	return time.Now()
}

func sleepContext(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
