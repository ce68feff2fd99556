// Package bench measures dagctl-bot: parse and render of a huge plan, the webhook-to-check-run latency of the
// whole bot (Go benchmarks, run by `make bench`), and, under cmd/, the overhead of `dagctl-bot plan` over the
// raw sqlmesh CLI and the intake's latency under load. Every figure is reported next to a floor measured in the
// same run. BENCHMARKS.md has the figures and how to reproduce them.
package bench
