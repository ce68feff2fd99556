package db

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dagctl/dagctl-bot/internal/plan"
)

// Plan is one stored plan: a project's environment planned at a PR's head commit with some flags.
type Plan struct {
	ID          int64
	Forge       string
	Repo        string // "owner/name"; compared case-insensitively
	PR          int
	Project     string
	Environment string
	HeadSHA     string
	BaseSHA     string
	TriggerUser string // who caused the plan: the pusher or the commenter
	Flags       plan.Flags
	Status      plan.Status
	Summary     *plan.Summary // nil until the plan has a result
	Error       string        // why the plan failed, for the comment and the check
	// Context is opaque JSON the caller keeps with the plan (what it needs to run the plan again after a
	// restart); nil when there is none. The store only checks that it is valid JSON.
	Context json.RawMessage
	// ResultPostedAt is when the forge says the plan's result was posted (zero: not known yet).
	ResultPostedAt time.Time
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// StatusChange is a plan whose status the store changed, and the status it had before.
type StatusChange struct {
	Plan Plan
	From plan.Status
}

// PlanResult is how a plan's job ended.
type PlanResult struct {
	// Status is the plan's new status: plan.Outcome(summary) when the tool succeeded, else failed or cancelled.
	Status plan.Status
	// Summary, when set, is stored with one plan_models row per model.
	Summary *plan.Summary
	Error   string
}

// ChangeType is how a model appears in a plan.
type ChangeType string

const (
	ChangeAdded    ChangeType = "added"
	ChangeRemoved  ChangeType = "removed"
	ChangeDirect   ChangeType = "direct"
	ChangeIndirect ChangeType = "indirect"
	ChangeMetadata ChangeType = "metadata"
	// ChangeBackfill: the model itself is unchanged, but applying computes data for it (missing intervals,
	// a restatement).
	ChangeBackfill ChangeType = "backfill"
)

// PlanModel is one model of a plan's summary, flattened for queries.
type PlanModel struct {
	PlanID      int64
	Model       string
	Change      ChangeType
	Category    plan.Category
	Kind        string            // the model kind (FULL, VIEW, …), when the tool reports it
	Backfill    plan.BackfillKind // "" when applying computes no data for the model
	Restatement bool
}

// CreatePlan stores a new plan as queued and returns it with its id. ID, Status, Summary, Error and the
// times of p are ignored.
func (s *Store) CreatePlan(ctx context.Context, p Plan) (Plan, error) {
	if p.Forge == "" || p.Repo == "" || p.Environment == "" || p.HeadSHA == "" {
		return Plan{}, fmt.Errorf("create plan: forge, repo, environment and head sha are required")
	}
	flags, err := json.Marshal(p.Flags)
	if err != nil {
		return Plan{}, err
	}
	var planContext sql.NullString
	if p.Context != nil {
		if !json.Valid(p.Context) {
			return Plan{}, fmt.Errorf("create plan: context is not valid JSON")
		}
		planContext = sql.NullString{String: string(p.Context), Valid: true}
	}
	now := s.now()
	p.Status, p.Summary, p.Error = plan.StatusQueued, nil, ""
	p.CreatedAt, p.UpdatedAt = fromMillis(toMillis(now)), fromMillis(toMillis(now))
	err = s.write(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `INSERT INTO plans
			(forge, repo, pr, project, environment, head_sha, base_sha, trigger_user, flags, status, context, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			p.Forge, p.Repo, p.PR, p.Project, p.Environment, p.HeadSHA, p.BaseSHA, p.TriggerUser, string(flags),
			string(p.Status), planContext, toMillis(now), toMillis(now)).Scan(&p.ID)
	})
	if err != nil {
		return Plan{}, fmt.Errorf("create plan: %w", err)
	}
	return p, nil
}

const planColumns = `id, forge, repo, pr, project, environment, head_sha, base_sha, trigger_user, flags, status, summary,
	error, context, created_at, updated_at, result_posted_at`

func scanPlan(r scanner) (Plan, error) {
	var p Plan
	var flags string
	var summary, planContext sql.NullString
	var created, updated int64
	var posted sql.NullInt64
	err := r.Scan(&p.ID, &p.Forge, &p.Repo, &p.PR, &p.Project, &p.Environment, &p.HeadSHA, &p.BaseSHA, &p.TriggerUser,
		&flags, &p.Status, &summary, &p.Error, &planContext, &created, &updated, &posted)
	if err != nil {
		return p, err
	}
	if planContext.Valid {
		p.Context = json.RawMessage(planContext.String)
	}
	p.CreatedAt, p.UpdatedAt = fromMillis(created), fromMillis(updated)
	if posted.Valid {
		p.ResultPostedAt = fromMillis(posted.Int64)
	}
	if err := json.Unmarshal([]byte(flags), &p.Flags); err != nil {
		return p, fmt.Errorf("plan %d flags: %w", p.ID, err)
	}
	if summary.Valid {
		p.Summary = new(plan.Summary)
		if err := json.Unmarshal([]byte(summary.String), p.Summary); err != nil {
			return p, fmt.Errorf("plan %d summary: %w", p.ID, err)
		}
	}
	return p, nil
}

type queryRower interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func getPlan(ctx context.Context, q queryRower, id int64) (Plan, error) {
	p, err := scanPlan(q.QueryRowContext(ctx, `SELECT `+planColumns+` FROM plans WHERE id = ?`, id))
	return one(p, err, fmt.Sprintf("plan %d", id))
}

// GetPlan returns one plan, or ErrNotFound.
func (s *Store) GetPlan(ctx context.Context, id int64) (Plan, error) { return getPlan(ctx, s.db, id) }

// ListPlansByPR returns every plan of a pull request, oldest first.
func (s *Store) ListPlansByPR(ctx context.Context, forge, repo string, pr int) ([]Plan, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+planColumns+` FROM plans WHERE forge = ? AND repo = ? AND pr = ? ORDER BY id`,
		forge, repo, pr)
	return collect(rows, err, scanPlan)
}

// PRsPlannedAt lists the pull requests of a repository that have a plan of the commit, by number (a default
// branch push's plans, PR 0, left out): the PRs whose head the bot planned and reported at that commit.
func (s *Store) PRsPlannedAt(ctx context.Context, forge, repo, sha string) ([]int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT pr FROM plans WHERE forge = ? AND repo = ? AND head_sha = ? AND pr > 0
		ORDER BY pr`, forge, repo, sha)
	return collect(rows, err, func(sc scanner) (int, error) {
		var pr int
		return pr, sc.Scan(&pr)
	})
}

// LatestPlansByPR returns the newest plan of each (project, environment) of a pull request, by project and
// environment: what the PR's comment shows.
func (s *Store) LatestPlansByPR(ctx context.Context, forge, repo string, pr int) ([]Plan, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+planColumns+` FROM plans WHERE id IN (
			SELECT max(id) FROM plans WHERE forge = ? AND repo = ? AND pr = ? GROUP BY project, environment)
		ORDER BY project, environment`, forge, repo, pr)
	return collect(rows, err, scanPlan)
}

