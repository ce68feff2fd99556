package jobs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"
)

// Reasons of the local executor, besides ReasonTimeout and ReasonCancelled. A process killed by a signal
// nobody here sent (the OOM killer, an operator) ends with Reason "signal: <name>".
const (
	ReasonCheckoutFailed = "checkout failed"
	ReasonStartFailed    = "start failed"
)

// SetupFailedReason is the Reason of a job whose setup step i (1-based) failed; the log names its command.
// Shared by the executors.
func SetupFailedReason(i int) string { return fmt.Sprintf("setup step %d failed", i) }

// DefaultKillGrace is how long a stopped job has to exit after SIGTERM before it is killed.
const DefaultKillGrace = 10 * time.Second

// LocalOptions configure the local executor.
type LocalOptions struct {
	// WorkDir holds one scratch directory per job (checkout and home); empty means DefaultWorkDir().
	WorkDir string
	// KillGrace is the time between SIGTERM and SIGKILL when a job times out or is cancelled, and how long
	// the executor waits for output after a job's processes are gone. Zero means DefaultKillGrace.
	KillGrace time.Duration
	// Users, when set, runs every job as a user of its own (see Users); it needs CanSwitchUsers. Nil runs jobs
	// as the bot's own user, which lets PR code read everything the bot can read.
	Users *Users
}

// DefaultWorkDir is $DAGCTL_WORKDIR, else dagctl in the system's temporary directory.
func DefaultWorkDir() string {
	if dir := os.Getenv("DAGCTL_WORKDIR"); dir != "" {
		return dir
	}
	return filepath.Join(os.TempDir(), "dagctl")
}

// Local runs jobs as processes of the bot's machine, each in its own process group and scratch directory, and
// with Users as a user of its own. It is safe for concurrent use.
type Local struct {
	workDir   string
	killGrace time.Duration
	users     *userPool // nil: jobs run as the bot's user

	mu      sync.Mutex
	running map[string]*localJob
}

var _ Executor = (*Local)(nil)

// NewLocal returns a local executor. It makes the bot's process non-dumpable (see HardenProcess), because
// jobs may run as the bot's user. With Users it makes the work directory one that every job can pass through
// to its own directory (mode 0711) and fails if a job could not reach it.
func NewLocal(opts LocalOptions) (*Local, error) {
	if err := HardenProcess(); err != nil {
		return nil, err
	}
	l := &Local{workDir: opts.WorkDir, killGrace: opts.KillGrace, running: map[string]*localJob{}}
	if l.workDir == "" {
		l.workDir = DefaultWorkDir()
	}
	if l.killGrace <= 0 {
		l.killGrace = DefaultKillGrace
	}
	abs, err := filepath.Abs(l.workDir)
	if err != nil {
		return nil, err
	}
	l.workDir = abs
	if opts.Users != nil {
		if err := CanSwitchUsers(); err != nil {
			return nil, fmt.Errorf("jobs cannot run as users of their own (%s): %w", opts.Users, err)
		}
		if err := opts.Users.validate(os.Geteuid(), os.Getegid()); err != nil {
			return nil, err
		}
		if err := prepareSharedWorkDir(l.workDir); err != nil {
			return nil, err
		}
		l.users = newUserPool(*opts.Users, clearUser)
	}
	return l, nil
}

// Isolated reports whether jobs run as users of their own.
func (l *Local) Isolated() bool { return l.users != nil }

// prepareSharedWorkDir creates the work directory, or adds the search permission to it, so that a job's user
// can reach its own directory inside (mode 0700, its own) without listing the others.
func prepareSharedWorkDir(dir string) error {
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return fmt.Errorf("work directory: %w", err)
	}
	info, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("work directory: %w", err)
	}
	if perm := info.Mode().Perm(); perm&0o001 == 0 {
		if err := os.Chmod(dir, perm|0o011); err != nil {
			return fmt.Errorf("work directory: %w", err)
		}
	}
	return ReachableByJobs(dir, false)
}

