package server_test

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/forgetest/e2e"
	"github.com/dagctl/dagctl-bot/internal/server"
	"github.com/dagctl/dagctl-bot/internal/serverconfig"
	"github.com/dagctl/dagctl-bot/internal/testutil"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// snoopModel is a python model whose module, run when sqlmesh loads the PR's project, tries to read the bot's
// database (the GitHub App's key, the log-link key), to forge a delivery next to it, and to read the bot's
// environment. It prints what it got, never the content.
func snoopModel(dbPath string) string {
	var paths []string
	for _, p := range []string{dbPath, dbPath + "-wal", dbPath + "-shm"} {
		paths = append(paths, strconv.Quote(p))
	}
	return `import os
import sys
import typing as t
from datetime import datetime

import pandas as pd
from sqlmesh import ExecutionContext, model

for path in [` + strings.Join(paths, ", ") + `, "/proc/%d/environ" % os.getppid()]:
    try:
        with open(path, "rb") as f:
            print(f"snoop: {path}: READ {len(f.read())} bytes", file=sys.stderr, flush=True)
    except OSError as e:
        print(f"snoop: {path}: {type(e).__name__}", file=sys.stderr, flush=True)
try:
    with open(os.path.join(os.path.dirname(` + strconv.Quote(dbPath) + `), "forged-delivery"), "w") as f:
        print("snoop: WROTE beside the database", file=sys.stderr, flush=True)
except OSError as e:
    print(f"snoop: writing beside the database: {type(e).__name__}", file=sys.stderr, flush=True)


@model("dagctl_example.snoop", kind="FULL", columns={"one": "int"})
def execute(context: ExecutionContext, start: datetime, end: datetime, execution_time: datetime, **kwargs: t.Any) -> pd.DataFrame:
    return pd.DataFrame([{"one": 1}])
`
}

// planLogOfSnoopingPR opens a PR with the snooping model and returns the log of its prod plan.
func planLogOfSnoopingPR(t *testing.T, w *world) string {
	t.Helper()
	head := w.PR(1, "snoop", "mallory", map[string]string{"models/snoop.py": snoopModel(w.dbPath)})
	w.SetPermission("mallory", vcs.PermissionWrite)
	w.send(w.PREvent(vcs.PROpened, 1))
	check, ok := w.Status("dagctl/plan: prod", head)
	require.True(t, ok, "checks: %v", w.Statuses())
	log := runLog(t, w, check)
	require.Contains(t, log, "snoop: "+w.dbPath+": ", "the PR's model ran")
	return log
}

func readyz(t *testing.T, w *world) string {
	t.Helper()
	resp, err := w.http.Client().Get(w.http.URL + "/readyz")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

func TestAPRsCodeCannotReachTheBotsDatabase(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		require.True(t, isolatedJobs(), "the end-to-end tests run as root, where jobs run as users of their own")
		w := newWorld(t, forge, worldOptions{})

		log := planLogOfSnoopingPR(t, w)

		for _, path := range []string{w.dbPath, w.dbPath + "-wal", w.dbPath + "-shm"} {
			assert.Contains(t, log, "snoop: "+path+": PermissionError", path)
		}
		assert.Regexp(t, `snoop: /proc/\d+/environ: PermissionError`, log, "the bot's environment")
		assert.Contains(t, log, "snoop: writing beside the database: PermissionError")
		assert.NotContains(t, log, "READ")
		assert.NotContains(t, log, "WROTE")
		info, err := os.Stat(filepath.Dir(w.dbPath))
		require.NoError(t, err)
		assert.Equal(t, fs.FileMode(0o700), info.Mode().Perm(), "the database's directory is the bot's alone")
		assert.Contains(t, readyz(t, w), fmt.Sprintf("jobs: isolated: each running job has a uid of its own (uids %d-%d, group %d)", worldFirstUID, worldLastUID, worldJobsGroup))
		assert.Contains(t, w.logLines.String(), `msg="jobs are isolated: each running job has a uid of its own"`)
	})
}

func TestJobsThatRunAsTheBotAreAnnouncedLoudly(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		w := newWorld(t, forge, worldOptions{configure: func(_ *world, cfg *serverconfig.Config, _ *server.Options) {
			cfg.JobUsers = serverconfig.JobUsers{Mode: serverconfig.JobUsersOff}
		}})

		log := planLogOfSnoopingPR(t, w)

		assert.Contains(t, w.logLines.String(), `level=WARN msg="jobs are not isolated: they run as the bot's own user, and pull-request code can read and write the bot's database`)
		assert.Contains(t, w.logLines.String(), `reason="DAGCTL_JOB_UIDS=off"`)
		ready := readyz(t, w)
		assert.True(t, strings.HasPrefix(ready, "ready\n"), ready)
		assert.Contains(t, ready, "jobs: WARNING: not isolated, they run as the bot's own user (DAGCTL_JOB_UIDS=off)")
		// What the warning says is true: the same model reads the database.
		assert.Contains(t, log, "snoop: "+w.dbPath+": READ")
	})
}

