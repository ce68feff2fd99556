// Package stats summarises measured durations for the benchmark tools: percentiles by nearest rank, and tables.
package stats

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Summary describes a sample of durations.
type Summary struct {
	N                       int
	Min, P50, P90, P99, Max time.Duration
}

// Summarize sorts a copy of d and reads its percentiles by nearest rank: with few samples P90 and P99 are the
// largest, not an interpolation that no run produced.
func Summarize(d []time.Duration) Summary {
	if len(d) == 0 {
		return Summary{}
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return Summary{
		N: len(s), Min: s[0], Max: s[len(s)-1],
		P50: Percentile(s, 50), P90: Percentile(s, 90), P99: Percentile(s, 99),
	}
}

// Percentile is the nearest-rank p-th percentile of sorted: the smallest value with at least p% of the sample
// at or below it.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(float64(len(sorted))*p/100 + 0.999999999)
	rank = max(1, min(rank, len(sorted)))
	return sorted[rank-1]
}

// Ratio is a/b, or 0 when b is zero.
func Ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// Ms formats a duration in milliseconds with a precision that suits its size.
func Ms(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	switch abs := max(ms, -ms); {
	case abs >= 100:
		return fmt.Sprintf("%.0f ms", ms)
	case abs >= 10:
		return fmt.Sprintf("%.1f ms", ms)
	}
	return fmt.Sprintf("%.2f ms", ms)
}

// Table renders a Markdown table.
func Table(header []string, rows [][]string) string {
	var b strings.Builder
	line := func(cells []string) { b.WriteString("| " + strings.Join(cells, " | ") + " |\n") }
	line(header)
	seps := make([]string, len(header))
	for i := range seps {
		seps[i] = "---"
	}
	line(seps)
	for _, r := range rows {
		line(r)
	}
	return b.String()
}
