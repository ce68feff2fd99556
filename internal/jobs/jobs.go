// Package jobs runs plan and apply commands on an executor: local processes (the embedded default) or
// Kubernetes Jobs. A job runs pull-request code, so its environment is built from what the caller names,
// never inherited from the bot.
package jobs

import (
	"context"
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// Kind says whether a job plans or applies.
type Kind string

const (
	KindPlan  Kind = "plan"
	KindApply Kind = "apply"
	// KindInvalidate removes a per-PR environment after its PR was closed.
	KindInvalidate Kind = "invalidate"
	// KindImage hands a project back for its deploy image (dbt: after `dbt deps`), as an artifact; part of an
	// apply's run, before any command of the tool runs. It is given no registry credentials: the bot pushes.
	KindImage Kind = "image"
)

// Source says where the code a job runs on comes from.
type Source struct {
	// Dir runs the command in an existing directory as it is (the CLI on a working tree). Nothing is checked out
	// or cleaned up.
	Dir string
	// CloneURL and SHA check a commit out into a scratch directory that is removed after the job.
	CloneURL string
	SHA      string
	// Token authenticates the clone (an installation token). It is never put into the job's environment.
	Token string
	// TokenUser is the HTTP basic-auth user name sent with Token: empty means "x-access-token" (GitHub
	// installation tokens); GitLab tokens use "oauth2".
	TokenUser string
	// BaseSHA, when set, is a second commit of the same repository (the commit last applied to the environment,
	// or the merge base) checked out with the same URL and credentials beside SHA's checkout, never inside it.
	// The job finds the project there in EnvBaseDir, read-only where the executor can make it so. It needs
	// CloneURL.
	BaseSHA string
	// BaseDir is, with Dir, a directory already holding the base commit's files (the CLI writes the merge base
	// of a working tree there): the job finds the project in EnvBaseDir, as with BaseSHA.
	BaseDir string
}

// Variables the executors set for a job, overriding any of the same name in Spec.Env.
const (
	// EnvBaseDir is the project's Subdir inside the base checkout (Source.BaseSHA); unset without one. It may
	// not exist: the base commit need not have the project yet.
	EnvBaseDir = "DAGCTL_BASE_DIR"
	// EnvInputDir is the directory holding Spec.Inputs, read-only where the executor can make it so; unset
	// without inputs.
	EnvInputDir = "DAGCTL_INPUT_DIR"
)

// MaxInputBytes caps the total size of a job's Spec.Inputs (64 MiB: a large dbt project's manifest). The
// Kubernetes executor serves them over HTTP because a ConfigMap or Secret holds at most 1 MiB.
const MaxInputBytes = 64 << 20

// Spec is everything an executor needs to run one job.
type Spec struct {
	RunID string // unique per run; executors label their work with it so that it can be found again
	Kind  Kind
	// Labels describe the job for operators (repo, pr, sha, environment); executors may attach them.
	Labels map[string]string
	Source Source
	// Subdir is the project's path inside the checkout, where the command runs.
	Subdir string
	// Setup are commands run before Command, in order, in the same directory, as the same user, with the same
	// environment and masking (a repository's job.setup, as its operator allows). The first that fails ends the
	// job with ReasonSetupFailed-style reasons ("setup step 2 failed") and its exit code; Command does not run.
	Setup   [][]string
	Command []string
	// Env is the complete environment of the job; see BuildEnv.
	Env     map[string]string
	Timeout time.Duration
	// Image is the container image for executors that run containers; the local executor ignores it.
	Image string
	// Inputs are files the bot gives the job (the production manifest of the environment's last deploy), by
	// plain file name (ValidInputName), in a directory of their own (EnvInputDir) that is not the checkout and
	// goes with the job; at most MaxInputBytes in all.
	Inputs map[string][]byte
	// Collect are files the job leaves in its project directory (Subdir) that come back on its Result, by path
	// relative to it ("target/manifest.json"; ValidArtifactPath), read once the command has ended: at most
	// MaxCollect paths, each file at most MaxArtifactBytes.
	Collect []string
	// Secrets names secrets whose keys become environment variables of the job (Kubernetes: Secrets in the jobs
	// namespace, attached with envFrom; their values reach the bot only when it reads a Secret to check it, and
	// then to mask them). Only those the executor allows (SecretChecker) are mounted. Executors without a secret
	// store ignore them.
	Secrets []string
}

// ValidInputName reports whether name is a plain file name, fit for an input: not empty, no path separator,
// not "." or "..", no NUL, at most 255 bytes.
func ValidInputName(name string) bool {
	return name != "" && name != "." && name != ".." && len(name) <= 255 && !strings.ContainsAny(name, "/\\\x00")
}

// CheckInputs says what is wrong with a job's inputs: a name that is not a plain file name, or more than
// MaxInputBytes in all.
func CheckInputs(inputs map[string][]byte) error {
	total := 0
	for name, content := range inputs {
		if !ValidInputName(name) {
			return fmt.Errorf("job input %q must be a plain file name", name)
		}
		total += len(content)
	}
	if total > MaxInputBytes {
		return fmt.Errorf("job inputs are %d bytes, over the cap of %d", total, MaxInputBytes)
	}
	return nil
}

// MaxArtifactBytes caps each artifact of a job (Spec.Collect): 64 MiB, a large dbt project's manifest. A file
// over it is an error on the result (Result.ArtifactErrors), never a truncated file.
const MaxArtifactBytes = 64 << 20

// MaxCollect caps the number of paths a job collects, so that its result has a bounded size.
const MaxCollect = 8

// ValidArtifactPath reports whether p names a file inside a project directory, as Spec.Collect takes it: a
// clean relative path with "/" between its parts, no "..", not absolute, no backslash or NUL.
func ValidArtifactPath(p string) bool {
	return p != "" && len(p) <= 1024 && path.Clean(p) == p && filepath.IsLocal(p) && !strings.ContainsAny(p, "\\\x00")
}

// CheckCollect says what is wrong with a job's Spec.Collect: too many paths, one that is not a
// ValidArtifactPath, or one named twice.
func CheckCollect(paths []string) error {
	if len(paths) > MaxCollect {
		return fmt.Errorf("a job collects at most %d files, not %d", MaxCollect, len(paths))
	}
	seen := map[string]bool{}
	for _, p := range paths {
		if !ValidArtifactPath(p) {
			return fmt.Errorf("job artifact %q must be a clean relative path inside the project", p)
		}
		if seen[p] {
			return fmt.Errorf("job artifact %q is named twice", p)
		}
		seen[p] = true
	}
	return nil
}

// Line is one line of output, as it arrives.
type Line struct {
	Stream string // "stdout" or "stderr"
	Text   string
}

// ResultPrefix starts a job's result lines on stdout (sqlmesh's helper prints `::dagctl-plan:: ...`). They are
// kept aside from the log as they stream, so that a log cut to its cap still yields the job's result.
const ResultPrefix = "::dagctl-"

// IsResult reports whether l is one of a job's result lines.
func (l Line) IsResult() bool { return l.Stream == "stdout" && strings.HasPrefix(l.Text, ResultPrefix) }

// Sink receives output lines while a job runs. It must not block for long.
type Sink func(Line)

// Result is how a job ended.
type Result struct {
	ExitCode int
	// Reason is set when the job did not run to an exit code of its own: "timeout", "cancelled", or an
	// executor-specific reason such as "OOMKilled" or "ImagePullBackOff".
	Reason   string
	Duration time.Duration
	// Artifacts are the files of Spec.Collect the job left, whole, by their path; every other path of
	// Spec.Collect is in ArtifactErrors with the reason (missing, over MaxArtifactBytes, not a regular file of
	// the project, the command did not run, it did not reach the bot). They are the job's output, as forgeable
	// by PR code as its log. An executor whose jobs outlive the bot (Kubernetes) keeps them in an
	// ArtifactStore as soon as it has them, so that a process attached after a restart takes them too.
	Artifacts      map[string][]byte
	ArtifactErrors map[string]string
}

// ArtifactStore keeps what an executor collected of a job durably, by the job's run id (Spec.RunID), from the
// moment the executor has it: the process that took the job's report may die before its caller read the
// result, and the process that attaches to the job after the restart then takes them from here (db.Store;
// deleted with the run).
type ArtifactStore interface {
	KeepArtifacts(ctx context.Context, jobRunID string, artifacts map[string][]byte, errs map[string]string) error
	// KeptArtifacts is what was kept for the job; ok is false when nothing was.
	KeptArtifacts(ctx context.Context, jobRunID string) (artifacts map[string][]byte, errs map[string]string, ok bool, err error)
}

// Reasons shared by all executors.
const (
	ReasonTimeout   = "timeout"
	ReasonCancelled = "cancelled"
)

// Succeeded reports whether the command exited 0 by itself.
func (r Result) Succeeded() bool { return r.ExitCode == 0 && r.Reason == "" }

// Handle is a started job.
type Handle interface {
	// ID is the executor's id for the job, stored with the run so that a restarted bot can Attach to it.
	ID() string
	// Wait blocks until the job ends and returns how it ended.
	Wait(ctx context.Context) (Result, error)
	// Cancel stops the job; Wait then returns a Result with Reason "cancelled".
	Cancel(ctx context.Context) error
}

// Executor starts jobs and finds them again after a restart.
type Executor interface {
	Start(ctx context.Context, spec Spec, sink Sink) (Handle, error)
	// Attach finds a job started earlier, possibly by a previous process of the bot. It returns ErrGone when the
	// job can no longer be followed (a local process dies with the bot).
	Attach(ctx context.Context, id string, sink Sink) (Handle, error)
}

// SecretChecker is an executor that mounts secrets by name (Spec.Secrets, a repository's job.secrets): it says
// which ones the operator lets jobs have. The bot asks before it plans, so that a refused name is a config error
// on the PR; the executor refuses it again when it starts a job.
type SecretChecker interface {
	// RefuseSecret says why jobs may not mount the secret ("is one of the bot's own Secrets ..."), or "" when
	// they may. An error means it cannot tell now (the API is unreachable, the bot may not read Secrets).
	RefuseSecret(ctx context.Context, name string) (string, error)
}

// ErrGone means a job cannot be attached to any more.
var ErrGone = errors.New("job is gone")
