package kube

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dagctl/dagctl-bot/internal/jobs"
)

// Runner timings. The grace periods bound how long a finished job's Pod keeps trying to reach a bot that is
// down: long enough for a restart or an upgrade, short enough not to keep a Pod for hours.
const (
	defaultReportGrace = 10 * time.Minute // after the command ended (Config.ReportGrace)
	checkoutGrace      = 15 * time.Second // the checkout's own lines are not worth delaying the job for
	stoppedGrace       = 5 * time.Second  // after SIGTERM: the kubelet kills the Pod soon
	killGrace          = 15 * time.Second // between SIGTERM and SIGKILL for the command's processes
	maxPendingLines    = 50000            // buffered while the bot is unreachable; older ones are dropped
	maxPendingBytes    = 32 << 20
	maxBatchLines      = 500
	tailLines          = 40
	terminationMax     = 4000 // Kubernetes keeps 4096 bytes of a termination message
	defaultTermLog     = "/dev/termination-log"
	lineOffsetFile     = "line-offset" // in the bin volume: where the job container's line numbers start
)

// RunInPod is `dagctl-bot job-run` inside a job's Pod; it returns the process exit code. env is the process
// environment (os.Environ()); it carries the runner's settings (DAGCTL_JOB_*) and the job's own variables.
//
//	job-run checkout        (init container) copy this binary into the shared volume, check the commit out
//	job-run run -- CMD...   (job container) run CMD in the checkout, report its output and result
//
// The command gets env without the runner's variables. Its output goes to the Pod log and, line by line, to the
// bot (PublicURL/jobs/{run-id}/lines, retried and buffered while the bot is unreachable); its result goes to the
// bot and into the termination message, which the bot reads from the Pod status when HTTP did not get through.
func RunInPod(ctx context.Context, args []string, env []string) int {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	vars := envMap(env)
	switch {
	case len(args) == 1 && args[0] == "checkout":
		return runCheckout(ctx, vars)
	case len(args) >= 3 && args[0] == "run" && args[1] == "--":
		return runCommand(ctx, vars, args[2:])
	case len(args) >= 2 && args[0] == "--": // `job-run -- COMMAND`, as the bot's usage text writes it
		return runCommand(ctx, vars, args[1:])
	default:
		fmt.Fprintln(os.Stderr, "usage: dagctl-bot job-run checkout | job-run run -- COMMAND [ARG...]")
		return 2
	}
}

func runCheckout(ctx context.Context, vars map[string]string) int {
	grace := checkoutGrace
	if d, err := time.ParseDuration(vars[envReportGrace]); err == nil && d < grace {
		grace = d
	}
	rep := newReporter(vars, 0)
	say := func(text string) { rep.line("stderr", "dagctl: "+text) }
	fail := func(err error) int {
		say(err.Error())
		writeTermination(vars, terminationMessage{Tail: rep.tail()})
		rep.finish(nil, grace)
		return 1
	}
	binDir, workspace := vars[envBinDir], vars[envWorkspace]
	if binDir == "" || workspace == "" {
		return fail(fmt.Errorf("%s and %s must be set", envBinDir, envWorkspace))
	}
	if err := copySelf(filepath.Join(binDir, "dagctl-bot")); err != nil {
		return fail(fmt.Errorf("copying the runner: %w", err))
	}
	if dir := vars[envInputsDir]; dir != "" {
		// Before the checkout: the bot may be down a while (a restart), and a run whose inputs were lost fails
		// before it fetches anything else.
		reportGrace := defaultReportGrace
		if d, err := time.ParseDuration(vars[envReportGrace]); err == nil {
			reportGrace = d
		}
		inputs, err := rep.fetchInputs(ctx, reportGrace)
		if errors.Is(err, errInputsLost) {
			fail(err)
			return exitInputsLost
		}
		if err != nil {
			return fail(fmt.Errorf("fetching the job's inputs: %w", err))
		}
		if err := jobs.WriteInputs(dir, inputs); err != nil {
			return fail(fmt.Errorf("writing the job's inputs: %w", err))
		}
		say(fmt.Sprintf("fetched %d inputs", len(inputs)))
	}
	src := jobs.Source{CloneURL: vars[envCloneURL], SHA: vars[envCloneSHA], Token: vars[envCloneToken], TokenUser: vars[envCloneUser]}
	say("checking out " + src.SHA)
	if err := jobs.Checkout(ctx, workspace, src); err != nil {
		return fail(fmt.Errorf("checking out %s: %w", src.SHA, err))
	}
	if baseSHA := vars[envBaseSHA]; baseSHA != "" {
		// The same URL and token, into the volume the job container mounts read-only.
		base := src
		base.SHA = baseSHA
		say("checking out the base " + baseSHA)
		if err := jobs.Checkout(ctx, vars[envBaseCheckout], base); err != nil {
			return fail(fmt.Errorf("checking out the base %s: %w", baseSHA, err))
		}
	}
	rep.finish(nil, grace)
	// The job container continues the numbering, so that the bot does not take its lines for resent ones.
	if err := os.WriteFile(filepath.Join(binDir, lineOffsetFile), []byte(strconv.FormatInt(rep.count(), 10)), 0o644); err != nil {
		return fail(err)
	}
	return 0
}

