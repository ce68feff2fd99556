package bench

import (
	"bytes"
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/comments"
	"github.com/dagctl/dagctl-bot/internal/framework/sqlmesh/planner"
	"github.com/dagctl/dagctl-bot/internal/plan"
)

// BenchmarkParseRender10k parses a 10,000-model plan job's output and renders the sticky comment (GitHub's
// limit) and the check-run output, as the bot does when a plan job ends. Each sub-benchmark reports x-floor: its
// time over the floor's, the time to find the result lines and decode their JSON into generic values
// (encoding/json into any), which any reader of the helper's result has to do.
func BenchmarkParseRender10k(b *testing.B) {
	out := bigPlanOutput(b)
	floor := decodeFloor(b, out)
	sum, err := planner.ParseResult(bytes.NewReader(out))
	require.NoError(b, err)
	require.Equal(b, bigPlanModels, len(sum.DirectlyModified)+len(sum.IndirectlyModified))

	b.Run("floor-decode", func(b *testing.B) {
		b.SetBytes(int64(len(out)))
		b.ReportAllocs()
		for b.Loop() {
			_ = decodeResultJSON(out)
		}
		reportFloor(b, floor)
	})
	b.Run("parse", func(b *testing.B) {
		b.SetBytes(int64(len(out)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := planner.ParseResult(bytes.NewReader(out)); err != nil {
				b.Fatal(err)
			}
		}
		reportFloor(b, floor)
	})
	b.Run("comment", func(b *testing.B) {
		b.ReportAllocs()
		var produced int
		for b.Loop() {
			produced = commentBytes(&sum)
		}
		b.ReportMetric(float64(produced), "out-B/op")
		reportFloor(b, floor)
	})
	b.Run("check-output", func(b *testing.B) {
		b.ReportAllocs()
		var produced int
		for b.Loop() {
			produced = checkBytes(&sum)
		}
		b.ReportMetric(float64(produced), "out-B/op")
		reportFloor(b, floor)
	})
	b.Run("all", func(b *testing.B) {
		b.SetBytes(int64(len(out)))
		b.ReportAllocs()
		var produced int
		for b.Loop() {
			s, err := planner.ParseResult(bytes.NewReader(out))
			if err != nil {
				b.Fatal(err)
			}
			produced = commentBytes(&s) + checkBytes(&s)
		}
		b.ReportMetric(float64(produced), "out-B/op")
		reportFloor(b, floor)
	})
}

// bigSection is the prod section of a PR whose plan is ready and waits for an approval.
func bigSection(sum *plan.Summary) comments.Section {
	return comments.Section{
		Environment: "prod", State: comments.StatePlanned, Summary: sum,
		LogURL:      "https://dagctl.example.com/runs/1/0123456789abcdef",
		TriggeredBy: "alice", Approval: comments.Approval{Missing: []string{"1 more approval"}}, ApplyOnMerge: true,
	}
}

func commentBytes(sum *plan.Summary) int {
	parts := comments.Comment(comments.View{
		Repo: "acme/warehouse", PR: 1, HeadSHA: "0123456789abcdef0123456789abcdef01234567",
		Sections: []comments.Section{bigSection(sum)},
	}, comments.GitHubCommentLimit)
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	return n
}

func checkBytes(sum *plan.Summary) int {
	title, summary, text := comments.CheckOutput(bigSection(sum))
	return len(title) + len(summary) + len(text)
}

// decodeResultJSON is the floor: join the result's part lines and decode the JSON into generic values.
func decodeResultJSON(out []byte) any {
	prefix := []byte(planner.Marker + " part ")
	var joined []byte
	for line := range bytes.Lines(out) {
		rest, ok := bytes.CutPrefix(line, prefix)
		if !ok {
			continue
		}
		_, piece, _ := bytes.Cut(rest, []byte(" "))
		joined = append(joined, bytes.TrimRight(piece, "\r\n")...)
	}
	var v any
	if err := json.Unmarshal(joined, &v); err != nil {
		panic(err)
	}
	return v
}

var floorResult struct {
	once sync.Once
	ns   float64
}

// decodeFloor measures the floor once per process, in the same run as what is compared with it: the median of
// at least 5 runs and about a second. (testing.Benchmark cannot be used here: it waits for the running benchmark.)
func decodeFloor(b *testing.B, out []byte) float64 {
	b.Helper()
	require.True(b, utf8.Valid(out))
	floorResult.once.Do(func() {
		floorResult.ns = medianNs(5, time.Second, func() { _ = decodeResultJSON(out) })
	})
	return floorResult.ns
}

// medianNs runs fn at least min times and until budget has passed, and returns the median time of a run.
func medianNs(min int, budget time.Duration, fn func()) float64 {
	var runs []float64
	start := time.Now()
	for len(runs) < min || time.Since(start) < budget {
		t := time.Now()
		fn()
		runs = append(runs, float64(time.Since(t).Nanoseconds()))
	}
	slices.Sort(runs)
	return runs[len(runs)/2]
}

func reportFloor(b *testing.B, floorNs float64) {
	if b.N == 0 || floorNs == 0 {
		return
	}
	perOp := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(perOp/floorNs, "x-floor")
}
