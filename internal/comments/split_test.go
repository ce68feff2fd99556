package comments

import (
	"fmt"
	"index/suffixarray"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/plan"
)

// Property tests for splitting: random and huge plans, at several limits. Every part must fit, stand on its own
// as markdown and carry the right marker; nothing may be lost except what a visible pointer says was cut.

var namePieces = []string{"sushi", "orders", "日本語", "é", "🎉", "a|b", "x`y", "<b>", "</details>", "_u_", "$m$", "ü",
	"**", "[l](u)", "\\", "&amp;"}

var lineSamples = []string{"  SELECT a, b", "+ WHERE x | y", "- -- ``` not a fence", "</details>", "<details>",
	"+ 'ünïcödé 日本語 🎉🎉'", "```", "````sql", "\r", "\t-- tab", "+ '\x1b[31mred\x1b[0m'", "+ x < 3 && y > 2", ""}

func randomName(r *rand.Rand, section, i int) string {
	n := 1 + r.IntN(3)
	parts := make([]string, n)
	for j := range parts {
		parts[j] = namePieces[r.IntN(len(namePieces))]
	}
	// The index keeps names unique, so that each can be looked for in the output.
	return fmt.Sprintf("%s.s%dm%05d", strings.Join(parts, "."), section, i)
}

func randomDiff(r *rand.Rand) string {
	switch r.IntN(20) {
	case 0: // giant, many lines
		var b strings.Builder
		for i := range 3000 + r.IntN(3000) {
			fmt.Fprintf(&b, "+ line %d %s\n", i, lineSamples[r.IntN(len(lineSamples))])
		}
		return b.String()
	case 1: // giant, one line of multi-byte text
		return "+ " + strings.Repeat("日本語🎉é", 20000+r.IntN(20000))
	case 2:
		return ""
	}
	var b strings.Builder
	for range 1 + r.IntN(40) {
		b.WriteString(lineSamples[r.IntN(len(lineSamples))] + "\n")
	}
	return b.String()
}

var categories = []plan.Category{plan.Breaking, plan.NonBreaking, plan.ForwardOnly, plan.Metadata, plan.Uncategorized, ""}

var allStates = []State{StateQueued, StatePlanning, StatePlanned, StateNoChanges, StatePlanFailed, StateCancelled,
	StateStale, StateApplying, StateApplied, StateApplyFailed}

func randomSection(r *rand.Rand, idx, models int) Section {
	sum := &plan.Summary{Tool: "sqlmesh", Environment: fmt.Sprintf("env%d", idx), Start: "2024-01-01",
		End: "2024-02-01", CreatesEnvironment: r.IntN(4) == 0, ForwardOnly: r.IntN(5) == 0}
	for i := range models {
		name := randomName(r, idx, i)
		c := plan.Change{Model: name, Kind: "INCREMENTAL_BY_TIME_RANGE"}
		switch r.IntN(5) {
		case 0:
			sum.Added = append(sum.Added, c)
		case 1:
			sum.Removed = append(sum.Removed, c)
		case 2:
			c.Category = categories[r.IntN(len(categories))]
			c.Diff = randomDiff(r)
			for range r.IntN(8) {
				c.Children = append(c.Children, randomName(r, idx, models+r.IntN(1000)))
			}
			sum.DirectlyModified = append(sum.DirectlyModified, c)
		case 3:
			c.Category = plan.IndirectBreaking
			sum.IndirectlyModified = append(sum.IndirectlyModified, c)
		case 4:
			sum.MetadataUpdated = append(sum.MetadataUpdated, c)
		}
		if r.IntN(2) == 0 {
			bf := plan.Backfill{Model: name, Kind: plan.BackfillIntervals, Restatement: r.IntN(10) == 0}
			for range r.IntN(6) {
				bf.Intervals = append(bf.Intervals, plan.Interval{Start: "2024-01-01", End: "2024-01-02"})
			}
			sum.Backfills = append(sum.Backfills, bf)
		}
	}
	if r.IntN(3) == 0 {
		sum.Explain = randomDiff(r)
	}
	s := Section{
		Environment:    sum.Environment,
		State:          allStates[r.IntN(len(allStates))],
		Summary:        sum,
		LogURL:         fmt.Sprintf("https://dagctl.example.com/runs/%d/log", idx),
		TriggeredBy:    "user" + namePieces[r.IntN(len(namePieces))],
		ApplyByComment: r.IntN(2) == 0,
		ApplyOnMerge:   r.IntN(2) == 0,
		Note:           "note " + namePieces[r.IntN(len(namePieces))],
	}
	if r.IntN(3) == 0 {
		s.Approval.Missing = []string{"1 approval from `" + namePieces[r.IntN(len(namePieces))] + "`"}
	}
	if s.State == StatePlanFailed || s.State == StateApplyFailed {
		s.Error = randomDiff(r)
		if s.State == StatePlanFailed {
			s.Summary = nil
		}
	}
	if s.State == StateNoChanges {
		s.Summary = &plan.Summary{Tool: "sqlmesh", Environment: sum.Environment}
	}
	return s
}