func runCommand(ctx context.Context, vars map[string]string, command []string) int {
	var offset int64
	if b, err := os.ReadFile(filepath.Join(vars[envBinDir], lineOffsetFile)); err == nil {
		offset, _ = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	}
	rep := newReporter(vars, offset)
	dir := filepath.Join(vars[envWorkspace], filepath.Clean("/"+vars[envSubdir]))
	childEnv := make([]string, 0, len(vars))
	for name, value := range vars {
		if !strings.HasPrefix(name, runnerEnvPrefix) {
			childEnv = append(childEnv, name+"="+value)
		}
	}

	started := time.Now()
	exitCode, reason := runSteps(ctx, vars[envSetup], command, dir, childEnv, rep)
	res := wireResult{ExitCode: exitCode, Reason: reason, DurationMS: time.Since(started).Milliseconds()}
	// First the termination message: if the Pod is killed while the bot is unreachable, it is what remains.
	// It has no room for artifacts.
	writeTermination(vars, terminationMessage{Result: &wireResult{ExitCode: res.ExitCode, Reason: res.Reason, DurationMS: res.DurationMS}, Tail: rep.tail()})
	if collect := vars[envCollect]; collect != "" {
		res.Artifacts, res.ArtifactErrors = collectArtifacts(collect, dir, reason)
	}
	grace := defaultReportGrace
	if d, err := time.ParseDuration(vars[envReportGrace]); err == nil {
		grace = d
	}
	if ctx.Err() != nil {
		grace = stoppedGrace
	}
	rep.finish(&res, grace)
	switch {
	case exitCode < 0:
		return 1
	case exitCode > 255:
		return 255
	}
	return exitCode
}

// collectArtifacts reads the files of Spec.Collect (collectJSON) the command left in dir, as the local executor
// does; the bot takes only the paths it asked for, whatever the Pod sends.
func collectArtifacts(collectJSON, dir, reason string) (map[string][]byte, map[string]string) {
	var paths []string
	if err := json.Unmarshal([]byte(collectJSON), &paths); err != nil {
		return nil, nil // the bot says the job did not report them
	}
	if reason != "" {
		return nil, jobs.NotCollected(paths, "not collected: the job ended before its command ran ("+reason+")")
	}
	return jobs.CollectArtifacts(dir, paths, -1)
}

