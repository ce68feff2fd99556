// Package kube runs jobs as Kubernetes Jobs (DAGCTL_EXECUTOR=kubernetes).
//
// # One run, one Job
//
// Start creates a batch/v1 Job named after the run (labels dagctl.dev/run-id, kind, repo, pr, sha,
// environment, sanitised to label syntax and hashed when long; the exact values are annotations), suspended,
// then a Secret holding the run's tokens, owned by the Job so that the garbage collector removes it with the
// Job, and only then lets the Job run: its Pod never waits for a missing Secret. The Job has backoffLimit 0 (a
// failed plan is an answer, not a flake to retry), activeDeadlineSeconds from the spec's Timeout and
// ttlSecondsAfterFinished from the config. Its Pod runs as a non-root user with a read-only root file system,
// no capabilities, no privilege escalation, no service-account token and no service links. It mounts (envFrom)
// only the Secrets the operator allows by name or label selector, never the bot's own nor a run's token Secret
// (checkSecret; Start refuses a spec that names one).
//
// # How results come back, and why this way
//
// The Pod has two containers, after Prow's pod utilities:
//
//   - the init container "checkout" runs the bot's own image (`dagctl-bot job-run checkout`): it copies the
//     static dagctl-bot binary into a shared emptyDir and checks the commit out into another, with the clone
//     token from the Secret. The token is mounted only here, never in the container that runs PR code. With
//     Source.BaseSHA it checks the base commit out too, with the same URL and token, into the "base" volume;
//     with Spec.Inputs it fetches them first (GET PublicURL/jobs/{run-id}/inputs, the run's token) into the
//     "inputs" volume. The job container mounts both read-only (jobs.EnvBaseDir, jobs.EnvInputDir).
//   - the container "job" runs the job image (sqlmesh, dbt) with the copied binary as its entry point:
//     `dagctl-bot job-run run -- <command>` runs the command in the checkout with the job's environment only,
//     streams its lines to the bot over HTTP (PublicURL/jobs/{run-id}/lines, bearer token = HMAC-SHA256 of
//     the run id under the executor's key, see RunToken), posts the result with the files of Spec.Collect,
//     and leaves the result (without them) and the last lines in /dev/termination-log.
//
// The alternatives were worse: reading pod logs needs a kubelet round trip per poll, loses the stdout/stderr
// split and is gone with the Pod; writing results to the API (a ConfigMap, annotations) would hand PR code
// API credentials. HTTP needs only the bot's URL, works with any job image (nothing but the copied static
// binary is required in it), and is authenticated per run, so a token is useless for any other run. The runner
// buffers lines and retries while the bot is down (a restart, an upgrade with the Recreate strategy), and line
// numbers make resent batches harmless. Because the runner exits only after the bot took its result or its
// grace period ran out, a Job that completed has nothing left to deliver. When HTTP did not get through, the
// termination message in the Pod status still says how the command ended.
//
// # Following a Job
//
// An informer on this installation's Jobs and Pods (label dagctl.dev/instance) drives Handle.Wait. The most
// specific explanation of an end wins: "cancelled" (Cancel deleted the Job with foreground propagation, and
// Wait returns once the Pod is gone), "timeout" (DeadlineExceeded), Evicted, OOMKilled, CheckoutFailed, then
// the runner's reported exit code, then the termination message, then the bare Job status. A container stuck
// in ImagePullBackOff, InvalidImageName or CreateContainerConfigError fails the run at once instead of waiting
// for the deadline. Attach finds a run's Job again after a restart; CleanOrphans deletes Jobs no run knows.
package kube