// ReachableByJobs checks that a user other than the bot can reach path: every directory on the way lets
// others search it, and the file lets others execute it when exec is set. It names the first obstacle.
func ReachableByJobs(path string, exec bool) error {
	resolved, err := filepath.EvalSymlinks(path)
	if err != nil {
		return err
	}
	resolved, err = filepath.Abs(resolved)
	if err != nil {
		return err
	}
	for dir := filepath.Dir(resolved); ; dir = filepath.Dir(dir) {
		info, err := os.Stat(dir)
		if err != nil {
			return err
		}
		if info.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("jobs run as other users and cannot reach %s: %s has mode %04o (others need the search permission, o+x)",
				path, dir, info.Mode().Perm())
		}
		if dir == filepath.Dir(dir) {
			break
		}
	}
	if exec {
		info, err := os.Stat(resolved)
		if err != nil {
			return err
		}
		if info.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("jobs run as other users and cannot execute %s: mode %04o", path, info.Mode().Perm())
		}
	}
	return nil
}

// Start prepares a scratch directory and starts the job in the background: the checkout (for a CloneURL
// source) and the command. Errors in the spec are returned at once; a failed checkout or a command that
// cannot be started ends the job with ReasonCheckoutFailed or ReasonStartFailed and a line on stderr. The
// job does not depend on ctx once started; use Cancel. Every line sent to sink has Source.Token and URL
// credentials masked; the caller masks its own secrets by wrapping the sink (Redactor.Sink). Calls to sink
// are never concurrent.
// It is long because the checkout, the user, the environment and the start are one sequence whose failures each end the job in its own way.
func (l *Local) Start(ctx context.Context, spec Spec, sink Sink) (Handle, error) {
	if err := validateLocal(spec); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	runID := spec.RunID
	if runID == "" {
		runID = uuid.NewString()
	}
	id := "local-" + runID

	workDirMode := os.FileMode(0o700)
	if l.users != nil {
		workDirMode = 0o711 // see prepareSharedWorkDir
	}
	if err := os.MkdirAll(l.workDir, workDirMode); err != nil {
		return nil, fmt.Errorf("work directory: %w", err)
	}
	var user *jobUser
	if l.users != nil {
		uid, err := l.users.acquire()
		if err != nil {
			return nil, err
		}
		user = &jobUser{uid: uid, group: l.users.users.Group}
	}
	releaseUser := func() {
		if user != nil {
			l.users.release(user.uid)
		}
	}
	scratch, err := os.MkdirTemp(l.workDir, "job-*")
	if err != nil {
		releaseUser()
		return nil, fmt.Errorf("scratch directory: %w", err)
	}

	jobCtx, cancel := context.WithCancelCause(context.Background())
	j := &localJob{
		id:        id,
		spec:      spec,
		scratch:   scratch,
		record:    l.recordFile(id),
		user:      user,
		killGrace: l.killGrace,
		redactor:  NewRedactor(spec.Source.Token),
		sink:      sink,
		ctx:       jobCtx,
		cancel:    cancel,
		done:      make(chan struct{}),
		started:   time.Now(),
	}

	l.mu.Lock()
	if _, dup := l.running[id]; dup {
		l.mu.Unlock()
		cancel(nil)
		_ = os.RemoveAll(scratch)
		releaseUser()
		return nil, fmt.Errorf("job %s is already running", id)
	}
	l.running[id] = j
	l.mu.Unlock()

	if spec.Timeout > 0 {
		j.timer = time.AfterFunc(spec.Timeout, func() { cancel(errTimeout) })
	}
	j.forget = func() {
		releaseUser() // its processes are gone and its directory is removed
		l.mu.Lock()
		delete(l.running, id)
		l.mu.Unlock()
	}
	go j.run()
	return j, nil
}

// Attach returns ErrGone: a local job is not followed by another process than the one that started it. A job a
// killed bot left running is stopped first (leftover.go), so that ErrGone means nothing of it runs; an error
// says it may still run.
func (l *Local) Attach(ctx context.Context, id string, sink Sink) (Handle, error) {
	if err := l.stopLeftover(ctx, id); err != nil {
		return nil, err
	}
	return nil, ErrGone
}