// runSteps runs the setup steps (setupJSON, a JSON list of argvs; "" for none), each logged first, and then the
// command, as the local executor does: the first step that fails ends the job with its exit code and the
// reason jobs.SetupFailedReason, unless the Pod is being stopped (the bot then knows why).
func runSteps(ctx context.Context, setupJSON string, command []string, dir string, env []string, rep *reporter) (exitCode int, reason string) {
	var steps [][]string
	if setupJSON != "" {
		if err := json.Unmarshal([]byte(setupJSON), &steps); err != nil {
			rep.line("stderr", "dagctl: reading the setup steps: "+err.Error())
			return 2, jobs.SetupFailedReason(1)
		}
	}
	for i, step := range steps {
		if len(step) == 0 {
			rep.line("stderr", fmt.Sprintf("dagctl: setup step %d is empty", i+1))
			return 2, jobs.SetupFailedReason(i + 1)
		}
		rep.line("stderr", fmt.Sprintf("dagctl: setup %d/%d: %s", i+1, len(steps), strings.Join(step, " ")))
		code := execute(ctx, step, dir, env, rep)
		if code == 0 {
			continue
		}
		if ctx.Err() != nil {
			return code, ""
		}
		rep.line("stderr", fmt.Sprintf("dagctl: setup step %d (%s) failed (exit code %d); the job stops here", i+1, step[0], code))
		return code, jobs.SetupFailedReason(i + 1)
	}
	return execute(ctx, command, dir, env, rep), ""
}

// execute runs the command in its own process group and returns its exit code as a shell reports it
// (128+signal when killed).
// It is long because the process group, its output pumps and the signal forwarding must be set up and torn down together.
func execute(ctx context.Context, command []string, dir string, env []string, rep *reporter) int {
	path, err := lookPath(command[0], envMap(env)["PATH"])
	if err != nil {
		rep.line("stderr", "dagctl: "+err.Error())
		return 127
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		rep.line("stderr", "dagctl: "+err.Error())
		return 126
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		rep.line("stderr", "dagctl: "+err.Error())
		return 126
	}
	cmd := &exec.Cmd{
		Path: path, Args: command, Dir: dir, Env: env, Stdout: outW, Stderr: errW,
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true},
	}
	err = cmd.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		rep.line("stderr", "dagctl: starting the command: "+err.Error())
		return 126
	}
	var readers sync.WaitGroup
	for stream, r := range map[string]*os.File{"stdout": outR, "stderr": errR} {
		readers.Add(1)
		go func() {
			defer readers.Done()
			_ = jobs.ReadLines(r, func(text string) { rep.line(stream, text) })
		}()
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var waitErr error
	select {
	case waitErr = <-exited:
	case <-ctx.Done():
		// The kubelet is stopping the Pod (cancel, deadline, eviction): pass it on to all the command's processes.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case waitErr = <-exited:
		case <-time.After(killGrace):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			waitErr = <-exited
		}
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // what is left of the job dies with it
	drained := make(chan struct{})
	go func() { readers.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(killGrace):
		outR.Close() // a process that left the group keeps the pipe open
		errR.Close()
		<-drained
	}
	outR.Close()
	errR.Close()

	var exitErr *exec.ExitError
	if waitErr != nil && !errors.As(waitErr, &exitErr) {
		rep.line("stderr", "dagctl: waiting for the command: "+waitErr.Error())
		return 126
	}
	if status, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && status.Signaled() {
		return 128 + int(status.Signal())
	}
	return cmd.ProcessState.ExitCode()
}

// lookPath finds a command on the job's PATH; names with a slash are taken as they are.
func lookPath(name, pathList string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	for _, d := range filepath.SplitList(pathList) {
		if !filepath.IsAbs(d) {
			continue // the checkout must not shadow the image's commands
		}
		candidate := filepath.Join(d, name)
		if info, err := os.Stat(candidate); err == nil && info.Mode().IsRegular() && info.Mode().Perm()&0o111 != 0 {
			return candidate, nil
		}
	}
	return "", fmt.Errorf("%s: command not found on PATH %q", name, pathList)
}

func copySelf(dst string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	in, err := os.Open(self)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst+".tmp", os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(dst+".tmp", dst)
}

// writeTermination leaves the message for the kubelet, shortened to what Kubernetes keeps.
func writeTermination(vars map[string]string, msg terminationMessage) {
	path := vars[EnvTerminationLog]
	if path == "" {
		path = defaultTermLog
	}
	for i, l := range msg.Tail {
		if len(l) > 300 {
			msg.Tail[i] = l[:300] + "…"
		}
	}
	b, _ := json.Marshal(msg)
	for len(b) > terminationMax && len(msg.Tail) > 0 {
		msg.Tail = msg.Tail[1:]
		b, _ = json.Marshal(msg)
	}
	_ = os.WriteFile(path, b, 0o644) // outside a Pod there may be no such file; the HTTP report is primary
}

