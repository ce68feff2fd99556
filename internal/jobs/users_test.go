//go:build linux

package jobs

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/dagctl/dagctl-bot/internal/testutil"
)

// The uids of this package's tests: a block of 21000-21899 that no other test process on the machine uses (no
// other package's tests use the range).
var testFirstUID = uint32(testutil.UIDBlock(21000, 100, 9))

const testJobGroup = 21999

func testUsers(n uint32) *Users { return &Users{First: testFirstUID, Last: testFirstUID + n - 1} }

// requireCanSwitchUsers fails the test where the bot could not isolate jobs: the tests run as root.
func requireCanSwitchUsers(t *testing.T) {
	t.Helper()
	require.NoError(t, CanSwitchUsers(), "these tests need to run as root (they do in `make test`)")
}

func newIsolatedLocal(t *testing.T, users *Users) (*Local, string) {
	t.Helper()
	requireCanSwitchUsers(t)
	workDir := filepath.Join(testutil.TempDirForJobUsers(t), "work")
	l, err := NewLocal(LocalOptions{WorkDir: workDir, Users: users})
	require.NoError(t, err)
	require.True(t, l.Isolated())
	return l, workDir
}

// startJob starts a job and returns its handle and output.
func startJob(t *testing.T, l *Local, spec Spec) (Handle, *recorder) {
	t.Helper()
	rec := newRecorder()
	h, err := l.Start(context.Background(), spec, rec.sink)
	require.NoError(t, err)
	t.Cleanup(func() { _ = h.Cancel(context.Background()) })
	return h, rec
}

// firstLine waits for the first stdout line that starts with prefix and returns the rest.
func firstLine(t *testing.T, rec *recorder, prefix string) string {
	t.Helper()
	line := rec.waitFor(t, func(l Line) bool { return l.Stream == "stdout" && strings.HasPrefix(l.Text, prefix) })
	return strings.TrimPrefix(line.Text, prefix)
}

// botDatabase is a file like the bot's database: the bot's, in a directory only the bot may enter.
func botDatabase(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "state")
	require.NoError(t, os.Mkdir(dir, 0o700))
	path := filepath.Join(dir, "dagctl.db")
	require.NoError(t, os.WriteFile(path, []byte("SQLite format 3\x00 app credentials"), 0o644))
	return path
}

func TestIsolatedJobCannotOpenTheBotsDatabase(t *testing.T) {
	db := botDatabase(t)
	l, workDir := newIsolatedLocal(t, testUsers(2))

	res, rec := runJob(t, l, shellJob(testutil.TempDirForJobUsers(t), `id -u; cat "`+db+`" && echo READ THE DATABASE; ls "`+filepath.Dir(db)+`"; exit 0`))

	require.True(t, res.Succeeded(), "%+v: %s", res, rec.joined())
	out := rec.joined()
	assert.NotContains(t, out, "READ THE DATABASE")
	assert.NotContains(t, out, "app credentials")
	assert.Contains(t, out, "Permission denied")
	assert.NotEqual(t, "0", rec.texts("stdout")[0], "the job is not root")
	requireScratchRemoved(t, workDir)
}

func TestIsolatedJobsCannotReadEachOthersEnvironment(t *testing.T) {
	const applySecret = "warehouse-admin-password-of-the-apply"
	l, _ := newIsolatedLocal(t, testUsers(2))
	apply := shellJob(testutil.TempDirForJobUsers(t), `echo "pid $$"; echo "uid $(id -u)"; exec sleep 1000`)
	apply.RunID = "apply"
	apply.Env["WAREHOUSE_PASSWORD"] = applySecret
	_, applyRec := startJob(t, l, apply)
	pid := firstLine(t, applyRec, "pid ")
	applyUID := firstLine(t, applyRec, "uid ")

	plan := shellJob(testutil.TempDirForJobUsers(t), `echo "uid $(id -u)"
		tr '\0' '\n' < /proc/`+pid+`/environ
		ls /proc/`+pid+`/cwd/
		head -c 1000 /proc/`+pid+`/mem
		exit 0`)
	plan.RunID = "plan"
	res, rec := runJob(t, l, plan)

	require.True(t, res.Succeeded(), "%+v: %s", res, rec.joined())
	out := rec.joined()
	assert.NotContains(t, out, applySecret)
	assert.NotContains(t, out, "WAREHOUSE_PASSWORD")
	assert.Contains(t, out, "/environ: Permission denied")
	assert.NotEqual(t, applyUID, firstLine(t, rec, "uid "), "the plan runs as another user than the apply")
}

