// Command planoverhead measures what `dagctl-bot plan` costs over the raw sqlmesh CLI on the same project.
//
// It copies a sqlmesh project (default examples/sqlmesh) to a temporary directory and runs, interleaved and in
// a rotating order, N times each:
//
//	raw     sqlmesh plan prod --explain --no-prompts --execution-time T       (the floor)
//	helper  python -c <dagctl's embedded plan helper> plan --env prod ...      (what a plan job runs)
//	bot     dagctl-bot plan --repo COPY --env prod --quiet ...                 (the CLI: job, parse, render)
//	import  python -c "import sqlmesh"                                          (interpreter start-up alone)
//
// Fairness: every run plans the same copy of the project (its .cache warmed by one discarded run of each
// variant first) against its own empty state, a DuckDB file that does not exist yet (EXAMPLE_DUCKDB_PATH):
// nothing is applied, so every run plans the same four new models and creates sqlmesh's state tables the same
// way. All variants get the environment a dagctl plan job gets (planner.SQLMesh.Env: no analytics, the CI
// console, 200 columns, no colour, unbuffered output). Output goes to pipes that are read and checked.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/dagctl/dagctl-bot/bench/internal/stats"
	"github.com/dagctl/dagctl-bot/internal/framework/sqlmesh/planner"
)

func main() {
	var (
		repo    = flag.String("repo", "examples/sqlmesh", "the sqlmesh project to plan (copied first)")
		sqlmesh = flag.String("sqlmesh", ".venv/bin/sqlmesh", "the pinned sqlmesh executable (python beside it)")
		bot     = flag.String("bot", "bin/dagctl-bot", "the built dagctl-bot (`make build`)")
		n       = flag.Int("n", 7, "measured runs of each variant")
		budget  = flag.Duration("max-duration", 10*time.Minute, "stop starting rounds after this long")
		timeout = flag.Duration("run-timeout", 2*time.Minute, "kill a single run after this long")
		when    = flag.String("execution-time", "2024-01-15", "sqlmesh's now, so that every run plans the same intervals")
	)
	flag.Parse()
	if err := run(*repo, *sqlmesh, *bot, *n, *budget, *timeout, *when); err != nil {
		fmt.Fprintln(os.Stderr, "planoverhead:", err)
		os.Exit(1)
	}
}

type variant struct {
	name  string
	argv  []string
	extra []string // environment on top of the common one
	check func(stdout []byte) error
}

func run(repo, sqlmesh, bot string, n int, budget, timeout time.Duration, when string) error {
	for _, p := range []*string{&repo, &sqlmesh, &bot} {
		abs, err := filepath.Abs(*p)
		if err != nil {
			return err
		}
		if _, err := os.Stat(abs); err != nil {
			return fmt.Errorf("%w (run `make tools build`)", err)
		}
		*p = abs
	}
	python := filepath.Join(filepath.Dir(sqlmesh), "python")
	work, err := os.MkdirTemp("", "dagctl-planoverhead-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	project := filepath.Join(work, "project")
	if err := copyProject(repo, project); err != nil {
		return err
	}

	hasResult := func(out []byte) error {
		if !bytes.Contains(out, []byte(planner.Marker+" ")) {
			return errors.New("no result line")
		}
		return nil
	}
	variants := []variant{
		{name: "raw", argv: []string{sqlmesh, "plan", "prod", "--explain", "--no-prompts", "--execution-time", when},
			check: func(out []byte) error {
				if !bytes.Contains(out, []byte("dagctl_example.orders")) {
					return errors.New("the plan does not name the example's models")
				}
				return nil
			}},
		{name: "helper", argv: []string{python, "-c", planner.HelperSource(), "plan", "--env", "prod", "--execution-time", when},
			check: hasResult},
		{name: "bot", argv: []string{bot, "plan", "--repo", project, "--env", "prod", "--quiet", "--execution-time", when},
			extra: []string{"DAGCTL_SQLMESH=" + sqlmesh, "DAGCTL_JOB_ENV=EXAMPLE_DUCKDB_PATH"},
			check: func(out []byte) error {
				if !bytes.Contains(out, []byte("Added (4)")) {
					return errors.New("the comment does not show the four added models")
				}
				return nil
			}},
		{name: "import", argv: []string{python, "-c", "import sqlmesh"}},
	}
	common := os.Environ()
	for k, v := range (planner.SQLMesh{}).Env() {
		common = append(common, k+"="+v)
	}

	runs := 0
	once := func(v variant) (time.Duration, error) {
		runs++
		state := filepath.Join(work, fmt.Sprintf("state-%d.duckdb", runs)) // does not exist: an empty state
		env := append(append(append([]string{}, common...), v.extra...), "EXAMPLE_DUCKDB_PATH="+state)
		d, out, err := timed(v.argv, project, env, timeout)
		if err == nil && v.check != nil {
			err = v.check(out)
		}
		if err != nil {
			return 0, fmt.Errorf("%s: %w\n%s", v.name, err, tail(out, 40))
		}
		return d, nil
	}

	fmt.Printf("warming up (one discarded run of each variant) ...\n")
	for _, v := range variants {
		if _, err := once(v); err != nil {
			return err
		}
	}
	samples := map[string][]time.Duration{}
	start := time.Now()
	for round := 0; round < n && time.Since(start) < budget; round++ {
		for i := range variants {
			v := variants[(round+i)%len(variants)] // rotate, so that no variant always runs after another
			d, err := once(v)
			if err != nil {
				return err
			}
			samples[v.name] = append(samples[v.name], d)
		}
		fmt.Printf("round %d/%d done (%s)\n", round+1, n, time.Since(start).Round(time.Second))
	}

	raw := stats.Summarize(samples["raw"])
	var rows [][]string
	for _, v := range variants {
		s := stats.Summarize(samples[v.name])
		rows = append(rows, []string{v.name, fmt.Sprint(s.N), stats.Ms(s.P50), stats.Ms(s.P90), stats.Ms(s.Min),
			stats.Ms(s.Max), fmt.Sprintf("%.2f", stats.Ratio(s.P50, raw.P50)), stats.Ms(s.P50 - raw.P50)})
	}
	fmt.Printf("\nplan of %s (empty state per run), %d CPUs (shared), %s\n\n", filepath.Base(repo), runtime.NumCPU(),
		time.Now().UTC().Format(time.RFC3339))
	fmt.Print(stats.Table([]string{"variant", "n", "median", "p90", "min", "max", "median / raw", "median − raw"}, rows))
	return nil
}

// timed runs argv in dir and returns its wall time from start to exit, and its combined output.
func timed(argv []string, dir string, env []string, timeout time.Duration) (time.Duration, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir, cmd.Env = dir, env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	return time.Since(start), out.Bytes(), err
}

// copyProject copies the project's files, leaving out what sqlmesh and DuckDB leave behind.
func copyProject(from, to string) error {
	return filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		if d.IsDir() {
			if rel == "logs" || rel == ".cache" {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		if strings.HasSuffix(rel, ".duckdb") || strings.HasSuffix(rel, ".wal") {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), data, 0o644)
	})
}

func tail(out []byte, lines int) string {
	l := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}
