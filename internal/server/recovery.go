package server

import (
	"context"
	"errors"
	"time"

	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/recovery"
)

// recoveryLoop recovers what the bot missed while it could not hear: on start and every RecoverInterval, on
// the wall clock (a test's fake clock would make it spin).
func (s *Server) recoveryLoop() *recovery.Loop {
	return &recovery.Loop{Every: s.cfg.RecoverInterval, Steps: s.recoverySteps(), Sleep: sleepContext, Log: s.log}
}

func (s *Server) recoverySteps() []recovery.Step {
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
	return steps
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
