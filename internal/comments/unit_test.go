package comments

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/plan"
)

func TestMarkers(t *testing.T) {
	// Existing PRs are found by these exact strings: a change here is a breaking change.
	assert.Equal(t, "<!-- dagctl-bot:sticky -->", Marker)
	assert.Equal(t, Marker, PartMarker(1))
	assert.Equal(t, "<!-- dagctl-bot:sticky:part=2 -->", PartMarker(2))
	assert.NotContains(t, PartMarker(2), Marker, "a continuation must not be mistaken for the first body")

	for body, want := range map[string]int{
		Marker + "\n### dagctl":              1,
		Marker:                               1,
		PartMarker(2) + "\nmore":             2,
		PartMarker(12) + "\n":                12,
		"<!-- dagctl-bot:sticky:part=1 -->":  0,
		"<!-- dagctl-bot:sticky:part=02 -->": 0,
		"<!-- dagctl-bot:sticky:part=x -->":  0,
		"> " + Marker:                        0,
		"hello\n" + Marker:                   0,
		"":                                   0,
	} {
		got, ok := MarkerPart(body)
		assert.Equal(t, want != 0, ok, "%q", body)
		assert.Equal(t, want, got, "%q", body)
	}
}

func TestEscaping(t *testing.T) {
	assert.Equal(t, "`a|b`", code("a|b", 100))
	assert.Equal(t, "``x`y``", code("x`y", 100))
	assert.Equal(t, "`` `x ``", code("`x", 100))
	assert.Equal(t, "`a b`", code("a\nb", 100), "line breaks fold into spaces")
	assert.Equal(t, "`a\\|b`", cellCode("a|b", 100))
	assert.Equal(t, `\<b\> \*x\* \_y\_ \[l\](u) \$m\$ \| \\ \&amp;`, text("<b> *x* _y_ [l](u) $m$ | \\ &amp;", 100))
	assert.Equal(t, "&lt;/details&gt;", htmlText("</details>", 100))
	assert.Equal(t, "comment `/dagctl plan` \\<now\\>", prose("comment `/dagctl plan` <now>", 100))
	assert.Equal(t, "odd \\` \\<x\\>", prose("odd ` <x>", 100), "an unpaired backtick is escaped, not a code span")
	assert.Equal(t, "abcd…", oneLine("abcdefgh", 5))
	assert.Equal(t, "日本語…", oneLine("日本語テキスト", 4), "cut between runes")
	assert.Equal(t, "red \uFFFD", sanitize("\x1b[31mred\x1b[0m \x00"), "terminal escapes dropped, controls replaced")
	assert.Equal(t, "a\nb\nc", sanitize("a\r\nb\rc"))
	assert.Equal(t, "\uFFFDok", sanitize("\xffok"))
}

func TestSafeURL(t *testing.T) {
	assert.Equal(t, "https://x.example/log?a=%281%29", safeURL("https://x.example/log?a=(1)"))
	assert.Equal(t, "", safeURL("javascript:alert(1)"))
	assert.Equal(t, "", safeURL("/relative"))
	assert.Equal(t, "full log", link("full log", ""))
}

func TestFormatCount(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 12345: "12,345", 1234567: "1,234,567"} {
		assert.Equal(t, want, formatCount(n))
	}
}

func TestStateOfCoversEveryPlanStatus(t *testing.T) {
	for _, s := range []plan.Status{plan.StatusQueued, plan.StatusRunning, plan.StatusReady, plan.StatusNoChanges,
		plan.StatusFailed, plan.StatusCancelled, plan.StatusStale} {
		st := StateOf(s)
		assert.NotEqual(t, text(string(st), maxNameRunes), Section{State: st}.stateLabel(),
			"plan status %s has no label of its own", s)
	}
	assert.Equal(t, StatePlanning, StateOf(plan.StatusRunning))
	assert.Equal(t, StatePlanned, StateOf(plan.StatusReady))
}