// LatestPlan returns the newest plan for a project's environment in a pull request, or ErrNotFound.
func (s *Store) LatestPlan(ctx context.Context, forge, repo string, pr int, project, environment string) (Plan, error) {
	p, err := scanPlan(s.db.QueryRowContext(ctx, `SELECT `+planColumns+` FROM plans
		WHERE forge = ? AND repo = ? AND pr = ? AND project = ? AND environment = ? ORDER BY id DESC LIMIT 1`,
		forge, repo, pr, project, environment))
	return one(p, err, fmt.Sprintf("plan of %s#%d %s/%s", repo, pr, project, environment))
}

// transition moves a plan to a new status inside tx, if plan.Transition allows it.
func (s *Store) transition(ctx context.Context, tx *sql.Tx, id int64, to plan.Status) (Plan, plan.Status, error) {
	p, err := getPlan(ctx, tx, id)
	if err != nil {
		return p, "", err
	}
	from := p.Status
	if err := plan.Transition(from, to); err != nil {
		return p, from, fmt.Errorf("plan %d: %w: %w", id, ErrTransition, err)
	}
	now := s.now()
	if _, err := tx.ExecContext(ctx, `UPDATE plans SET status = ?, updated_at = ? WHERE id = ?`, string(to), toMillis(now), id); err != nil {
		return p, from, err
	}
	p.Status, p.UpdatedAt = to, fromMillis(toMillis(now))
	return p, from, nil
}

// SetPlanStatus moves a plan to a new status. A move plan.Transition does not allow fails with ErrTransition
// and changes nothing; the check and the write are one transaction.
func (s *Store) SetPlanStatus(ctx context.Context, id int64, to plan.Status) (Plan, error) {
	var p Plan
	err := s.write(ctx, func(tx *sql.Tx) (err error) {
		p, _, err = s.transition(ctx, tx, id, to)
		return err
	})
	return p, err
}

