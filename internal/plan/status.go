package plan

import "fmt"

// Status is where a stored plan is in its lifecycle:
//
//	queued → running → ready | no-changes | failed | cancelled
//	running → queued (its job was lost when the bot restarted, and it is run again)
//	any non-final state, and ready/no-changes → stale (a newer head SHA arrived)
type Status string

const (
	StatusQueued    Status = "queued"
	StatusRunning   Status = "running"
	StatusReady     Status = "ready"      // has changes; can be approved and applied
	StatusNoChanges Status = "no-changes" // nothing to apply
	StatusFailed    Status = "failed"
	StatusCancelled Status = "cancelled"
	StatusStale     Status = "stale" // superseded by a newer commit
)

// Final reports whether no job is, or will be, working on a plan in this status.
func (s Status) Final() bool {
	switch s {
	case StatusReady, StatusNoChanges, StatusFailed, StatusCancelled, StatusStale:
		return true
	}
	return false
}

var transitions = map[Status][]Status{
	StatusQueued:    {StatusRunning, StatusCancelled, StatusStale, StatusFailed},
	StatusRunning:   {StatusReady, StatusNoChanges, StatusFailed, StatusCancelled, StatusStale, StatusQueued},
	StatusReady:     {StatusStale},
	StatusNoChanges: {StatusStale},
}

// Transition checks that a plan may move from one status to another.
func Transition(from, to Status) error {
	for _, allowed := range transitions[from] {
		if allowed == to {
			return nil
		}
	}
	return fmt.Errorf("plan cannot go from %s to %s", from, to)
}

// Outcome is the final status of a plan whose job finished: ready when the summary has changes.
func Outcome(s Summary) Status {
	if s.HasChanges() {
		return StatusReady
	}
	return StatusNoChanges
}
