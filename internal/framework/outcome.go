package framework

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/dagctl/dagctl-bot/internal/jobs"
	"github.com/dagctl/dagctl-bot/internal/plan"
)

// PlanOutcome is what a finished plan job means for its plan.
type PlanOutcome struct {
	Status  plan.Status
	Summary *plan.Summary // nil when no plan was made
	Error   string        // for failures: what went wrong, in words a PR author can act on
	Result  jobs.Result
}

// RunJob starts a job, streams its lines to sink and waits for it. It returns the job's result lines (its
// standard output's lines starting with jobs.ResultPrefix, which is all a framework's parser reads), never the
// whole output: a job printing a gigabyte must not be held in memory. The handle is passed to started (if not
// nil) as soon as the job runs, so that the caller can record its id and cancel it.
func RunJob(ctx context.Context, exec jobs.Executor, spec jobs.Spec, sink jobs.Sink, started func(jobs.Handle)) (stdout string, res jobs.Result, err error) {
	var results ResultLines
	collect := func(l jobs.Line) {
		results.Add(l)
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
	return results.String(), res, err
}

// MaxResultBytes bounds the result lines kept of one job; past it they are not kept, and the result then fails
// to parse (closed), as the stored log's cap does.
const MaxResultBytes = 64 << 20

// ResultLines keeps a job's result lines (jobs.Line.IsResult) as they stream, up to MaxResultBytes, for the
// framework's parser. Safe for concurrent use; the zero value is ready.
type ResultLines struct {
	mu   sync.Mutex
	text strings.Builder
}

// Add keeps l if it is a result line; it is a jobs.Sink.
func (r *ResultLines) Add(l jobs.Line) {
	if !l.IsResult() {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.text.Len()+len(l.Text)+1 <= MaxResultBytes {
		r.text.WriteString(l.Text)
		r.text.WriteByte('\n')
	}
}

// String is the kept lines, each ended by a newline: what ParseResult reads.
func (r *ResultLines) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.text.String()
}

// InterpretPlan turns a finished plan job's result and output into the plan's outcome, the framework reading
// its own output and saying what its summary means (Meaning). Pure.
func InterpretPlan(fw Framework, res jobs.Result, stdout string, logTail []string) PlanOutcome {
	o := PlanOutcome{Result: res}
	switch res.Reason {
	case jobs.ReasonCancelled:
		o.Status = plan.StatusCancelled
		o.Error = "The plan job was cancelled."
		return o
	case jobs.ReasonTimeout:
		o.Status = plan.StatusFailed
		o.Error = fmt.Sprintf("The plan job timed out after %s (job.timeout in .dagctl/config.yaml).", res.Duration.Round(1e9))
		return o
	}
	summary, err := fw.ParseResult(strings.NewReader(stdout))
	Meaning(fw.Categorizes(), &summary)
	var toolErr *ToolError
	switch {
	case err == nil && res.Succeeded():
		o.Summary = &summary
		o.Status = plan.Outcome(summary)
	case errors.As(err, &toolErr) && toolErr.Kind == KindUncategorized && fw.Categorizes() && summary.Environment != "":
		// The tool made a plan but cannot categorise some changes: show it; the check asks for action.
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
		o.Error = jobFailure(res, err, logTail)
	}
	return o
}

// jobFailure describes a plan job that ended without a result the framework could read.
func jobFailure(res jobs.Result, err error, logTail []string) string {
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
	return b.String()
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
