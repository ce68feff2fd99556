package testutil

import (
	"testing"

	"go.uber.org/goleak"
)

// CheckNoLeakedGoroutines fails the test if, after its cleanups, a goroutine runs that did not run when it was
// called: a run's work, a job's watcher or a sender that outlived the world the test tore down. Call it first
// in a world's constructor, so that its check runs after every other cleanup (they run last in, first out).
// Tests of the package must not run in parallel, or one's goroutines show up in another's check.
func CheckNoLeakedGoroutines(t testing.TB) {
	t.Helper()
	opts := []goleak.Option{
		goleak.IgnoreCurrent(),
		// The local executor's job starter: one OS thread for the whole process, by design (jobs.startJobProcess).
		goleak.IgnoreTopFunction("github.com/dagctl/dagctl-bot/internal/jobs.runStarter"),
		// net/http lingers up to 500 ms on a connection it refused (huge headers) before closing it, whoever
		// closed the server: bounded by net/http itself, not ours to wait for.
		goleak.IgnoreAnyFunction("net/http.(*conn).closeWriteAndWait"),
	}
	t.Cleanup(func() {
		if err := goleak.Find(opts...); err != nil {
			t.Errorf("goroutines outlived the test's world:\n%v", err)
		}
	})
}