func randomView(r *rand.Rand, maxModels int) View {
	v := View{Repo: "acme/warehouse", PR: 1, HeadSHA: "0123456789abcdef", Notes: []string{"Fork PR: `/dagctl plan` </details>"}}
	for i := range 1 + r.IntN(4) {
		v.Sections = append(v.Sections, randomSection(r, i, r.IntN(maxModels+1)))
	}
	return v
}

// requireParts checks what every split must guarantee.
func requireParts(t testing.TB, parts []string, limit int) {
	t.Helper()
	require.NotEmpty(t, parts)
	for i, p := range parts {
		require.LessOrEqual(t, utf8.RuneCountInString(p), limit, "part %d is too long", i+1)
		require.True(t, strings.HasPrefix(p, PartMarker(i+1)+"\n"), "part %d does not start with its marker", i+1)
		n, ok := MarkerPart(p)
		require.True(t, ok)
		require.Equal(t, i+1, n)
		require.Equal(t, 1, strings.Count(p, "<!-- dagctl-bot:sticky"), "part %d has more than its own marker", i+1)
		requireWellFormed(t, p)
	}
	// A heading marked "(continued)" continues a section that an earlier part started.
	started := map[string]bool{}
	for i, p := range parts {
		for _, line := range strings.Split(p, "\n") {
			if heading, ok := strings.CutSuffix(line, " (continued)"); ok && strings.HasPrefix(line, "### ") {
				require.True(t, started[heading], "part %d continues %q, which no earlier part started", i+1, heading)
			} else if strings.HasPrefix(line, "### `") {
				heading, _, _ := strings.Cut(line, " · ")
				started[heading] = true
			}
		}
	}
}

// requireNothingLost checks that every model is named and every diff is either shown whole or cut with a
// pointer to the section's full log.
func requireNothingLost(t testing.TB, v View, parts []string) {
	t.Helper()
	all := strings.Join(parts, "\n")
	index := suffixarray.New([]byte(all)) // thousands of look-ups in megabytes of output
	find := func(s string) int {
		at := index.Lookup([]byte(s), 1)
		if len(at) == 0 {
			return -1
		}
		return at[0]
	}
	for _, s := range v.Sections {
		sum := s.Summary
		if sum == nil || s.State == StateStale || !sum.HasChanges() {
			continue
		}
		for _, group := range [][]plan.Change{sum.Added, sum.Removed, sum.DirectlyModified, sum.IndirectlyModified, sum.MetadataUpdated} {
			for _, c := range group {
				require.GreaterOrEqual(t, find(code(c.Model, maxNameRunes)), 0, "model %q is missing", c.Model)
			}
		}
		for _, c := range sum.DirectlyModified {
			if strings.TrimSpace(c.Diff) == "" {
				continue
			}
			at := find("Diff of " + htmlCode(c.Model, maxNameRunes))
			require.GreaterOrEqual(t, at, 0, "no diff for %q", c.Model)
			content := sanitize(strings.TrimRight(c.Diff, "\n"))
			seg := all[at:min(len(all), at+len(content)+1000)]
			if !strings.Contains(seg, content) {
				require.Contains(t, seg, "✂️ Truncated:", "the diff of %q is cut without a notice", c.Model)
				require.Contains(t, seg, safeURL(s.LogURL), "the notice for %q does not point at the log", c.Model)
			}
		}
	}
}

func TestSplitRandomPlans(t *testing.T) {
	limits := []int{MinCommentLimit, 9000, 20000, GitHubCommentLimit}
	for seed := range uint64(60) {
		r := rand.New(rand.NewPCG(seed, 0xda9c71))
		v := randomView(r, 60)
		limit := limits[int(seed)%len(limits)]
		t.Run(fmt.Sprintf("seed%d_limit%d", seed, limit), func(t *testing.T) {
			parts := comment(v, limit, 0)
			requireParts(t, parts, limit)
			requireNothingLost(t, v, parts)

			capped := Comment(v, limit)
			requireParts(t, capped, limit)
			require.LessOrEqual(t, len(capped), MaxParts)
			if len(parts) > MaxParts {
				require.Contains(t, capped[MaxParts-1], "✂️ **Truncated:**")
			} else {
				require.Equal(t, parts, capped)
			}
		})
	}
}