// startBot starts a bot with jobs of their own users on the given database and work directory.
func startBot(t *testing.T, dbPath, workDir string) (*server.Server, error) {
	t.Helper()
	require.True(t, isolatedJobs(), "the tests run as root, where jobs run as users of their own")
	srv, err := server.New(context.Background(), serverconfig.Config{
		DB:       dbPath,
		Executor: serverconfig.ExecutorLocal,
		SQLMesh:  testutil.SQLMeshForJobUsers(t),
		WorkDir:  workDir,
		JobUsers: serverconfig.JobUsers{Mode: serverconfig.JobUsersRange, First: worldFirstUID, Last: worldLastUID},
	}, server.Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err == nil {
		t.Cleanup(func() { _ = srv.Close(context.Background()) })
	}
	return srv, err
}

func TestTheDatabaseGetsADirectoryOfItsOwn(t *testing.T) {
	root := testutil.TempDirForJobUsers(t)
	work := filepath.Join(root, "work")

	t.Run("a missing directory is created private", func(t *testing.T) {
		dir := filepath.Join(root, "new", "state")
		_, err := startBot(t, filepath.Join(dir, "dagctl.db"), work)
		require.NoError(t, err)
		info, err := os.Stat(dir)
		require.NoError(t, err)
		assert.Equal(t, fs.FileMode(0o700), info.Mode().Perm())
	})

	t.Run("a directory holding only the database is made private", func(t *testing.T) {
		dir := filepath.Join(root, "open")
		require.NoError(t, os.Mkdir(dir, 0o755))
		db := filepath.Join(dir, "dagctl.db")
		srv, err := startBot(t, db, work)
		require.NoError(t, err)
		require.NoError(t, srv.Close(context.Background()))
		require.NoError(t, os.Chmod(dir, 0o755))

		_, err = startBot(t, db, work) // the database and its -wal and -shm are there now
		require.NoError(t, err)
		info, err := os.Stat(dir)
		require.NoError(t, err)
		assert.Equal(t, fs.FileMode(0o700), info.Mode().Perm())
	})

	t.Run("a shared directory is refused", func(t *testing.T) {
		dir := filepath.Join(root, "shared")
		require.NoError(t, os.Mkdir(dir, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "README.md"), []byte("someone else's\n"), 0o644))

		_, err := startBot(t, filepath.Join(dir, "dagctl.db"), work)

		require.Error(t, err)
		assert.Contains(t, err.Error(), fmt.Sprintf("the database's directory %s is open to other users (mode 0755) and holds more than the database", dir))
		assert.Contains(t, err.Error(), "DAGCTL_DB="+filepath.Join(dir, "dagctl-data", "dagctl.db"))
		info, err := os.Stat(dir)
		require.NoError(t, err)
		assert.Equal(t, fs.FileMode(0o755), info.Mode().Perm(), "left as it was")
		_, err = os.Stat(filepath.Join(dir, "dagctl.db"))
		assert.ErrorIs(t, err, fs.ErrNotExist, "the database was not opened")
	})

	t.Run("the jobs' work directory must not be inside", func(t *testing.T) {
		dir := filepath.Join(root, "both")
		_, err := startBot(t, filepath.Join(dir, "dagctl.db"), filepath.Join(dir, "work"))

		require.Error(t, err)
		assert.Contains(t, err.Error(), filepath.Join(dir, "work")+" is inside the database's directory "+dir)
	})

	t.Run("a directory every user could replace is refused", func(t *testing.T) {
		open := filepath.Join(root, "world-writable")
		require.NoError(t, os.Mkdir(open, 0o777))
		require.NoError(t, os.Chmod(open, 0o777))

		_, err := startBot(t, filepath.Join(open, "state", "dagctl.db"), work)

		require.Error(t, err)
		assert.Contains(t, err.Error(), open+", above the database's directory, is writable by every user")
	})
}

func TestAnExplicitJobUIDRangeTheBotCannotUseIsAnError(t *testing.T) {
	root := testutil.TempDirForJobUsers(t)
	private := filepath.Join(t.TempDir(), "private")
	require.NoError(t, os.Mkdir(private, 0o700))
	sqlmesh := filepath.Join(private, "venv", "bin", "sqlmesh")
	require.NoError(t, os.MkdirAll(filepath.Dir(sqlmesh), 0o755))
	for _, name := range []string{"sqlmesh", "python"} {
		require.NoError(t, os.WriteFile(filepath.Join(filepath.Dir(sqlmesh), name), []byte("#!/bin/sh\n"), 0o755))
	}
	cfg := serverconfig.Config{
		DB: filepath.Join(root, "bot", "dagctl.db"), Executor: serverconfig.ExecutorLocal, SQLMesh: sqlmesh,
		WorkDir:  filepath.Join(root, "work"),
		JobUsers: serverconfig.JobUsers{Mode: serverconfig.JobUsersRange, First: worldFirstUID, Last: worldLastUID},
	}
	opts := server.Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil))}

	_, err := server.New(context.Background(), cfg, opts)

	require.Error(t, err)
	assert.Contains(t, err.Error(), fmt.Sprintf("DAGCTL_JOB_UIDS=%d-%d", worldFirstUID, worldLastUID)+": jobs run as other users and cannot reach "+filepath.Join(filepath.Dir(sqlmesh), "python"))

	// auto runs the jobs as the bot's user instead, and says so.
	var logs strings.Builder
	cfg.JobUsers = serverconfig.JobUsers{Mode: serverconfig.JobUsersAuto}
	opts.Log = slog.New(slog.NewTextHandler(&logs, nil))
	srv, err := server.New(context.Background(), cfg, opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close(context.Background()) })
	assert.Contains(t, logs.String(), `level=WARN msg="jobs are not isolated`)
	assert.Contains(t, logs.String(), "cannot reach "+filepath.Join(filepath.Dir(sqlmesh), "python"))
}
