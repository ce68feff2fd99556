package recovery

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/dagctl/dagctl-bot/internal/vcs"
)

func TestFailed(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	since := now.Add(-DefaultLookback)
	at := func(ago time.Duration) time.Time { return now.Add(-ago) }
	for _, tc := range []struct {
		name     string
		attempts []Attempt
		want     []int64
	}{
		{"nothing failed", []Attempt{{ID: 1, GUID: "a", At: at(time.Minute), StatusCode: 202}}, nil},
		{"refused connection while the bot was down", []Attempt{{ID: 1, GUID: "a", At: at(time.Minute)}}, []int64{1}},
		{"a 5xx answer", []Attempt{{ID: 1, GUID: "a", At: at(time.Minute), StatusCode: 503}}, []int64{1}},
		{"failed, then redelivered", []Attempt{
			{ID: 1, GUID: "a", At: at(time.Hour)}, {ID: 2, GUID: "a", At: at(time.Minute), StatusCode: 202}}, nil},
		{"failed twice: the newest attempt is named", []Attempt{
			{ID: 1, GUID: "a", At: at(time.Hour)}, {ID: 5, GUID: "a", At: at(time.Minute), StatusCode: 502}}, []int64{5}},
		{"too old to ask for", []Attempt{{ID: 1, GUID: "a", At: at(DefaultLookback + time.Minute)}}, nil},
		{"attempts used up", []Attempt{
			{ID: 1, GUID: "a", At: at(4 * time.Minute), StatusCode: 413}, {ID: 2, GUID: "a", At: at(3 * time.Minute), StatusCode: 413},
			{ID: 3, GUID: "a", At: at(2 * time.Minute), StatusCode: 413}, {ID: 4, GUID: "a", At: at(time.Minute), StatusCode: 413}}, nil},
		{"several, oldest first", []Attempt{
			{ID: 9, GUID: "b", At: at(time.Minute)}, {ID: 3, GUID: "a", At: at(time.Hour)},
			{ID: 4, GUID: "c", At: at(time.Hour), StatusCode: 200}}, []int64{3, 9}},
		{"an attempt without a GUID is not asked for", []Attempt{{ID: 1, At: at(time.Minute)}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []int64
			for _, a := range Failed(tc.attempts, since, DefaultMaxAttempts) {
				got = append(got, a.ID)
			}
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestUnplanned(t *testing.T) {
	repo := vcs.Repo{Forge: "github", Owner: "Acme", Name: "Warehouse"}
	pr := func(n int, head string) vcs.PullRequest { return vcs.PullRequest{Repo: repo, Number: n, HeadSHA: head} }
	at := func(n int, head string) Head { return Head{Forge: "github", Repo: "acme/warehouse", PR: n, SHA: head} }
	for _, tc := range []struct {
		name           string
		open           []vcs.PullRequest
		planned, tried map[Head]bool
		want           []int
	}{
		{"planned", []vcs.PullRequest{pr(1, "a")}, map[Head]bool{at(1, "a"): true}, nil, nil},
		{"opened while the bot was down", []vcs.PullRequest{pr(1, "a")}, nil, nil, []int{1}},
		{"pushed while the bot was down: an older head was planned", []vcs.PullRequest{pr(1, "b")},
			map[Head]bool{at(1, "a"): true}, nil, []int{1}},
		{"tried at this head before", []vcs.PullRequest{pr(1, "a")}, nil, map[Head]bool{at(1, "a"): true}, nil},
		{"tried at an older head", []vcs.PullRequest{pr(1, "b")}, nil, map[Head]bool{at(1, "a"): true}, []int{1}},
		{"no head known", []vcs.PullRequest{pr(1, "")}, nil, nil, nil},
		{"several", []vcs.PullRequest{pr(3, "c"), pr(2, "b"), pr(1, "a")}, map[Head]bool{at(2, "b"): true}, nil, []int{3, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []int
			for _, p := range Unplanned(tc.open, tc.planned, tc.tried) {
				got = append(got, p.Number)
			}
			assert.Equal(t, tc.want, got)
		})
	}
}

// What the reconciler remembers is bounded by the open pull requests: heads of closed PRs, and older heads of
// open ones, are forgotten; another repository's are not touched.
func TestForgetClosed(t *testing.T) {
	repo := vcs.Repo{Forge: "github", Owner: "Acme", Name: "Warehouse"}
	at := func(r string, n int, head string) Head { return Head{Forge: "github", Repo: r, PR: n, SHA: head} }
	tried := map[Head]bool{
		at("acme/warehouse", 1, "a"): true, // still open at a
		at("acme/warehouse", 2, "b"): true, // closed
		at("acme/warehouse", 3, "c"): true, // moved on to d
		at("acme/other", 9, "z"):     true, // another repository
	}
	forgetClosed(tried, repo, []vcs.PullRequest{
		{Repo: repo, Number: 1, HeadSHA: "a"}, {Repo: repo, Number: 3, HeadSHA: "d"},
	})
	assert.Equal(t, map[Head]bool{at("acme/warehouse", 1, "a"): true, at("acme/other", 9, "z"): true}, tried)
}