func TestIsolatedJobsRunningTogetherHaveUIDsOfTheirOwn(t *testing.T) {
	l, _ := newIsolatedLocal(t, testUsers(3))
	var handles []Handle
	uids := map[string]bool{}
	for i := range 3 {
		spec := shellJob(testutil.TempDirForJobUsers(t), `echo "ids $(id -u) $(id -g) $(id -G)"; exec sleep 1000`)
		spec.RunID = fmt.Sprintf("together-%d", i)
		h, rec := startJob(t, l, spec)
		handles = append(handles, h)
		ids := strings.Fields(firstLine(t, rec, "ids "))
		require.Len(t, ids, 3, "uid, gid and the one group: %v", ids)
		uid, err := strconv.Atoi(ids[0])
		require.NoError(t, err)
		assert.GreaterOrEqual(t, uid, int(testFirstUID))
		assert.LessOrEqual(t, uid, int(testFirstUID)+2)
		assert.Equal(t, ids[0], ids[1], "the job's group is its own")
		assert.Equal(t, ids[0], ids[2], "and it has no other group (none of the bot's)")
		uids[ids[0]] = true
	}
	assert.Len(t, uids, 3, "no two running jobs share a uid")

	spec := shellJob(testutil.TempDirForJobUsers(t), "true")
	spec.RunID = "one-too-many"
	_, err := l.Start(context.Background(), spec, nil)
	assert.ErrorIs(t, err, errNoFreeUser)

	for _, h := range handles {
		require.NoError(t, h.Cancel(context.Background()))
	}
	res, rec := runJob(t, l, spec)
	assert.True(t, res.Succeeded(), "ended jobs give their uid back: %+v %s", res, rec.joined())
}

func TestIsolatedJobOwnsItsCheckoutHomeAndTemporaryFiles(t *testing.T) {
	repo := newGitRepo(t)
	sha := commitFiles(t, repo, map[string]string{"project/a.txt": "a\n"}, "a")
	l, workDir := newIsolatedLocal(t, testUsers(1))

	res, rec := runJob(t, l, Spec{
		RunID:  "owns",
		Source: Source{CloneURL: repo, SHA: sha},
		Subdir: "project",
		Command: []string{"sh", "-c", `set -e
			echo more >> a.txt; mkdir -p .cache; touch "$HOME/h" "$TMPDIR/t"
			echo "owner $(stat -c %u a.txt) $(stat -c %u "$HOME") $(stat -c %u "$TMPDIR") me $(id -u)"
			echo "umask $(umask)"
			case "$HOME$TMPDIR" in "$PWD"*) echo inside;; esac`},
		Env: plainEnv(),
	})

	require.True(t, res.Succeeded(), "%+v: %s", res, rec.joined())
	owners := strings.Fields(firstLine(t, rec, "owner "))
	require.Len(t, owners, 5)
	for _, o := range owners[:3] {
		assert.Equal(t, owners[4], o)
	}
	assert.Equal(t, "0007", firstLine(t, rec, "umask "), "what the job writes elsewhere is not the other jobs'")
	requireScratchRemoved(t, workDir)
}

func TestIsolatedJobLeavesNothingRunning(t *testing.T) {
	l, workDir := newIsolatedLocal(t, testUsers(1))

	// setsid leaves the job's process group, the way a daemon would; the job ends once it has.
	res, rec := runJob(t, l, shellJob(testutil.TempDirForJobUsers(t), `setsid sleep 1000 </dev/null >/dev/null 2>&1 &
		pid=$!
		until [ "$(cut -d' ' -f6 /proc/$pid/stat)" = "$pid" ]; do sleep 0.01; done
		echo $pid`))

	require.True(t, res.Succeeded(), rec.joined())
	pid, err := strconv.Atoi(rec.texts("stdout")[0])
	require.NoError(t, err)
	assert.True(t, processGone(t, pid), "a process that left the job's process group outlived the job")
	requireScratchRemoved(t, workDir)
}

