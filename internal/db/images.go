package db

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// ApplyImage is the deploy image an apply run built and pushed.
type ApplyImage struct {
	RunID, PlanID int64
	// Reference is the image by digest, `repository@sha256:...`: what the apply job runs on.
	Reference string
	// Tagged is the image by the tag pushed, `repository:tag`.
	Tagged  string
	BuiltAt time.Time
}

// RecordApplyImage stores the image an apply run built. A run builds one image: recording another for it is an
// error (a second build of one apply would mean two images claim to be what it ran).
func (s *Store) RecordApplyImage(ctx context.Context, img ApplyImage) error {
	if img.Reference == "" {
		return fmt.Errorf("db: the image of run %d names no reference", img.RunID)
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO apply_images (run_id, plan_id, reference, tagged, built_at)
			VALUES (?, ?, ?, ?, ?) ON CONFLICT (run_id) DO NOTHING`,
			img.RunID, img.PlanID, img.Reference, img.Tagged, toMillis(img.BuiltAt))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			var ref string
			if err := tx.QueryRowContext(ctx, `SELECT reference FROM apply_images WHERE run_id = ?`, img.RunID).Scan(&ref); err != nil {
				return err
			}
			if ref != img.Reference {
				return fmt.Errorf("db: run %d already built %s", img.RunID, ref)
			}
		}
		return nil
	})
}

// ApplyImageOf is the image an apply run built; ErrNotFound when it built none.
func (s *Store) ApplyImageOf(ctx context.Context, runID int64) (ApplyImage, error) {
	img := ApplyImage{RunID: runID}
	var at int64
	err := s.db.QueryRowContext(ctx, `SELECT plan_id, reference, tagged, built_at FROM apply_images WHERE run_id = ?`, runID).
		Scan(&img.PlanID, &img.Reference, &img.Tagged, &at)
	img.BuiltAt = fromMillis(at)
	return one(img, err, fmt.Sprintf("image of run %d", runID))
}
