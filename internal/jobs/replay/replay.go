// Package replay is a jobs.Executor that replays job output captured from real runs: the lines a job printed,
// in order and with their streams, and how it ended. A capture is keyed by what decides the output: the job's
// kind, its environment, the project's files at the commit (a hash) and the command's arguments (the flags and
// the embedded helper; not the program's path, which differs between machines). A Recorder makes captures by
// running a real executor on the same files.
//
// Handler tests replay, so they need no sqlmesh and take milliseconds; `make golden` records the captures
// again. A job with no capture fails loudly, naming its key and the file it looked for.
package replay

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/dagctl/dagctl-bot/internal/jobs"
)

// FilesAt gives the files of a commit (path → content), as the job would check them out. memforge's FilesOf
// is one.
type FilesAt func(sha string) (map[string]string, bool)

// Key is what decides a job's output.
type Key struct {
	Kind        jobs.Kind `json:"kind"`
	Environment string    `json:"environment"`
	// Files is a hash of the project's files (paths relative to the project, and contents).
	Files string `json:"files"`
	// Args is a hash of the command's arguments after the program.
	Args string `json:"args"`
	// Base is a hash of the project's files at the base commit (Source.BaseSHA: dbt compares with a parse of
	// it); "" without one.
	Base string `json:"base,omitempty"`
	// Inputs is a hash of the job's input files (Spec.Inputs: dbt's production manifest); "" without any.
	Inputs string `json:"inputs,omitempty"`
}

// File is where the capture of a key is stored, relative to the captures' directory.
func (k Key) File() string {
	return fmt.Sprintf("%s_%s_%s_%s%s.json", k.Kind, safeName(k.Environment), k.Files[:12], k.Args[:12], k.more("_"))
}

func (k Key) String() string {
	return fmt.Sprintf("kind=%s environment=%s files=%s args=%s%s", k.Kind, k.Environment, k.Files[:12], k.Args[:12], k.more(" "))
}

// more names the base and inputs of a key that has them (keys without them keep the names they had).
func (k Key) more(sep string) string {
	out := ""
	if k.Base != "" {
		out += sep + "base=" + k.Base[:12]
	}
	if k.Inputs != "" {
		out += sep + "inputs=" + k.Inputs[:12]
	}
	if sep == "_" {
		out = strings.ReplaceAll(out, "=", "-")
	}
	return out
}

func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, s)
}

// Capture is one job's recorded output and end.
type Capture struct {
	Key      Key    `json:"key"`
	Lines    []Line `json:"lines"`
	ExitCode int    `json:"exit_code"`
	Reason   string `json:"reason,omitempty"`
	// Artifacts are the files of Spec.Collect the job left (dbt's apply: its manifest.json), by path.
	Artifacts map[string]string `json:"artifacts,omitempty"`
}

// Line is one captured line of output.
type Line struct {
	Stream string `json:"stream"`
	Text   string `json:"text"`
}

// KeyOf computes a spec's key from the files of its commit.
func KeyOf(spec jobs.Spec, files FilesAt) (Key, error) {
	all, ok := files(spec.Source.SHA)
	if !ok {
		return Key{}, fmt.Errorf("replay: no files for commit %q of run %s", spec.Source.SHA, spec.RunID)
	}
	a := sha256.New()
	if len(spec.Command) > 1 {
		for _, arg := range spec.Command[1:] {
			fmt.Fprintf(a, "%d:%s", len(arg), arg)
		}
	}
	key := Key{Kind: spec.Kind, Environment: spec.Labels["environment"],
		Files: hashFiles(projectFiles(all, spec.Subdir)), Args: hex.EncodeToString(a.Sum(nil))}
	if base := spec.Source.BaseSHA; base != "" {
		files, ok := files(base)
		if !ok {
			return Key{}, fmt.Errorf("replay: no files for base commit %q of run %s", base, spec.RunID)
		}
		key.Base = hashFiles(projectFiles(files, spec.Subdir))
	}
	if len(spec.Inputs) > 0 {
		inputs := map[string]string{}
		for name, content := range spec.Inputs {
			inputs[name] = string(content)
		}
		key.Inputs = hashFiles(inputs)
	}
	return key, nil
}

