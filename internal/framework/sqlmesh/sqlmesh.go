// Package sqlmesh is the sqlmesh Framework: the commands, parsers and meanings of its planner (./planner)
// behind the framework port. The planner keeps the helper, the parsers and their golden tests; this package
// only maps them onto the port's types.
package sqlmesh

import (
	"errors"
	"io"

	"github.com/dagctl/dagctl-bot/internal/framework"
	"github.com/dagctl/dagctl-bot/internal/framework/sqlmesh/planner"
	"github.com/dagctl/dagctl-bot/internal/plan"
	"github.com/dagctl/dagctl-bot/internal/repoconfig"
)

// Framework runs sqlmesh with the interpreter that has it installed.
type Framework struct {
	SQLMesh planner.SQLMesh
}

var _ framework.Framework = Framework{}

// New returns the sqlmesh framework for python: an absolute path (a virtualenv's bin/python) or a bare name
// the job's PATH resolves (a container image).
func New(python string) Framework { return Framework{SQLMesh: planner.SQLMesh{Python: python}} }

func (Framework) Name() repoconfig.Framework { return repoconfig.SQLMesh }

func options(req framework.CommandRequest) planner.Options {
	return planner.Options{Gateway: req.Project.Gateway, ExecutionTime: req.ExecutionTime}
}

// PlanCommand runs the embedded helper (see planner.SQLMesh.PlanCommand).
func (f Framework) PlanCommand(req framework.CommandRequest) []string {
	return f.SQLMesh.PlanCommand(req.Env, req.Flags, options(req))
}

// ApplyCommand runs `sqlmesh plan ENV --auto-apply --no-prompts` with the plan's flags.
func (f Framework) ApplyCommand(req framework.CommandRequest) []string {
	return f.SQLMesh.ApplyCommand(req.Env, req.Flags, options(req))
}

// CleanupCommand is `sqlmesh invalidate ENV`: the janitor drops the environment's views later.
func (f Framework) CleanupCommand(req framework.CommandRequest) ([]string, bool) {
	return f.SQLMesh.InvalidateCommand(req.Env, options(req)), true
}

func (f Framework) Env() map[string]string { return f.SQLMesh.Env() }

// ParseResult reads the helper's result line; sqlmesh's failures become *framework.ToolError with the
// helper's kinds ("uncategorized", "config", "sql", "plan", "state", ...).
func (Framework) ParseResult(stdout io.Reader) (plan.Summary, error) {
	s, err := planner.ParseResult(stdout)
	var toolErr *planner.ToolError
	if errors.As(err, &toolErr) {
		return s, &framework.ToolError{Tool: "sqlmesh", Kind: toolErr.Kind, Type: toolErr.Type, Message: toolErr.Message}
	}
	return s, err
}

// ParseProgress reads a backfill batch line of `sqlmesh plan --auto-apply`.
func (Framework) ParseProgress(line string) (framework.Progress, bool) {
	p, ok := planner.ParseProgress(line)
	if !ok {
		return framework.Progress{}, false
	}
	return framework.Progress{Model: p.Model, Action: p.Action, Batch: p.Batch, Batches: p.Batches}, true
}

// Categorizes: sqlmesh classifies every directly modified model, or says it could not.
func (Framework) Categorizes() bool { return true }

// Flags: sqlmesh takes every plan flag there is.
func (Framework) Flags() []plan.Flag {
	return []plan.Flag{plan.FlagForwardOnly, plan.FlagRestateModel, plan.FlagStart, plan.FlagEnd}
}