func TestConclusion(t *testing.T) {
	changes := &plan.Summary{DirectlyModified: []plan.Change{{Model: "a", Category: plan.Breaking}}}
	uncategorized := &plan.Summary{DirectlyModified: []plan.Change{{Model: "a"}}}
	for _, tc := range []struct {
		s    Section
		want string
	}{
		{Section{State: StateQueued}, ""},
		{Section{State: StatePlanning}, ""},
		{Section{State: StateApplying}, ""},
		{Section{State: StatePlanned, Summary: changes}, ConclusionSuccess},
		{Section{State: StatePlanned, Summary: changes, Approval: Approval{Missing: []string{"1 approval"}}}, ConclusionSuccess},
		{Section{State: StatePlanned, Summary: uncategorized}, ConclusionActionRequired},
		{Section{State: StateNoChanges, Summary: &plan.Summary{}}, ConclusionNeutral},
		{Section{State: StateStale}, ConclusionNeutral},
		{Section{State: StatePlanFailed}, ConclusionFailure},
		{Section{State: StateApplyFailed}, ConclusionFailure},
		{Section{State: StateCancelled}, ConclusionCancelled},
		{Section{State: StateApplied, Summary: changes}, ConclusionSuccess},
	} {
		assert.Equal(t, tc.want, Conclusion(tc.s), "%s", tc.s.State)
	}
}

func TestLongErrorKeepsItsEnd(t *testing.T) {
	var lines []string
	for i := range 500 {
		lines = append(lines, "frame "+formatCount(i))
	}
	lines = append(lines, "ValueError: the real cause")
	s := Section{Environment: "prod", State: StatePlanFailed, Error: strings.Join(lines, "\n"),
		LogURL: "https://dagctl.example.com/log/9"}
	parts := Comment(View{Sections: []Section{s}}, GitHubCommentLimit)
	require.Len(t, parts, 1)
	requireWellFormed(t, parts[0])
	assert.Contains(t, parts[0], "ValueError: the real cause")
	assert.NotContains(t, parts[0], "frame 0\n")
	assert.Contains(t, parts[0], "> ✂️ Truncated: 461 earlier lines not shown. See the [full log](https://dagctl.example.com/log/9).")
	assert.Less(t, strings.Index(parts[0], "Truncated"), strings.Index(parts[0], "ValueError"),
		"the pointer comes before the tail it cut")

	// The check run has room for all of it.
	_, summary, _ := CheckOutput(s)
	assert.Contains(t, summary, "frame 0\n")
}

func TestCommentRefusesTinyLimits(t *testing.T) {
	assert.Panics(t, func() { Comment(View{}, MinCommentLimit-1) })
	assert.NotPanics(t, func() { Comment(View{}, MinCommentLimit) })
}

func TestEmptyView(t *testing.T) {
	parts := Comment(View{HeadSHA: "abc"}, GitHubCommentLimit)
	require.Len(t, parts, 1)
	assert.True(t, strings.HasPrefix(parts[0], Marker+"\n"))
	assert.Contains(t, parts[0], "Nothing to plan")
}

func TestSameDiffInSeveralEnvironmentsIsShownOnce(t *testing.T) {
	v := severalEnvironments()
	body := Comment(v, GitHubCommentLimit)[0]
	assert.Equal(t, 1, strings.Count(body, "Diff of <code>sushi.items</code>"))
	assert.Contains(t, body, "- `sushi.items`: same diff as in `analytics/pr_12`")
}

func TestTruncatedCodeNeverSplitsARune(t *testing.T) {
	b := &block{lang: "diff", text: strings.Repeat("日本語🎉", 1000), logURL: "https://x.example/l"}
	for room := 200; room < 400; room += 7 {
		for _, size := range []func(string) int{runeCount, byteCount} {
			out := truncateCode(b, "```", room, size)
			assert.LessOrEqual(t, size(out), room)
			assert.True(t, strings.HasPrefix(out, "```diff\n"))
			requireWellFormed(t, out)
		}
	}
}
