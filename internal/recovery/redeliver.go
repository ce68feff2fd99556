// Package recovery recovers what the bot missed while it could not hear: webhook deliveries the forge made
// while the bot was down (a forge that keeps its deliveries, as GitHub does, is asked to send the failed ones
// again) and open pull requests whose head has no plan (the reconcile, which needs nothing from the forge but
// its open PRs, so it covers forges without such an API, as GitLab, and deliveries a forge lost entirely).
// The rules are plain functions over plain data; Loop runs them on start and every few minutes.
package recovery

import (
	"sort"
	"time"
)

// Attempt is one delivery attempt the forge recorded: a redelivery is an attempt of its own with the same
// GUID (the delivery id the bot dedupes on).
type Attempt struct {
	ID   int64 // the forge's id of the attempt, which a redelivery names
	GUID string
	At   time.Time
	// StatusCode is the bot's answer; 0 when the forge could not reach the bot.
	StatusCode int
}

// OK reports whether the bot accepted the attempt.
func (a Attempt) OK() bool { return a.StatusCode >= 200 && a.StatusCode < 300 }

// Defaults of the redelivery rule.
const (
	// DefaultLookback is how far back failed deliveries are looked for: GitHub keeps an app's deliveries for
	// 3 days, so older ones cannot be asked for again anyway.
	DefaultLookback = 72 * time.Hour
	// DefaultMaxAttempts bounds the attempts of one delivery the bot asks for: a delivery its intake refuses
	// for good (a body over the size cap, a signature made with an old secret) is not asked for every few
	// minutes for three days.
	DefaultMaxAttempts = 4
)

// Failed are the deliveries to ask for again, by their newest attempt, oldest first: those with no accepted
// attempt, whose newest attempt is not older than since, and that have had fewer than maxAttempts attempts.
// Whether the bot has the delivery anyway (an attempt failed after it was stored) is for the caller to ask.
func Failed(attempts []Attempt, since time.Time, maxAttempts int) []Attempt {
	type seen struct {
		newest Attempt
		count  int
		ok     bool
	}
	by := map[string]*seen{}
	for _, a := range attempts {
		if a.GUID == "" {
			continue
		}
		s := by[a.GUID]
		if s == nil {
			s = &seen{newest: a}
			by[a.GUID] = s
		}
		s.count++
		s.ok = s.ok || a.OK()
		if a.At.After(s.newest.At) || (a.At.Equal(s.newest.At) && a.ID > s.newest.ID) {
			s.newest = a
		}
	}
	var out []Attempt
	for _, s := range by {
		if !s.ok && !s.newest.At.Before(since) && s.count < maxAttempts {
			out = append(out, s.newest)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