func envMap(env []string) map[string]string {
	m := make(map[string]string, len(env))
	for _, kv := range env {
		if name, value, ok := strings.Cut(kv, "="); ok && name != "" {
			m[name] = value
		}
	}
	return m
}

// reporter sends output lines to the bot in batches from a goroutine, keeping them while the bot is
// unreachable, and echoes them to the Pod log.
type reporter struct {
	url, token     string
	client         http.Client
	stdout, stderr io.Writer // nil: no echo
	wake           chan struct{}
	stopSend       context.CancelFunc
	sent           chan struct{}

	mu           sync.Mutex
	pending      []wireLine
	pendingBytes int
	seq          int64 // number of pending[0]
	next         int64 // number of the next line
	recent       []string
	stopped      bool // the bot answered 410 or 401: it will never take reports of this run
}

func newReporter(vars map[string]string, offset int64) *reporter {
	r := &reporter{
		url:    strings.TrimRight(vars[envReportURL], "/"),
		token:  vars[envReportToken],
		client: http.Client{Timeout: 15 * time.Second},
		stdout: os.Stdout,
		stderr: os.Stderr,
		wake:   make(chan struct{}, 1),
		sent:   make(chan struct{}),
		seq:    offset,
		next:   offset,
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.stopSend = cancel
	go r.send(ctx)
	return r
}

func (r *reporter) line(stream, text string) {
	if r.stdout != nil {
		out := r.stdout
		if stream == "stderr" {
			out = r.stderr
		}
		fmt.Fprintln(out, text) // the Pod log
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recent = append(r.recent, text)
	if len(r.recent) > 2*tailLines {
		r.recent = append(r.recent[:0], r.recent[len(r.recent)-tailLines:]...)
	}
	r.next++
	if r.stopped || r.url == "" {
		return
	}
	r.pending = append(r.pending, wireLine{Stream: stream, Text: text})
	r.pendingBytes += len(text)
	drop := 0
	for len(r.pending)-drop > maxPendingLines || r.pendingBytes > maxPendingBytes {
		r.pendingBytes -= len(r.pending[drop].Text)
		drop++
	}
	if drop > 0 {
		r.pending = r.pending[drop:]
		r.seq += int64(drop)
	}
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *reporter) tail() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.recent
	if len(t) > tailLines {
		t = t[len(t)-tailLines:]
	}
	return append([]string(nil), t...)
}

func (r *reporter) count() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.next
}

// send delivers pending lines until stopped, backing off while the bot is unreachable.
func (r *reporter) send(ctx context.Context) {
	defer close(r.sent)
	backoff := retryMin
	for {
		delivered, err := r.flushOnce(ctx)
		switch {
		case err == nil && !delivered:
			select {
			case <-r.wake:
			case <-ctx.Done():
				return
			}
		case err == nil:
			backoff = retryMin
		case errors.Is(err, errStopReporting):
			return
		default:
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return
			}
			backoff = min(2*backoff, retryMax)
		}
	}
}

const (
	retryMin = 200 * time.Millisecond
	retryMax = 5 * time.Second
)

var errStopReporting = errors.New("the bot does not take reports of this run")

// flushOnce posts one batch; delivered says whether there was one.
func (r *reporter) flushOnce(ctx context.Context) (delivered bool, err error) {
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		return false, errStopReporting
	}
	n := min(len(r.pending), maxBatchLines)
	batch := linesBatch{Seq: r.seq, Lines: append([]wireLine(nil), r.pending[:n]...)}
	r.mu.Unlock()
	if n == 0 {
		return false, nil
	}
	if err := r.post(ctx, "/lines", batch); err != nil {
		return false, err
	}
	r.mu.Lock()
	// Lines may have been dropped meanwhile; the numbers say which of the batch are still pending.
	if done := min(batch.Seq+int64(n)-r.seq, int64(len(r.pending))); done > 0 {
		for _, l := range r.pending[:done] {
			r.pendingBytes -= len(l.Text)
		}
		r.pending = r.pending[done:]
		r.seq += done
	}
	r.mu.Unlock()
	return true, nil
}

