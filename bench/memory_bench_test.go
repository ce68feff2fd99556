package bench

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/plan"
	"github.com/dagctl/dagctl-bot/internal/repoconfig"
	"github.com/dagctl/dagctl-bot/internal/serverconfig"
	"github.com/dagctl/dagctl-bot/internal/testutil"
)

var floodMiB = flag.Int("bench.flood.mib", 1024, "BenchmarkPlanPrinting1GB: MiB each plan job prints before sqlmesh plans")

// BenchmarkPlanPrinting1GB runs the bot as served (server.New + Start, the local executor, the real sqlmesh) on
// a PR whose plan jobs first print bench.flood.mib MiB as fast as they can (a setup step: half of it one line
// without a newline, half in 1,000-byte lines), and reports this process's peak RSS (VmHWM, the bot and the fake
// forge; the jobs are child processes) and that the plans still completed with the tail of their logs.
// Goal: peak RSS under 200 MB.
func BenchmarkPlanPrinting1GB(b *testing.B) {
	half := *floodMiB << 19
	flood := fmt.Sprintf("head -c %d /dev/zero | tr '\\0' x; echo\nyes \"$(head -c 999 /dev/zero | tr '\\0' y)\" | head -c %d; echo\n", half, half)
	data, err := os.ReadFile(filepath.Join(testutil.RepoRoot(), "examples", "sqlmesh", ".dagctl", "config.yaml"))
	require.NoError(b, err)
	config := strings.Replace(string(data), "\njob:\n", "\njob:\n  setup:\n    - sh flood.sh\n", 1)
	require.NotEqual(b, string(data), config)
	w := newBenchWorldWith(b, map[string]string{repoconfig.Path: config, "flood.sh": flood})
	for i := 0; i < b.N; i++ {
		srv, hook := w.startBotWith(b, fmt.Sprint("flood-", i), func(cfg *serverconfig.Config) {
			allow, err := repoconfig.ParseSetupAllowlist("sh flood.sh")
			require.NoError(b, err)
			cfg.JobSetup = allow
		})
		require.NoError(b, os.WriteFile("/proc/self/clear_refs", []byte("5"), 0))
		before := vmHWM(b)
		start := time.Now()
		row := w.onePR(b, srv, hook.URL)
		took := time.Since(start)
		peak := vmHWM(b)

		ctx := context.Background()
		plans, err := srv.Store().ListPlansByPR(ctx, "github", w.Repo.FullName(), row.pr)
		require.NoError(b, err)
		require.NotEmpty(b, plans)
		for _, p := range plans {
			require.Equal(b, plan.StatusReady, p.Status, "plan %s: %s", p.Environment, p.Error)
			runs, err := srv.Store().ListRuns(ctx, p.ID)
			require.NoError(b, err)
			log, err := srv.Store().RunLog(ctx, runs[len(runs)-1].ID)
			require.NoError(b, err)
			var marker string
			for _, l := range log {
				if strings.Contains(l.Text, "lines) dropped") {
					marker = l.Text
				}
			}
			last := log[len(log)-1].Text
			fmt.Printf("plan %s: %s; its log: %d lines, %q, ends %.60q\n", p.Environment, p.Status, len(log), marker, last)
		}
		hook.Close()
		closeCtx, cancel := context.WithTimeout(ctx, time.Minute)
		require.NoError(b, srv.Close(closeCtx))
		cancel()
		fmt.Printf("%d plan jobs printed %d MiB each in %s; peak RSS %d MiB (%d MiB before the PR)\n",
			len(plans), *floodMiB, took.Round(time.Second), peak>>20, before>>20)
		b.ReportMetric(float64(peak>>20), "peak-RSS-MiB")
	}
}

func vmHWM(b *testing.B) int64 {
	data, err := os.ReadFile("/proc/self/status")
	require.NoError(b, err)
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		var kb int64
		if n, _ := fmt.Sscanf(sc.Text(), "VmHWM: %d kB", &kb); n == 1 {
			return kb << 10
		}
	}
	b.Fatal("no VmHWM")
	return 0
}
