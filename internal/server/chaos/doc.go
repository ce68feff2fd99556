// Package chaos holds the chaos test of the whole bot (its tests only): many PRs' deliveries sent to a bot that
// is killed with SIGKILL at random moments, in front of a fake GitHub that fails a random share of calls; at the
// end nothing may be lost, doubled, stuck or held. The bot runs in a child process (this package's test binary
// run again) on one SQLite file, with jobs replayed from captures of the real sqlmesh (testdata/replay).
package chaos
