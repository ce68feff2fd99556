package db

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/dagctl/dagctl-bot/internal/plan"
)

// SetPlanReported records the status a plan's check run now shows.
func (s *Store) SetPlanReported(ctx context.Context, id int64, status plan.Status) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE plans SET reported_status = ? WHERE id = ?`, string(status), id)
		if err != nil {
			return err
		}
		return mustAffectOne(res, fmt.Errorf("plan %d: %w", id, ErrNotFound))
	})
}

// ListPlansInFlight returns the plans still queued or running, oldest first: at start, those with no unfinished
// run are what a killed bot left between two of its writes.
func (s *Store) ListPlansInFlight(ctx context.Context) ([]Plan, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+planColumns+` FROM plans
		WHERE status IN (?, ?) ORDER BY id`, string(plan.StatusQueued), string(plan.StatusRunning))
	return collect(rows, err, scanPlan)
}

// ListUnreportedPlans returns the plans whose status the forge does not show yet, oldest first.
func (s *Store) ListUnreportedPlans(ctx context.Context) ([]Plan, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+planColumns+` FROM plans
		WHERE reported_status IS NULL OR reported_status <> status ORDER BY id`)
	return collect(rows, err, scanPlan)
}