func TestIsolatedJobDoesNotShareItsUIDWithALeftover(t *testing.T) {
	requireCanSwitchUsers(t)
	// What a crashed bot's job left running as the uid the next job gets.
	leftover := exec.Command("sleep", "1000")
	leftover.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: testFirstUID, Gid: testFirstUID}}
	require.NoError(t, leftover.Start())
	t.Cleanup(func() { _ = leftover.Process.Kill(); _ = leftover.Wait() })
	l, _ := newIsolatedLocal(t, testUsers(1))

	res, rec := runJob(t, l, shellJob(testutil.TempDirForJobUsers(t), `id -u`))

	require.True(t, res.Succeeded(), rec.joined())
	assert.Equal(t, []string{strconv.Itoa(int(testFirstUID))}, rec.texts("stdout"))
	assert.True(t, processGone(t, leftover.Process.Pid), "the job shared its uid with a process it did not start")
}

func TestIsolatedJobsGetNoCapabilities(t *testing.T) {
	l, _ := newIsolatedLocal(t, testUsers(1))

	res, rec := runJob(t, l, shellJob(testutil.TempDirForJobUsers(t), `grep -E '^(CapInh|CapEff|CapPrm|CapBnd|CapAmb|NoNewPrivs):' /proc/self/status`))

	require.True(t, res.Succeeded(), rec.joined())
	lines := rec.texts("stdout")
	require.Len(t, lines, 6)
	for _, line := range lines {
		name, value, _ := strings.Cut(line, ":")
		want := "0000000000000000"
		if name == "NoNewPrivs" {
			want = "1"
		}
		assert.Equal(t, want, strings.TrimSpace(value), name)
	}
}

func TestIsolatedJobsShareFilesOnlyThroughTheJobGroup(t *testing.T) {
	users := testUsers(2)
	users.Group = testJobGroup
	l, _ := newIsolatedLocal(t, users)
	shared := filepath.Join(testutil.TempDirForJobUsers(t), "warehouse")
	require.NoError(t, os.Mkdir(shared, 0o770))
	require.NoError(t, os.Chown(shared, 0, testJobGroup))
	require.NoError(t, os.Chmod(shared, 0o2770|os.ModeSetgid))
	file := filepath.Join(shared, "data.duckdb")
	dir := testutil.TempDirForJobUsers(t)

	first := shellJob(dir, `echo first > "`+file+`" && stat -c '%a %g' "`+file+`"`)
	first.RunID = "first"
	res, rec := runJob(t, l, first)
	require.True(t, res.Succeeded(), rec.joined())
	assert.Equal(t, []string{"660 " + strconv.Itoa(testJobGroup)}, rec.texts("stdout"))

	second := shellJob(dir, `echo second >> "`+file+`" && cat "`+file+`"`)
	second.RunID = "second"
	res, rec = runJob(t, l, second)
	require.True(t, res.Succeeded(), rec.joined())
	assert.Equal(t, []string{"first", "second"}, rec.texts("stdout"))
}

func TestNewLocalRefusesAWorkDirectoryJobsCannotReach(t *testing.T) {
	requireCanSwitchUsers(t)
	private := filepath.Dir(t.TempDir()) // the test's temporary directory: 0700, the bot's

	_, err := NewLocal(LocalOptions{WorkDir: filepath.Join(private, "001", "work"), Users: testUsers(1)})

	require.Error(t, err)
	assert.Contains(t, err.Error(), private+" has mode 0700")
}

