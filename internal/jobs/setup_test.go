//go:build linux

package jobs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Setup steps run in the job's checkout, as the job's user, with its environment and masking, before the
// command; each step's command line is logged first.
func TestLocalRunsSetupStepsBeforeTheCommand(t *testing.T) {
	const token = "ghs_setupleakedit"
	repo := newGitRepo(t)
	sha := commitFiles(t, repo, map[string]string{"project/requirements.txt": "duckdb\n"}, "a")
	l, workDir := newIsolatedLocal(t, testUsers(1))
	env := plainEnv()
	env["FOO"] = "from-the-spec"

	res, rec := runJob(t, l, Spec{
		RunID:  "setup",
		Source: Source{CloneURL: repo, SHA: sha, Token: token},
		Subdir: "project",
		Setup: [][]string{
			{"sh", "-c", `id -u > setup.uid; echo "$FOO $HOME" > setup.env; echo "installing $(cat requirements.txt) with ` + token + `"`},
			{"touch", "made-by-setup"},
		},
		Command: []string{"sh", "-c", `test -f made-by-setup && echo "uids $(cat setup.uid) $(id -u)" && echo "env $(cat setup.env) / $FOO $HOME"`},
		Env:     env,
	})

	require.True(t, res.Succeeded(), "%+v: %s", res, rec.joined())
	texts := rec.texts("")
	i1 := indexOf(texts, `dagctl: setup 1/2: sh -c id -u > setup.uid; echo "$FOO $HOME" > setup.env; echo "installing $(cat requirements.txt) with ***"`)
	i2 := indexOf(texts, "dagctl: setup 2/2: touch made-by-setup")
	require.True(t, i1 >= 0 && i2 > i1, "each step's command line is logged, masked, in order: %q", texts)
	assert.Contains(t, rec.texts("stdout"), "installing duckdb with ***", "a step's output is masked as the command's")
	uids := strings.Fields(firstLine(t, rec, "uids "))
	require.Len(t, uids, 2)
	assert.Equal(t, uids[0], uids[1], "the steps run as the job's user")
	assert.NotEqual(t, "0", uids[0])
	before, after, _ := strings.Cut(firstLine(t, rec, "env "), " / ")
	assert.Equal(t, after, before, "the same environment, home included")
	assert.True(t, strings.HasPrefix(before, "from-the-spec "+workDir), before)
	requireScratchRemoved(t, workDir)
}

func TestLocalFailingSetupStepEndsTheJob(t *testing.T) {
	dir := t.TempDir()
	l, workDir := newTestLocal(t, 0)
	spec := shellJob(dir, "touch command-ran")
	spec.Setup = [][]string{{"true"}, {"sh", "-c", "echo broke >&2; exit 3"}, {"touch", "step-3-ran"}}

	res, rec := runJob(t, l, spec)

	assert.Equal(t, 3, res.ExitCode)
	assert.Equal(t, "setup step 2 failed", res.Reason)
	assert.False(t, res.Succeeded())
	assert.Contains(t, rec.texts("stderr"), "dagctl: setup step 2 (sh) failed (exit code 3, no other reason); the job stops here")
	for _, name := range []string{"command-ran", "step-3-ran"} {
		_, err := os.Stat(filepath.Join(dir, name))
		assert.True(t, os.IsNotExist(err), "%s: nothing runs after a failed step", name)
	}
	requireScratchRemoved(t, workDir)

	spec.Setup = [][]string{{"no-such-setup-command"}}
	res, rec = runJob(t, l, spec)
	assert.Equal(t, "setup step 1 failed", res.Reason)
	assert.Contains(t, rec.joined(), "no-such-setup-command: not found on the job's PATH")
}

func TestLocalTimeoutInASetupStepIsATimeout(t *testing.T) {
	l, _ := newTestLocal(t, 100*time.Millisecond)
	spec := shellJob(t.TempDir(), "echo never")
	spec.Setup = [][]string{{"sleep", "600"}}
	spec.Timeout = 200 * time.Millisecond

	res, rec := runJob(t, l, spec)

	assert.Equal(t, ReasonTimeout, res.Reason, rec.joined())
	assert.NotContains(t, rec.texts("stdout"), "never")
}

func TestLocalRefusesAnEmptySetupStep(t *testing.T) {
	l, _ := newTestLocal(t, 0)
	spec := shellJob(t.TempDir(), "true")
	spec.Setup = [][]string{{}}
	_, err := l.Start(t.Context(), spec, nil)
	assert.ErrorContains(t, err, "empty setup step")
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}