// Shutdown cancels every running job and waits until they have ended (or ctx is done), so that no job
// process outlives the bot.
func (l *Local) Shutdown(ctx context.Context) error {
	l.mu.Lock()
	jobs := make([]*localJob, 0, len(l.running))
	for _, j := range l.running {
		jobs = append(jobs, j)
	}
	l.mu.Unlock()
	for _, j := range jobs {
		j.cancel(errCancelled)
	}
	for _, j := range jobs {
		select {
		case <-j.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func validateLocal(spec Spec) error {
	src := spec.Source
	switch {
	case len(spec.Command) == 0 || spec.Command[0] == "":
		return errors.New("job has no command")
	case !validSetup(spec.Setup):
		return errors.New("job has an empty setup step")
	case (src.Dir == "") == (src.CloneURL == ""):
		return errors.New("job needs exactly one of Source.Dir and Source.CloneURL")
	case src.CloneURL != "" && !validSHA(src.SHA):
		return fmt.Errorf("job needs a full lower-case commit SHA, not %q", src.SHA)
	case src.BaseSHA != "" && src.CloneURL == "":
		return errors.New("job's Source.BaseSHA needs Source.CloneURL")
	case src.BaseSHA != "" && !validSHA(src.BaseSHA):
		return fmt.Errorf("job needs a full lower-case base commit SHA, not %q", src.BaseSHA)
	case src.BaseDir != "" && (src.Dir == "" || src.BaseSHA != ""):
		return errors.New("job's Source.BaseDir needs Source.Dir, and no BaseSHA")
	case spec.Subdir != "" && !filepath.IsLocal(spec.Subdir):
		return fmt.Errorf("job subdirectory %q must be a relative path inside the checkout", spec.Subdir)
	}
	if err := CheckCollect(spec.Collect); err != nil {
		return err
	}
	return CheckInputs(spec.Inputs)
}

func orNone(reason string) string {
	if reason == "" {
		return "no other reason"
	}
	return reason
}

func validSetup(steps [][]string) bool {
	for _, s := range steps {
		if len(s) == 0 || s[0] == "" {
			return false
		}
	}
	return true
}

var (
	errTimeout   = errors.New(ReasonTimeout)
	errCancelled = errors.New(ReasonCancelled)
)

// jobUser is the identity a job of the local executor runs as: its uid, a group of the same number, and the
// jobs' shared group (0: none).
type jobUser struct {
	uid   uint32
	group uint32
}

func (u *jobUser) credential() *syscall.Credential {
	c := &syscall.Credential{Uid: u.uid, Gid: u.uid, Groups: []uint32{}} // no supplementary group of the bot's
	if u.group != 0 {
		c.Groups = []uint32{u.group}
	}
	return c
}

// localJob is one job of the local executor; it is its own Handle.
type localJob struct {
	id        string
	spec      Spec
	scratch   string
	record    string   // the file naming its running process group (leftover.go)
	user      *jobUser // nil: the bot's user
	killGrace time.Duration
	redactor  *Redactor
	timer     *time.Timer

	sinkMu sync.Mutex
	sink   Sink

	ctx    context.Context // done when the job is to stop; the cause says why
	cancel context.CancelCauseFunc

	started time.Time
	forget  func() // takes the job off the executor's list, before Wait returns
	done    chan struct{}
	result  Result
}

func (j *localJob) ID() string { return j.id }

func (j *localJob) Wait(ctx context.Context) (Result, error) {
	select {
	case <-j.done:
		return j.result, nil
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
}

// Cancel stops the job and waits until its processes are gone and its scratch directory is removed, or ctx
// is done. Cancelling a job that has ended already changes nothing.
func (j *localJob) Cancel(ctx context.Context) error {
	j.cancel(errCancelled)
	select {
	case <-j.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (j *localJob) emit(stream, text string) {
	if j.sink == nil {
		return
	}
	text = j.redactor.Redact(text)
	j.sinkMu.Lock()
	defer j.sinkMu.Unlock()
	j.sink(Line{Stream: stream, Text: text})
}

// stopReason is the reason of a job stopped from outside, or "".
func (j *localJob) stopReason() string {
	switch context.Cause(j.ctx) {
	case errTimeout:
		return ReasonTimeout
	case errCancelled:
		return ReasonCancelled
	}
	return ""
}

func (j *localJob) run() {
	defer close(j.done)
	defer func() {
		if j.timer != nil {
			j.timer.Stop()
		}
		j.cancel(nil)
		if err := removeScratch(j.scratch); err != nil {
			j.emit("stderr", "dagctl: removing the scratch directory: "+err.Error())
		}
		j.result.Duration = time.Since(j.started)
		j.forget()
	}()
	j.result = j.execute()
	if len(j.spec.Collect) > 0 && j.result.Artifacts == nil {
		j.result.ArtifactErrors = NotCollected(j.spec.Collect, "not collected: the job ended before its command ran ("+orNone(j.result.Reason)+")")
	}
}

func (j *localJob) execute() Result {
	src := j.spec.Source
	base := src.Dir
	if src.CloneURL != "" {
		base = filepath.Join(j.scratch, "src")
		if err := checkout(j.ctx, base, src); err != nil {
			if reason := j.stopReason(); reason != "" {
				return Result{ExitCode: -1, Reason: reason}
			}
			j.emit("stderr", fmt.Sprintf("dagctl: checking out %s from %s: %v", src.SHA, src.CloneURL, err))
			return Result{ExitCode: -1, Reason: ReasonCheckoutFailed}
		}
	}
	dir := filepath.Join(base, j.spec.Subdir)
	if info, err := os.Stat(dir); err != nil || !info.IsDir() {
		j.emit("stderr", fmt.Sprintf("dagctl: project directory %s does not exist", j.spec.Subdir))
		return Result{ExitCode: -1, Reason: ReasonStartFailed}
	}

	env := make(map[string]string, len(j.spec.Env)+4)
	for k, v := range j.spec.Env {
		env[k] = v
	}
	delete(env, EnvBaseDir) // the executor's to set
	delete(env, EnvInputDir)
	// Directories the job reads but does not own: left out of the chown below.
	var readOnly []string
	if src.BaseSHA != "" {
		// Beside the head's checkout, not inside it: nothing the job does in its project reaches the base.
		baseCheckout := filepath.Join(j.scratch, "base")
		baseSrc := src
		baseSrc.SHA = src.BaseSHA
		if err := checkout(j.ctx, baseCheckout, baseSrc); err != nil {
			if reason := j.stopReason(); reason != "" {
				return Result{ExitCode: -1, Reason: reason}
			}
			j.emit("stderr", fmt.Sprintf("dagctl: checking out the base %s from %s: %v", src.BaseSHA, src.CloneURL, err))
			return Result{ExitCode: -1, Reason: ReasonCheckoutFailed}
		}
		if err := makeReadOnly(baseCheckout); err != nil {
			j.emit("stderr", "dagctl: making the base checkout read-only: "+err.Error())
			return Result{ExitCode: -1, Reason: ReasonStartFailed}
		}
		readOnly = append(readOnly, baseCheckout)
		env[EnvBaseDir] = filepath.Join(baseCheckout, j.spec.Subdir)
	}
	if src.BaseDir != "" {
		env[EnvBaseDir] = filepath.Join(src.BaseDir, j.spec.Subdir)
	}
	if len(j.spec.Inputs) > 0 {
		inputs := filepath.Join(j.scratch, "inputs")
		err := writeInputs(inputs, j.spec.Inputs)
		if err == nil {
			err = makeReadOnly(inputs) // the directory too: a job of its own user adds nothing to it
		}
		if err != nil {
			j.emit("stderr", "dagctl: writing the job's inputs: "+err.Error())
			return Result{ExitCode: -1, Reason: ReasonStartFailed}
		}
		readOnly = append(readOnly, inputs)
		env[EnvInputDir] = inputs
	}
	// A fresh home: the bot user's ~/.sqlmesh, ~/.dbt or ~/.netrc are none of the job's business. And
	// temporary files of its own, removed with it, rather than in a /tmp that other jobs see.
	for name, dir := range map[string]string{"HOME": "home", "TMPDIR": "tmp"} {
		if _, ok := env[name]; ok {
			continue
		}
		path := filepath.Join(j.scratch, dir)
		if err := os.Mkdir(path, 0o700); err != nil {
			j.emit("stderr", "dagctl: creating the job's "+dir+" directory: "+err.Error())
			return Result{ExitCode: -1, Reason: ReasonStartFailed}
		}
		env[name] = path
	}
	if j.user != nil {
		// The job's user owns its directory, checkout included, and nothing else of the bot's; what it only
		// reads stays the bot's (readable, not writable).
		if err := chownTree(j.scratch, int(j.user.uid), int(j.user.uid), readOnly...); err != nil {
			j.emit("stderr", "dagctl: handing the job its directory: "+err.Error())
			return Result{ExitCode: -1, Reason: ReasonStartFailed}
		}
	}
	if reason := j.stopReason(); reason != "" {
		return Result{ExitCode: -1, Reason: reason}
	}
	if res, ok := j.runSetup(dir, env); !ok {
		return res
	}
	res := j.runProcess(dir, env, j.spec.Command)
	// Read before the scratch directory goes, and after every process of the job is gone (runProcess): the
	// files are the job's, and a job of its own user owns them.
	owner := -1
	if j.user != nil {
		owner = int(j.user.uid)
	}
	res.Artifacts, res.ArtifactErrors = CollectArtifacts(dir, j.spec.Collect, owner)
	return res
}

// runSetup runs the setup steps in order, each logged first; it stops at the first that fails and returns its
// result, with SetupFailedReason unless the job was stopped (a timeout or cancel keeps its own reason).
func (j *localJob) runSetup(dir string, env map[string]string) (Result, bool) {
	for i, step := range j.spec.Setup {
		j.emit("stderr", fmt.Sprintf("dagctl: setup %d/%d: %s", i+1, len(j.spec.Setup), strings.Join(step, " ")))
		res := j.runProcess(dir, env, step)
		if res.Succeeded() {
			continue
		}
		if j.stopReason() == "" {
			j.emit("stderr", fmt.Sprintf("dagctl: setup step %d (%s) failed (exit code %d, %s); the job stops here", i+1, step[0], res.ExitCode, orNone(res.Reason)))
			res.Reason = SetupFailedReason(i + 1)
		}
		return res, false
	}
	return Result{}, true
}

// runProcess runs one command of the job (a setup step or the command) to its end.
// It is long because start, stream, wait and kill of one process group share their state; split, each part would need all of it.
func (j *localJob) runProcess(dir string, env map[string]string, argv []string) Result {
	path, err := lookPath(argv[0], env["PATH"])
	if err != nil {
		j.emit("stderr", "dagctl: "+err.Error())
		return Result{ExitCode: -1, Reason: ReasonStartFailed}
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		j.emit("stderr", "dagctl: "+err.Error())
		return Result{ExitCode: -1, Reason: ReasonStartFailed}
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		j.emit("stderr", "dagctl: "+err.Error())
		return Result{ExitCode: -1, Reason: ReasonStartFailed}
	}
	cmd := &exec.Cmd{
		Path:   path,
		Args:   argv,
		Dir:    dir,
		Env:    EnvList(env), // never nil: a nil Env would inherit the bot's environment
		Stdout: outW,
		Stderr: errW,
		// Its own process group, so that stopping the job stops everything it started (sqlmesh's workers).
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true},
	}
	if j.user != nil {
		cmd.SysProcAttr.Credential = j.user.credential()
	}
	err = startJobProcess(cmd, j.user != nil)
	outW.Close() // the job holds its own copies; EOF comes when every process of the job has closed them
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		j.emit("stderr", "dagctl: starting the command: "+err.Error())
		return Result{ExitCode: -1, Reason: ReasonStartFailed}
	}
	pgid := cmd.Process.Pid
	j.writeRecord(pgid)

	drained := make(chan struct{})
	var readers sync.WaitGroup
	for stream, r := range map[string]*os.File{"stdout": outR, "stderr": errR} {
		readers.Add(1)
		go func() {
			defer readers.Done()
			_ = readLines(r, func(text string) { j.emit(stream, text) })
		}()
	}
	go func() {
		readers.Wait()
		close(drained)
	}()

	exited, reap := watchExit(cmd)
	reason := ""
	select {
	case <-exited:
	case <-j.ctx.Done():
		reason = j.stopReason()
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		_ = cmd.Process.Signal(syscall.SIGTERM) // in case the leader moved to another group
		waitAll(j.killGrace, exited, drained)
	}
	// Whatever is left of the job dies with it. The leader has not been reaped yet, so its group id is
	// still reserved for this job.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	_ = cmd.Process.Kill()
	<-exited
	if j.user != nil && !clearUser(j.user.uid) {
		// Not expected (SIGKILL from the bot always works); the pool hands the uid out only once they are gone.
		j.emit("stderr", fmt.Sprintf("dagctl: processes of the job's uid %d are still running", j.user.uid))
	} else if j.record != "" {
		_ = os.Remove(j.record) // nothing of it runs any more
	}

	// Output ends when the last process holding the pipes is gone; one that left the process group could
	// keep them open forever, so stop waiting after the grace period.
	if !waitAll(j.killGrace, drained) {
		outR.Close()
		errR.Close()
		<-drained
		j.emit("stderr", "dagctl: a process of the job left its process group and kept its output open")
	}
	outR.Close()
	errR.Close()

	waitErr := reap()
	result := Result{ExitCode: -1, Reason: reason}
	var exitErr *exec.ExitError
	if waitErr != nil && !errors.As(waitErr, &exitErr) {
		j.emit("stderr", "dagctl: waiting for the command: "+waitErr.Error())
		if result.Reason == "" {
			result.Reason = ReasonStartFailed
		}
		return result
	}
	state := cmd.ProcessState
	if status, ok := state.Sys().(syscall.WaitStatus); ok && status.Signaled() {
		result.ExitCode = 128 + int(status.Signal()) // as a shell reports it
		if result.Reason == "" {
			result.Reason = "signal: " + status.Signal().String()
		}
	} else {
		result.ExitCode = state.ExitCode()
	}
	return result
}

// chownTree gives every file under root (root included, symbolic links themselves) to uid and gid, except the
// trees under skip.
func chownTree(root string, uid, gid int, skip ...string) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		for _, s := range skip {
			if path == s && d.IsDir() {
				return filepath.SkipDir
			}
		}
		return os.Lchown(path, uid, gid)
	})
}

// writeInputs writes a job's inputs into dir (created if missing) as read-only files; their names are checked
// already (CheckInputs).
func writeInputs(dir string, inputs map[string][]byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for name, content := range inputs {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o444); err != nil {
			return err
		}
	}
	return nil
}