func (r *reporter) post(ctx context.Context, path string, body any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	timeout := 15 * time.Second
	if len(b) > 1<<20 {
		timeout = 2 * time.Minute // a result with artifacts
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+r.token)
	client := r.client
	client.Timeout = timeout
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	switch {
	case resp.StatusCode < 300:
		return nil
	case resp.StatusCode == http.StatusGone, resp.StatusCode == http.StatusUnauthorized:
		r.mu.Lock()
		r.stopped = true
		r.pending, r.pendingBytes = nil, 0
		r.mu.Unlock()
		fmt.Fprintf(os.Stderr, "dagctl: the bot refuses reports of this run (%s)\n", resp.Status)
		return errStopReporting
	default:
		return fmt.Errorf("report %s: %s", path, resp.Status)
	}
}

var errInputsLost = errors.New("the bot no longer has the job's inputs (it restarted before the job fetched them); start the job again")

// fetchInputs gets the run's inputs from the bot (GET .../inputs), retrying while the bot is unreachable or not
// following the run yet, until grace has passed.
func (r *reporter) fetchInputs(ctx context.Context, grace time.Duration) (map[string][]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, grace)
	defer cancel()
	backoff := retryMin
	for {
		inputs, retry, err := r.getInputs(ctx)
		if err == nil || !retry {
			return inputs, err
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil, fmt.Errorf("gave up after %s: %w", grace, err)
		}
		backoff = min(2*backoff, retryMax)
	}
}

func (r *reporter) getInputs(ctx context.Context) (inputs map[string][]byte, retry bool, err error) {
	if r.url == "" {
		return nil, false, errors.New("no report URL to fetch the inputs from")
	}
	reqCtx, cancel := context.WithTimeout(ctx, 2*time.Minute) // up to 64 MiB
	defer cancel()
	req, err := http.NewRequestWithContext(reqCtx, http.MethodGet, r.url+"/inputs", nil)
	if err != nil {
		return nil, false, err
	}
	req.Header.Set("Authorization", "Bearer "+r.token)
	client := r.client
	client.Timeout = 0 // the request's context bounds it
	resp, err := client.Do(req)
	if err != nil {
		return nil, true, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK:
	case resp.StatusCode == http.StatusConflict:
		return nil, false, errInputsLost
	case resp.StatusCode == http.StatusGone, resp.StatusCode == http.StatusUnauthorized:
		return nil, false, fmt.Errorf("the bot refuses this run's inputs (%s)", resp.Status)
	default:
		return nil, true, fmt.Errorf("inputs: %s", resp.Status)
	}
	var body inputsBody
	limited := &io.LimitedReader{R: resp.Body, N: maxInputsBody + 1}
	if err := json.NewDecoder(limited).Decode(&body); err != nil {
		if limited.N <= 0 {
			return nil, false, fmt.Errorf("inputs: the answer is over %d bytes", maxInputsBody)
		}
		return nil, true, fmt.Errorf("inputs: %w", err)
	}
	return body.Files, false, nil
}

// finish stops the background sender, delivers the remaining lines and then the result (nil: none), trying
// until grace has passed. It reports whether everything arrived.
func (r *reporter) finish(res *wireResult, grace time.Duration) bool {
	r.stopSend()
	<-r.sent
	if r.url == "" {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	backoff := retryMin
	for {
		delivered, err := r.flushOnce(ctx)
		if err == nil && !delivered && res != nil {
			err = r.post(ctx, "/result", res)
			if err == nil {
				return true
			}
		} else if err == nil && !delivered {
			return true
		}
		if errors.Is(err, errStopReporting) {
			return false
		}
		if err != nil {
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				fmt.Fprintf(os.Stderr, "dagctl: gave up reporting to the bot after %s: %v\n", grace, err)
				return false
			}
			backoff = min(2*backoff, retryMax)
		}
	}
}
