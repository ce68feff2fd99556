package recovery

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
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
