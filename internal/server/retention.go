package server

import (
	"context"
	"time"

	"github.com/dagctl/dagctl-bot/internal/db"
)

const (
	// retentionEvery is how often the store is pruned; what a prune finds is at most an hour's worth.
	retentionEvery = time.Hour
	// pruneYield is the pause between prune batches: the writer is free then, so a webhook's insert waits for at
	// most one batch (a few ms), never for the whole prune.
	pruneYield = 5 * time.Millisecond
)

func (s *Server) retention() db.Retention {
	return db.Retention{DeliveryBodies: s.cfg.Retention.DeliveryBodies, Deliveries: s.cfg.Retention.Deliveries, RunLogs: s.cfg.Retention.RunLogs,
		ReviewEvents: s.cfg.Retention.RunLogs} // a PR's review events live as long as its runs' logs
}

// Prune applies the retention as of now, which is on the store's clock (the wall clock: rows are stamped with it).
// The server prunes hourly from Start; tests call it with a later time.
func (s *Server) Prune(ctx context.Context, now time.Time) (db.Pruned, error) {
	p, err := s.store.Prune(ctx, s.retention(), now, func(ctx context.Context) error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pruneYield):
			return nil
		}
	})
	if err != nil {
		s.log.Error("pruning the store", "err", err)
	} else if p.Batches > 0 {
		s.log.Info("pruned the store", "deliveries", p.Deliveries, "delivery_bodies", p.DeliveryBodies, "run_log_rows", p.RunLogRows, "review_events", p.ReviewEvents,
			"batches", p.Batches, "retain_delivery_bodies", s.cfg.Retention.DeliveryBodies, "retain_run_logs", s.cfg.Retention.RunLogs)
	}
	return p, err
}

// pruneEveryHour prunes the store now and then every retentionEvery until ctx ends.
func (s *Server) pruneEveryHour(ctx context.Context) {
	t := time.NewTicker(retentionEvery)
	defer t.Stop()
	for {
		_, _ = s.Prune(ctx, time.Now()) // logged; the next tick tries again
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