// SetPlanResult records how a plan's job ended: its status (checked like SetPlanStatus), error text, and
// summary with its plan_models, all in one transaction.
func (s *Store) SetPlanResult(ctx context.Context, id int64, r PlanResult) (Plan, error) {
	var summaryJSON sql.NullString
	if r.Summary != nil {
		b, err := json.Marshal(r.Summary)
		if err != nil {
			return Plan{}, err
		}
		summaryJSON = sql.NullString{String: string(b), Valid: true}
	}
	var p Plan
	err := s.write(ctx, func(tx *sql.Tx) error {
		var err error
		if p, _, err = s.transition(ctx, tx, id, r.Status); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE plans SET summary = ?, error = ? WHERE id = ?`, summaryJSON, r.Error, id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM plan_models WHERE plan_id = ?`, id); err != nil {
			return err
		}
		if r.Summary == nil {
			return nil
		}
		for _, m := range flattenSummary(id, *r.Summary) {
			if _, err := tx.ExecContext(ctx, `INSERT INTO plan_models (plan_id, model, change, category, kind, backfill, restatement)
				VALUES (?, ?, ?, ?, ?, ?, ?)`,
				m.PlanID, m.Model, string(m.Change), string(m.Category), m.Kind, string(m.Backfill), boolInt(m.Restatement)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return Plan{}, fmt.Errorf("set plan result: %w", err)
	}
	p.Summary, p.Error = r.Summary, r.Error
	return p, nil
}

// flattenSummary gives one row per model. A model listed under several change types (which the tools do not
// do) keeps the first of: direct, added, removed, indirect, metadata.
func flattenSummary(planID int64, sum plan.Summary) []PlanModel {
	var out []PlanModel
	index := map[string]int{}
	add := func(model string, change ChangeType, category plan.Category, kind string) {
		if _, seen := index[model]; seen {
			return
		}
		index[model] = len(out)
		out = append(out, PlanModel{PlanID: planID, Model: model, Change: change, Category: category, Kind: kind})
	}
	for _, l := range []struct {
		changes []plan.Change
		change  ChangeType
	}{
		{sum.DirectlyModified, ChangeDirect}, {sum.Added, ChangeAdded}, {sum.Removed, ChangeRemoved},
		{sum.IndirectlyModified, ChangeIndirect}, {sum.MetadataUpdated, ChangeMetadata},
	} {
		for _, c := range l.changes {
			add(c.Model, l.change, c.Category, c.Kind)
		}
	}
	for _, m := range sum.Restated {
		add(m, ChangeBackfill, "", "")
		out[index[m]].Restatement = true
	}
	for _, b := range sum.Backfills {
		add(b.Model, ChangeBackfill, "", "")
		row := &out[index[b.Model]]
		row.Backfill = b.Kind
		row.Restatement = row.Restatement || b.Restatement
	}
	return out
}

// PlanModels returns the models of a plan's summary, by name.
func (s *Store) PlanModels(ctx context.Context, planID int64) ([]PlanModel, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT plan_id, model, change, category, kind, backfill, restatement
		FROM plan_models WHERE plan_id = ? ORDER BY model`, planID)
	return collect(rows, err, func(r scanner) (PlanModel, error) {
		var m PlanModel
		err := r.Scan(&m.PlanID, &m.Model, &m.Change, &m.Category, &m.Kind, &m.Backfill, &m.Restatement)
		return m, err
	})
}

// MarkStale marks every plan of a pull request made at another head commit as stale, as far as
// plan.Transition allows (failed and cancelled plans stay as they are), and returns what changed, so that
// their checks can be completed and their jobs cancelled.
func (s *Store) MarkStale(ctx context.Context, forge, repo string, pr int, headSHA string) ([]StatusChange, error) {
	var changed []StatusChange
	err := s.write(ctx, func(tx *sql.Tx) error {
		changed = nil
		rows, err := tx.QueryContext(ctx, `SELECT id FROM plans WHERE forge = ? AND repo = ? AND pr = ? AND head_sha <> ? AND status <> ?
			ORDER BY id`, forge, repo, pr, headSHA, string(plan.StatusStale))
		ids, err := collect(rows, err, func(r scanner) (id int64, err error) { return id, r.Scan(&id) })
		if err != nil {
			return err
		}
		for _, id := range ids {
			p, from, err := s.transition(ctx, tx, id, plan.StatusStale)
			if errors.Is(err, ErrTransition) {
				continue
			}
			if err != nil {
				return err
			}
			changed = append(changed, StatusChange{Plan: p, From: from})
		}
		return nil
	})
	return changed, err
}

// Approver is one approval a plan counted.
type Approver struct {
	User string    `json:"user"`
	SHA  string    `json:"sha"` // the commit the review approved
	At   time.Time `json:"at"`
}

// ApprovalSnapshot is the last evaluation of a plan's approval rules, kept for display and audit: approvals
// themselves are always computed afresh from the forge's reviews.
type ApprovalSnapshot struct {
	PlanID      int64
	SHA         string // the head commit evaluated
	Satisfied   bool
	Approvers   []Approver
	Missing     []string // what is still needed, in words
	EvaluatedAt time.Time
}

// RecordApproval replaces a plan's approval snapshot. A zero EvaluatedAt is stamped with the store's clock.
func (s *Store) RecordApproval(ctx context.Context, a ApprovalSnapshot) error {
	if a.EvaluatedAt.IsZero() {
		a.EvaluatedAt = s.now()
	}
	approvers, err := json.Marshal(nonNil(a.Approvers))
	if err != nil {
		return err
	}
	missing, err := json.Marshal(nonNil(a.Missing))
	if err != nil {
		return err
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO approvals (plan_id, sha, satisfied, approvers, missing, evaluated_at)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (plan_id) DO UPDATE SET sha = excluded.sha, satisfied = excluded.satisfied,
				approvers = excluded.approvers, missing = excluded.missing, evaluated_at = excluded.evaluated_at`,
			a.PlanID, a.SHA, boolInt(a.Satisfied), string(approvers), string(missing), toMillis(a.EvaluatedAt))
		if err != nil {
			return fmt.Errorf("record approval of plan %d: %w", a.PlanID, err)
		}
		return nil
	})
}

