package jobrun

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/dagctl/dagctl-bot/internal/jobs"
	"github.com/dagctl/dagctl-bot/internal/plan"
	"github.com/dagctl/dagctl-bot/internal/planner"
)

// PlanOutcome is what a finished plan job means for its plan.
type PlanOutcome struct {
	Status  plan.Status
	Summary *plan.Summary // nil when no plan was made
	Error   string        // for failures: what went wrong, in words a PR author can act on
	Result  jobs.Result
	// abandoned: the job ended because the bot is stopping; nothing is stored or reported.
	abandoned bool
}

// RunJob starts a job, streams its lines to sink and waits for it. It returns the job's standard output, which
// holds the tool's result line. The handle is passed to started (if not nil) as soon as the job runs, so that
// the caller can record its id and cancel it.
func RunJob(ctx context.Context, exec jobs.Executor, spec jobs.Spec, sink jobs.Sink, started func(jobs.Handle)) (stdout string, res jobs.Result, err error) {
	var (
		mu  sync.Mutex
		out strings.Builder
	)
	collect := func(l jobs.Line) {
		if l.Stream == "stdout" {
			mu.Lock()
			out.WriteString(l.Text)
			out.WriteByte('\n')
			mu.Unlock()
		}
		if sink != nil {
			sink(l)
		}
	}
	h, err := exec.Start(ctx, spec, collect)
	if err != nil {
		return "", jobs.Result{}, fmt.Errorf("starting the job: %w", err)
	}
	if started != nil {
		started(h)
	}
	res, err = h.Wait(ctx)
	mu.Lock()
	defer mu.Unlock()
	return out.String(), res, err
}

// InterpretPlan turns a finished plan job's result and output into the plan's outcome. Pure.
func InterpretPlan(res jobs.Result, stdout string, logTail []string) PlanOutcome {
	o := PlanOutcome{Result: res}
	switch res.Reason {
	case "cancelled":
		o.Status = plan.StatusCancelled
		o.Error = "The plan job was cancelled."
		return o
	case "timeout":
		o.Status = plan.StatusFailed
		o.Error = fmt.Sprintf("The plan job timed out after %s (job.timeout in .dagctl/config.yaml).", res.Duration.Round(1e9))
		return o
	}
	summary, err := planner.ParseResult(strings.NewReader(stdout))
	var toolErr *planner.ToolError
	switch {
	case err == nil && res.Succeeded():
		o.Summary = &summary
		o.Status = plan.Outcome(summary)
	case errors.As(err, &toolErr) && toolErr.Kind == "uncategorized" && summary.Environment != "":
		// sqlmesh made a plan but cannot categorise some changes: show it; the check asks for action.
		o.Summary = &summary
		o.Status = plan.StatusReady
		o.Error = toolErr.Message
	case errors.As(err, &toolErr):
		o.Status = plan.StatusFailed
		o.Error = toolErr.Message
		if summary.Environment != "" {
			o.Summary = &summary
		}
	default:
		o.Status = plan.StatusFailed
		var b strings.Builder
		if res.Reason != "" {
			fmt.Fprintf(&b, "The plan job ended: %s (exit code %d).", res.Reason, res.ExitCode)
		} else {
			fmt.Fprintf(&b, "The plan job exited with code %d.", res.ExitCode)
		}
		if err != nil {
			fmt.Fprintf(&b, " %v.", err)
		}
		if len(logTail) > 0 {
			b.WriteString("\n\nLast lines of the log:\n" + strings.Join(logTail, "\n"))
		}
		o.Error = b.String()
	}
	return o
}

// Tail keeps the last n lines added to it. Safe for concurrent use.
type Tail struct {
	mu    sync.Mutex
	n     int
	lines []string
}

// NewTail keeps the last n lines.
func NewTail(n int) *Tail { return &Tail{n: n} }

// Add appends a line.
func (t *Tail) Add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, line)
	if len(t.lines) > t.n {
		t.lines = t.lines[len(t.lines)-t.n:]
	}
}

// Lines returns the kept lines, oldest first.
func (t *Tail) Lines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.lines...)
}