func hashFiles(files map[string]string) string {
	h := sha256.New()
	for _, p := range sortedKeys(files) {
		fmt.Fprintf(h, "%d:%s%d:%s", len(p), p, len(files[p]), files[p])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// projectFiles are the files under subdir, with paths relative to it.
func projectFiles(all map[string]string, subdir string) map[string]string {
	prefix := ""
	if d := path.Clean(filepath.ToSlash(subdir)); d != "." && d != "" {
		prefix = d + "/"
	}
	out := map[string]string{}
	for p, content := range all {
		if strings.HasPrefix(p, prefix) {
			out[strings.TrimPrefix(p, prefix)] = content
		}
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// ErrNoCapture is returned by Start for a job whose key was never captured.
var ErrNoCapture = errors.New("replay: no capture for this job")

// Executor replays captures from Dir.
type Executor struct {
	Dir   string
	Files FilesAt

	mu      sync.Mutex
	started []Key
}

var _ jobs.Executor = (*Executor)(nil)

// Start replays the capture of the spec's key: its lines go to sink in order, from another goroutine (as a
// real job's would), and Wait returns the captured end.
func (e *Executor) Start(ctx context.Context, spec jobs.Spec, sink jobs.Sink) (jobs.Handle, error) {
	key, err := KeyOf(spec, e.Files)
	if err != nil {
		return nil, err
	}
	file := filepath.Join(e.Dir, key.File())
	data, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s (looked for %s; record it with `make golden`)", ErrNoCapture, key, file)
	}
	if err != nil {
		return nil, err
	}
	var c Capture
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("replay: %s: %w", file, err)
	}
	e.mu.Lock()
	e.started = append(e.started, key)
	e.mu.Unlock()
	h := &handle{id: "replay-" + spec.RunID, done: make(chan struct{}), cancel: make(chan struct{}), collect: spec.Collect}
	go h.play(c, sink)
	return h, nil
}

// Attach finds nothing: a replayed job, like a local process, ends with the process that started it.
func (e *Executor) Attach(context.Context, string, jobs.Sink) (jobs.Handle, error) {
	return nil, jobs.ErrGone
}

// Started are the keys of the jobs replayed so far, in order.
func (e *Executor) Started() []Key {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Key(nil), e.started...)
}

type handle struct {
	id     string
	done   chan struct{}
	cancel chan struct{}
	once   sync.Once
	result jobs.Result
	// collect is the spec's Collect: a capture has output lines, no files.
	collect []string
}

func (h *handle) play(c Capture, sink jobs.Sink) {
	defer close(h.done)
	for _, l := range c.Lines {
		select {
		case <-h.cancel:
			h.result = jobs.Result{ExitCode: -1, Reason: jobs.ReasonCancelled}
			return
		default:
		}
		sink(jobs.Line{Stream: l.Stream, Text: l.Text})
	}
	h.result = jobs.Result{ExitCode: c.ExitCode, Reason: c.Reason}
	for _, p := range h.collect {
		content, ok := c.Artifacts[p]
		if !ok {
			h.result.ArtifactErrors = mergeErrors(h.result.ArtifactErrors, jobs.NotCollected([]string{p}, "not collected: the captured job left no such file"))
			continue
		}
		if h.result.Artifacts == nil {
			h.result.Artifacts = map[string][]byte{}
		}
		h.result.Artifacts[p] = []byte(content)
	}
}

func mergeErrors(into, more map[string]string) map[string]string {
	if into == nil {
		into = map[string]string{}
	}
	for k, v := range more {
		into[k] = v
	}
	return into
}

func (h *handle) ID() string { return h.id }

func (h *handle) Wait(ctx context.Context) (jobs.Result, error) {
	select {
	case <-h.done:
		return h.result, nil
	case <-ctx.Done():
		return jobs.Result{}, ctx.Err()
	}
}

func (h *handle) Cancel(context.Context) error {
	h.once.Do(func() { close(h.cancel) })
	return nil
}

// Recorder runs jobs on a real executor, on the files of their commit written to a scratch directory, and
// writes what they printed and how they ended to Dir as captures. Recording the same key twice with another
// output fails: the output depends on something the key does not hold.
type Recorder struct {
	Dir     string
	Files   FilesAt
	Inner   jobs.Executor
	Scratch string // where the files are written (a temporary directory of the test)

	mu       sync.Mutex
	recorded map[Key]Capture
}

var _ jobs.Executor = (*Recorder)(nil)

// Start checks the commit's files out into Scratch and starts the job there on Inner.
func (r *Recorder) Start(ctx context.Context, spec jobs.Spec, sink jobs.Sink) (jobs.Handle, error) {
	key, err := KeyOf(spec, r.Files)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(r.Scratch, "capture-")
	if err != nil {
		return nil, err
	}
	files, _ := r.Files(spec.Source.SHA)
	if err := writeFiles(dir, files); err != nil {
		return nil, err
	}
	real := spec
	real.Source = jobs.Source{Dir: dir}
	if base := spec.Source.BaseSHA; base != "" {
		// The base commit's files beside the head's, as the executor checks them out (dbt parses them).
		baseDir, err := os.MkdirTemp(r.Scratch, "capture-base-")
		if err != nil {
			return nil, err
		}
		files, _ := r.Files(base)
		if err := writeFiles(baseDir, files); err != nil {
			return nil, err
		}
		real.Source.BaseDir = baseDir
	}
	c := &Capture{Key: key}
	var mu sync.Mutex
	inner, err := r.Inner.Start(ctx, real, func(l jobs.Line) {
		mu.Lock()
		c.Lines = append(c.Lines, Line{Stream: l.Stream, Text: l.Text})
		mu.Unlock()
		sink(l)
	})
	if err != nil {
		return nil, err
	}
	return &recording{Handle: inner, r: r, c: c, mu: &mu}, nil
}

func writeFiles(dir string, files map[string]string) error {
	for p, content := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func (r *Recorder) Attach(ctx context.Context, id string, sink jobs.Sink) (jobs.Handle, error) {
	return r.Inner.Attach(ctx, id, sink)
}

type recording struct {
	jobs.Handle
	r  *Recorder
	c  *Capture
	mu *sync.Mutex
}

// Wait waits for the real job and then writes its capture.
func (h *recording) Wait(ctx context.Context) (jobs.Result, error) {
	res, err := h.Handle.Wait(ctx)
	if err != nil {
		return res, err
	}
	h.mu.Lock()
	c := *h.c
	h.mu.Unlock()
	c.ExitCode, c.Reason = res.ExitCode, res.Reason
	for p, content := range res.Artifacts {
		if c.Artifacts == nil {
			c.Artifacts = map[string]string{}
		}
		c.Artifacts[p] = string(content)
	}
	if err := h.r.save(c); err != nil {
		return res, err
	}
	return res, nil
}

func (r *Recorder) save(c Capture) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.recorded == nil {
		r.recorded = map[Key]Capture{}
	}
	if old, ok := r.recorded[c.Key]; ok && !sameOutput(old, c) {
		return fmt.Errorf("replay: %s was recorded twice with different output: the output depends on more than its key", c.Key)
	}
	r.recorded[c.Key] = c
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(r.Dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(r.Dir, c.Key.File()), append(data, '\n'), 0o644)
}

// sameOutput compares what a replay would show; the lines' timing and the scratch paths are not compared.
func sameOutput(a, b Capture) bool {
	return a.ExitCode == b.ExitCode && a.Reason == b.Reason && len(a.Lines) == len(b.Lines)
}
