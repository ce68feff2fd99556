//go:build linux

package jobs

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/testutil"
)

// Inputs are written before the command, in a directory of their own beside the checkout, read-only to a job of
// its own user, and removed with the job.
func TestLocalGivesTheJobItsInputsInADirectoryOfTheirOwn(t *testing.T) {
	repo := newGitRepo(t)
	sha := commitFiles(t, repo, map[string]string{"project/dbt_project.yml": "name: shop\n"}, "a")
	l, workDir := newIsolatedLocal(t, testUsers(1))
	manifest := []byte(strings.Repeat(`{"nodes": {}}`, 200_000)) // over a ConfigMap's 1 MiB
	sum := sha256.Sum256(manifest)

	env := plainEnv()
	env[EnvInputDir] = "/not/the/specs/to/choose"
	res, rec := runJob(t, l, Spec{
		RunID:  "inputs",
		Source: Source{CloneURL: repo, SHA: sha},
		Subdir: "project",
		Inputs: map[string][]byte{"manifest.json": manifest, "notes.txt": []byte("prod state\n")},
		Command: []string{"sh", "-c", `
			sha256sum "$DAGCTL_INPUT_DIR/manifest.json" | cut -d' ' -f1
			cat "$DAGCTL_INPUT_DIR/notes.txt"
			ls "$DAGCTL_INPUT_DIR"
			case "$DAGCTL_INPUT_DIR" in "$(cd .. && pwd)"/*) echo "the inputs are inside the checkout";; esac
			echo forged 2>/dev/null > "$DAGCTL_INPUT_DIR/manifest.json" && echo "an input can be changed"
			touch "$DAGCTL_INPUT_DIR/new" 2>/dev/null && echo "the input directory takes new files"
			echo "$DAGCTL_INPUT_DIR"`},
		Env: env,
	})

	require.True(t, res.Succeeded(), "%+v: %s", res, rec.joined())
	stdout := rec.texts("stdout")
	require.Len(t, stdout, 5, "%q", stdout)
	assert.Equal(t, []string{hex.EncodeToString(sum[:]), "prod state", "manifest.json", "notes.txt"}, stdout[:4])
	assert.True(t, strings.HasPrefix(stdout[4], workDir+"/"), "the executor's %s: %q", EnvInputDir, stdout[4])
	requireScratchRemoved(t, workDir)
}

func TestLocalWithoutInputsSetsNoInputDir(t *testing.T) {
	l, workDir := newTestLocal(t, 0)

	res, rec := runJob(t, l, shellJob(testutil.TempDirForJobUsers(t), `echo "inputs=${DAGCTL_INPUT_DIR-unset}"`))

	require.True(t, res.Succeeded(), "%+v: %s", res, rec.joined())
	assert.Equal(t, []string{"inputs=unset"}, rec.texts("stdout"))
	requireScratchRemoved(t, workDir)
}

func TestInputNames(t *testing.T) {
	for name, want := range map[string]bool{
		"manifest.json": true, "run_results.json": true, ".hidden": true, "a..b": true,
		"": false, ".": false, "..": false, "a/b": false, "../manifest.json": false, `a\b`: false,
		"nul\x00": false, strings.Repeat("x", 256): false,
	} {
		assert.Equal(t, want, ValidInputName(name), "%q", name)
	}
}

func TestWriteInputsRefusesANameThatLeavesTheDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "inputs")

	err := WriteInputs(dir, map[string][]byte{"../escaped": []byte("x")})

	assert.Error(t, err)
	_, statErr := os.Stat(filepath.Join(filepath.Dir(dir), "escaped"))
	assert.True(t, os.IsNotExist(statErr), "nothing was written outside")
}