func TestNewLocalRefusesRangesWithTheBotsOrRootsIdentity(t *testing.T) {
	requireCanSwitchUsers(t)
	for name, users := range map[string]Users{
		"root":             {First: 0, Last: 10},
		"empty":            {First: 30000, Last: 29999},
		"the bot's uid":    {First: uint32(os.Geteuid()), Last: uint32(os.Geteuid()) + 5},
		"group in range":   {First: 30000, Last: 30010, Group: 30005},
		"past the largest": {First: 30000, Last: 1<<32 - 1},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := NewLocal(LocalOptions{WorkDir: filepath.Join(testutil.TempDirForJobUsers(t), "work"), Users: &users})
			assert.Error(t, err)
		})
	}
}

func TestMissingCapabilitiesNamesWhatTheBotLacks(t *testing.T) {
	all := uint64(0)
	for _, c := range switchCapabilities {
		all |= 1 << c.bit
	}
	assert.NoError(t, missingCapabilities(all))
	assert.NoError(t, missingCapabilities(^uint64(0)))

	err := missingCapabilities(all &^ (1 << unix.CAP_SETUID) &^ (1 << unix.CAP_KILL))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "without CAP_KILL, CAP_SETUID")
	assert.ErrorContains(t, missingCapabilities(0), "CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_KILL, CAP_SETGID, CAP_SETUID")
}

func TestSQLMeshModelCannotReadTheBotsDatabaseOrARunningApply(t *testing.T) {
	const applySecret = "warehouse-admin-password-of-the-apply"
	sqlmesh := testutil.SQLMeshForJobUsers(t)
	require.NoError(t, ReachableByJobs(filepath.Join(filepath.Dir(sqlmesh), "python"), true))
	db := botDatabase(t)
	l, workDir := newIsolatedLocal(t, testUsers(2))
	apply := shellJob(testutil.TempDirForJobUsers(t), `echo "pid $$"; exec sleep 1000`)
	apply.RunID = "apply"
	apply.Env["WAREHOUSE_PASSWORD"] = applySecret
	applyJob, applyRec := startJob(t, l, apply)
	pid := firstLine(t, applyRec, "pid ")

	repo := newGitRepo(t)
	copyDir(t, filepath.Join("testdata", "sqlmesh_env_probe"), filepath.Join(repo, "warehouse"))
	sha := commitFiles(t, repo, map[string]string{"warehouse/models/snoop.py": snoopModel}, "a python model that snoops")
	env := map[string]string{"PATH": "/usr/bin:/bin", "TERM": "dumb", "NO_COLOR": "1", "PYTHONUNBUFFERED": "1",
		"SNOOP_FILES": db + "," + db + "-wal," + "/proc/" + pid + "/environ"}
	res, rec := runJob(t, l, Spec{
		RunID:   "sqlmesh-plan",
		Kind:    KindPlan,
		Source:  Source{CloneURL: repo, SHA: sha},
		Subdir:  "warehouse",
		Command: []string{sqlmesh, "plan", "dev", "--explain", "--no-prompts"},
		Env:     env,
	})

	require.True(t, res.Succeeded(), "%+v: %s", res, rec.joined())
	out := rec.joined()
	assert.Contains(t, out, "SNOOP "+db+": PermissionError")
	assert.Contains(t, out, "SNOOP /proc/"+pid+"/environ: PermissionError")
	assert.NotContains(t, out, "SNOOP READ")
	assert.NotContains(t, out, applySecret)
	assert.Contains(t, out, "probe__dev.snoop", "the plan itself ran")
	require.NoError(t, applyJob.Cancel(context.Background()))
	requireScratchRemoved(t, workDir)
}

// snoopModel is a Python model whose module code, run when sqlmesh loads the project, tries to read the files
// named in SNOOP_FILES.
const snoopModel = `import os

import pandas as pd
from sqlmesh import model

for path in os.environ["SNOOP_FILES"].split(","):
    try:
        with open(path, "rb") as f:
            print(f"SNOOP READ {path}: {f.read()[:200]!r}", flush=True)
    except OSError as e:
        print(f"SNOOP {path}: {type(e).__name__}", flush=True)


@model("probe.snoop", columns={"id": "int"}, kind="FULL")
def execute(context, start, end, execution_time, **kwargs):
    return pd.DataFrame([{"id": 1}])
`