func TestSplitHugePlan(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	v := hugeView(r, 10000)
	parts := comment(v, GitHubCommentLimit, 0)
	requireParts(t, parts, GitHubCommentLimit)
	requireNothingLost(t, v, parts)

	capped := Comment(v, GitHubCommentLimit)
	require.Len(t, capped, MaxParts)
	requireParts(t, capped, GitHubCommentLimit)
	require.Contains(t, capped[MaxParts-1], "✂️ **Truncated:**")
	require.Contains(t, capped[MaxParts-1], safeURL(v.Sections[0].LogURL))
	require.Equal(t, parts[:MaxParts-1], capped[:MaxParts-1], "the cap only cuts the end")

	gitlab := Comment(v, GitLabNoteLimit)
	requireParts(t, gitlab, GitLabNoteLimit)
}

// hugeView is one environment with n models, a third of them directly modified with diffs.
func hugeView(r *rand.Rand, n int) View {
	sum := &plan.Summary{Tool: "sqlmesh", Environment: "prod"}
	for i := range n {
		name := fmt.Sprintf("warehouse.schema_%02d.model_%05d", i%37, i)
		switch i % 3 {
		case 0:
			var diff strings.Builder
			for range 3 + r.IntN(20) {
				diff.WriteString(lineSamples[r.IntN(len(lineSamples))] + "\n")
			}
			sum.DirectlyModified = append(sum.DirectlyModified, plan.Change{Model: name, Kind: "FULL",
				Category: categories[i%4], Diff: diff.String(), Children: []string{name + "_child"}})
		case 1:
			sum.IndirectlyModified = append(sum.IndirectlyModified, plan.Change{Model: name, Category: plan.IndirectBreaking})
		case 2:
			sum.Added = append(sum.Added, plan.Change{Model: name, Kind: "VIEW"})
		}
		sum.Backfills = append(sum.Backfills, plan.Backfill{Model: name, Kind: plan.BackfillFullRefresh})
	}
	sum.Normalize()
	return View{HeadSHA: "0123456789abcdef", Sections: []Section{{Environment: "prod", State: StatePlanned,
		Summary: sum, LogURL: "https://dagctl.example.com/runs/7/log", TriggeredBy: "alice", ApplyByComment: true}}}
}

func TestSplitGiantDiffIsTruncatedWithPointer(t *testing.T) {
	diff := strings.Repeat("+ SELECT 'ünïcödé 日本語 🎉' AS x -- ```\n", 20000)
	sum := &plan.Summary{Tool: "sqlmesh", Environment: "prod", DirectlyModified: []plan.Change{
		{Model: "small.before", Category: plan.NonBreaking, Diff: "+ a\n"},
		{Model: "giant", Category: plan.Breaking, Diff: diff},
		{Model: "small.after", Category: plan.NonBreaking, Diff: "+ b\n"},
	}}
	v := View{HeadSHA: "abc", Sections: []Section{{Environment: "prod", State: StatePlanned, Summary: sum,
		LogURL: "https://dagctl.example.com/log/1", ApplyByComment: true}}}
	parts := Comment(v, GitHubCommentLimit)
	requireParts(t, parts, GitHubCommentLimit)
	requireNothingLost(t, v, parts)
	all := strings.Join(parts, "\n")
	require.Contains(t, all, "lines not shown. See the [full log](https://dagctl.example.com/log/1)")
	require.Contains(t, all, "+ b\n", "what follows a truncated diff is still shown")
	require.Len(t, parts, 3, "the giant diff fills a part of its own")
}

func TestSplitContinuationReopensBlocks(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	v := hugeView(r, 600)
	parts := comment(v, MinCommentLimit, 0)
	requireParts(t, parts, MinCommentLimit)
	require.Greater(t, len(parts), 3)
	reopened := 0
	for _, p := range parts[1:] {
		require.Contains(t, p, "continued (part ")
		require.Contains(t, p, "### `prod` (continued)", "a continuation names its environment again")
		if strings.Contains(p, "(continued)</summary>") {
			reopened++
		}
	}
	require.Positive(t, reopened, "a <details> block spanning parts is reopened")
	for _, p := range parts[:len(parts)-1] {
		require.True(t, strings.HasSuffix(p, "_Continued in the next comment._\n"))
	}
}