// makeReadOnly takes the write permission off every file and directory under root and lets others read them:
// a job of its own user reads a tree the bot owns and cannot change it; a job of the bot's user could chmod it
// back, so there it is a guard against mistakes, not a boundary.
func makeReadOnly(root string) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			return nil // its own mode means nothing; its target is checked where it is read
		case d.IsDir():
			return os.Chmod(path, 0o555)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		return os.Chmod(path, info.Mode().Perm()&^0o222|0o444)
	})
}

// removeScratch removes a job's scratch directory, including directories the job made read-only.
func removeScratch(dir string) error {
	if err := os.RemoveAll(dir); err == nil {
		return nil
	}
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && d.Type()&fs.ModeSymlink == 0 {
			_ = os.Chmod(path, 0o700)
		}
		return nil
	})
	return os.RemoveAll(dir)
}

// waitAll waits until every channel is closed or the time is up, and reports whether they all closed.
func waitAll(limit time.Duration, chans ...<-chan struct{}) bool {
	timer := time.NewTimer(limit)
	defer timer.Stop()
	for _, ch := range chans {
		select {
		case <-ch:
		case <-timer.C:
			return false
		}
	}
	return true
}

// lookPath finds a command on the job's PATH, not the bot's. Names with a slash are used as they are (a
// relative one is relative to the job's directory).
func lookPath(name, pathList string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	for _, d := range filepath.SplitList(pathList) {
		if !filepath.IsAbs(d) {
			continue // "" or "." would mean the checkout: PR code must not shadow the commands the bot runs
		}
		candidate := filepath.Join(d, name)
		if info, err := os.Stat(candidate); err == nil && info.Mode().IsRegular() && info.Mode().Perm()&0o111 != 0 {
			return candidate, nil
		}
	}
	return "", fmt.Errorf("%s: not found on the job's PATH", name)
}
