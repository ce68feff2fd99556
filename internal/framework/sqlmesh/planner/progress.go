package planner

import (
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Progress is one executed batch of an apply, from a line sqlmesh prints while it backfills:
//
//	[2/3] dagctl_example.orders            [insert 2024-01-08 - 2024-01-14, audits passed 2]     0.03s
type Progress struct {
	// Model as sqlmesh displays it; in a development environment that is the environment's view name
	// (schema__dev.model).
	Model   string `json:"model"`
	Batch   int    `json:"batch"`   // 1-based
	Batches int    `json:"batches"` // batches of this model in the apply
	// Action is what the batch did: "insert" (an interval; see Start and End), "full refresh", "recreate view",
	// "insert seed file", "insert/update rows", "insert partitions", …; empty when sqlmesh printed none.
	Action string `json:"action"`
	// Start and End are the interval an "insert" covered, as sqlmesh prints it: the end is inclusive
	// ("2024-01-01 - 2024-01-07" is one week).
	Start string `json:"start,omitempty"`
	End   string `json:"end,omitempty"`
	// Stats is what the engine reported, e.g. "1.2k rows, 3.4 KiB"; empty for engines that report nothing.
	Stats        string        `json:"stats,omitempty"`
	AuditsPassed int           `json:"audits_passed,omitempty"`
	AuditsFailed int           `json:"audits_failed,omitempty"`
	Duration     time.Duration `json:"duration,omitempty"`
}

// The name is padded to a column, followed by at least three spaces; the bracketed annotation is padded too.
var (
	progressLine = regexp.MustCompile(`^\[\s*(\d+)/(\d+)\]\s+(.+?)\s{3,}\[(.*)\]\s+(\d+(?:\.\d+)?)s\s*$`)
	statsSuffix  = regexp.MustCompile(`^(.*?)\s*\(([^()]*)\)$`)
	dateTime     = `\d{4}-\d{2}-\d{2}(?: \d{2}:\d{2}:\d{2})?`
	rangeAction  = regexp.MustCompile(`^insert (` + dateTime + `) - (` + dateTime + `)$`)
	sameDay      = regexp.MustCompile(`^insert (\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})-(\d{2}:\d{2}:\d{2})$`)
	auditCount   = regexp.MustCompile(`(passed |failed |✔|❌)(\d+)`)
)

// ParseProgress reads one line of `sqlmesh plan --auto-apply` output. It reports false for every other line.
// It reads the markdown console's wording ("audits passed 2") and the terminal console's ("audits ✔2"). Lines
// must not be wrapped: run sqlmesh with Env (a wide COLUMNS). sqlmesh prints no line for a batch that failed
// (its errors follow under "Failed models", and the command exits 1) nor for one that took under a millisecond.
func ParseProgress(line string) (Progress, bool) {
	m := progressLine.FindStringSubmatch(strings.TrimRight(line, "\r\n"))
	if m == nil {
		return Progress{}, false
	}
	p := Progress{Model: m[3]}
	var err error
	if p.Batch, err = strconv.Atoi(m[1]); err != nil {
		return Progress{}, false
	}
	if p.Batches, err = strconv.Atoi(m[2]); err != nil || p.Batch < 1 || p.Batch > p.Batches {
		return Progress{}, false
	}
	seconds, err := strconv.ParseFloat(m[5], 64)
	if err != nil {
		return Progress{}, false
	}
	p.Duration = time.Duration(seconds * float64(time.Second)).Round(time.Millisecond)

	annotation := m[4]
	if main, audits, ok := strings.Cut(annotation, ", audits "); ok {
		annotation = main
		for _, a := range auditCount.FindAllStringSubmatch(audits, -1) {
			n, _ := strconv.Atoi(a[2])
			if a[1] == "passed " || a[1] == "✔" {
				p.AuditsPassed = n
			} else {
				p.AuditsFailed = n
			}
		}
	}
	if s := statsSuffix.FindStringSubmatch(annotation); s != nil {
		annotation, p.Stats = s[1], s[2]
	}
	switch {
	case rangeAction.MatchString(annotation):
		r := rangeAction.FindStringSubmatch(annotation)
		p.Action, p.Start, p.End = "insert", r[1], r[2]
	case sameDay.MatchString(annotation):
		r := sameDay.FindStringSubmatch(annotation)
		p.Action, p.Start, p.End = "insert", r[1]+" "+r[2], r[1]+" "+r[3]
	default:
		p.Action = annotation
	}
	return p, true
}