func TestCheckOutputRandomPlans(t *testing.T) {
	for seed := range uint64(40) {
		r := rand.New(rand.NewPCG(seed, 77))
		s := randomSection(r, 0, 200)
		title, summary, text := CheckOutput(s)
		require.NotEmpty(t, title)
		require.NotContains(t, title, "\n")
		for _, out := range []string{summary, text} {
			require.LessOrEqual(t, len(out), CheckOutputLimit, "seed %d: over %d bytes", seed, CheckOutputLimit)
			requireWellFormed(t, out)
		}
	}
	r := rand.New(rand.NewPCG(5, 6))
	s := hugeView(r, 10000).Sections[0]
	_, summary, text := CheckOutput(s)
	for _, out := range []string{summary, text} {
		require.LessOrEqual(t, len(out), CheckOutputLimit)
		require.Greater(t, len(out), CheckOutputLimit-2000, "the output uses the room it has")
		requireWellFormed(t, out)
		require.Contains(t, out, "✂️ **Truncated:** the rest is in the [full log](https://dagctl.example.com/runs/7/log)")
	}
}

func BenchmarkComment(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	v := hugeView(r, 10000)
	b.ReportAllocs()
	for b.Loop() {
		parts := Comment(v, GitHubCommentLimit)
		if len(parts) == 0 {
			b.Fatal("no output")
		}
	}
}

// The worst case for the room a part has left: names as long as they may be, made of characters that grow
// most when escaped, nested as deep as the layout goes, at the smallest limit.
func TestSplitLongestNamesAtMinimumLimit(t *testing.T) {
	long := func(i int) string { return fmt.Sprintf("%d", i) + strings.Repeat(`"<&|`+"`", maxNameRunes) }
	sum := &plan.Summary{Tool: "sqlmesh", Environment: strings.Repeat("e", maxNameRunes)}
	for i := range 30 {
		sum.DirectlyModified = append(sum.DirectlyModified, plan.Change{Model: long(i), Kind: long(i),
			Category: plan.Breaking, Diff: strings.Repeat("+ "+long(i)+"\n", 30), Children: []string{long(i), long(i + 1)}})
		sum.Backfills = append(sum.Backfills, plan.Backfill{Model: long(i), Kind: plan.BackfillIntervals,
			Intervals: []plan.Interval{{Start: long(i), End: long(i)}}})
	}
	s := Section{Project: strings.Repeat("p", maxNameRunes), Environment: sum.Environment, State: StatePlanned,
		Summary: sum, LogURL: "https://dagctl.example.com/log/" + strings.Repeat("x", 500), Note: long(0),
		TriggeredBy: long(1), Approval: Approval{Missing: []string{long(2)}, ApprovedBy: []string{long(3)}},
		ApplyByComment: true}
	v := View{HeadSHA: long(0), Notes: []string{long(0)}, Sections: []Section{s, s}}
	parts := comment(v, MinCommentLimit, 0)
	requireParts(t, parts, MinCommentLimit)
	requireNothingLost(t, v, parts)
	_, summary, text := CheckOutput(s)
	for _, out := range []string{summary, text} {
		require.LessOrEqual(t, len(out), CheckOutputLimit)
		requireWellFormed(t, out)
	}
}

// The paginator alone, on random nestings and far smaller limits than Comment allows: parts never exceed the
// limit and never leave a fence or a <details> open, whatever does not fit.
func TestPaginateRandomDocs(t *testing.T) {
	for seed := range uint64(300) {
		r := rand.New(rand.NewPCG(seed, 99))
		d := &doc{}
		depth := 0
		for range 5 + r.IntN(60) {
			switch k := r.IntN(10); {
			case k < 2 && depth < 4:
				d.details(htmlText(randomName(r, 0, r.IntN(100)), maxNameRunes))
				depth++
			case k < 4 && depth > 0:
				d.close()
				depth--
			case k < 6:
				d.codeBlock(block{lang: "diff", text: randomDiff(r), logURL: "https://x.example/l", keepTail: r.IntN(2) == 0,
					maxLines: r.IntN(3) * 10})
			default:
				d.text("- " + code(strings.Repeat(randomName(r, 0, 1), 1+r.IntN(20)), maxNameRunes) + "\n")
			}
		}
		for ; depth > 0; depth-- {
			d.close()
		}
		limit := 300 + r.IntN(3000)
		size := runeCount
		if r.IntN(2) == 0 {
			size = byteCount
		}
		maxParts := r.IntN(4)
		parts := paginate(d, pageOptions{limit: limit, size: size, maxParts: maxParts,
			header:    func(n int) string { return PartMarker(n) + "\n" },
			continued: "\n_continued_\n",
			truncated: func(u string) string { return "\n> ✂️ cut: " + link("log", u) + "\n" },
		})
		if maxParts > 0 {
			require.LessOrEqual(t, len(parts), maxParts)
		}
		for i, p := range parts {
			require.LessOrEqual(t, size(p), limit, "seed %d part %d", seed, i+1)
			requireWellFormed(t, p)
		}
	}
}