// Approval returns a plan's last approval snapshot, or ErrNotFound.
func (s *Store) Approval(ctx context.Context, planID int64) (ApprovalSnapshot, error) {
	a := ApprovalSnapshot{PlanID: planID}
	var approvers, missing string
	var at int64
	err := s.db.QueryRowContext(ctx, `SELECT sha, satisfied, approvers, missing, evaluated_at FROM approvals WHERE plan_id = ?`, planID).
		Scan(&a.SHA, &a.Satisfied, &approvers, &missing, &at)
	if a, err = one(a, err, fmt.Sprintf("approval of plan %d", planID)); err != nil {
		return a, err
	}
	a.EvaluatedAt = fromMillis(at)
	if err := json.Unmarshal([]byte(approvers), &a.Approvers); err != nil {
		return a, err
	}
	return a, json.Unmarshal([]byte(missing), &a.Missing)
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// SetCheckRun records the forge's id of a plan's check run (e.g. "dagctl/plan: prod"), replacing any earlier one:
// what versions before the outbox wrote. The bot only reads these rows now (CheckRun); tests write them to
// stand for such a version.
func (s *Store) SetCheckRun(ctx context.Context, planID int64, name string, checkRunID int64) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO plan_checks (plan_id, name, check_run_id, updated_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (plan_id, name) DO UPDATE SET check_run_id = excluded.check_run_id, updated_at = excluded.updated_at`,
			planID, name, checkRunID, s.nowMillis())
		if err != nil {
			return fmt.Errorf("set check run %q of plan %d: %w", name, planID, err)
		}
		return nil
	})
}

// CheckRun returns the forge's id of a plan's check run, and whether there is one.
func (s *Store) CheckRun(ctx context.Context, planID int64, name string) (int64, bool, error) {
	var id int64
	err := s.db.QueryRowContext(ctx, `SELECT check_run_id FROM plan_checks WHERE plan_id = ? AND name = ?`, planID, name).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	return id, err == nil, err
}

// CheckRuns returns every check run of a plan by check name.
func (s *Store) CheckRuns(ctx context.Context, planID int64) (map[string]int64, error) {
	type pair struct {
		name string
		id   int64
	}
	rows, err := s.db.QueryContext(ctx, `SELECT name, check_run_id FROM plan_checks WHERE plan_id = ?`, planID)
	pairs, err := collect(rows, err, func(r scanner) (p pair, err error) { return p, r.Scan(&p.name, &p.id) })
	if err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(pairs))
	for _, p := range pairs {
		out[p.name] = p.id
	}
	return out, nil
}
