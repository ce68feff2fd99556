//go:build linux

package jobs

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/testutil"
)

// PR code decides what its project directory holds when the job ends: the artifacts it names must not become a
// way to read what the bot can read and the job cannot. Every way out of the project is refused, and a FIFO
// does not hang the bot.
func TestLocalArtifactsDoNotLeadOutOfTheProject(t *testing.T) {
	for _, isolated := range []bool{true, false} {
		t.Run("isolated="+strconv.FormatBool(isolated), func(t *testing.T) {
			secretDir := filepath.Join(t.TempDir(), "bot-state")
			require.NoError(t, os.Mkdir(secretDir, 0o755))
			secret := filepath.Join(secretDir, "private-key.pem")
			const secretText = "-----BEGIN PRIVATE KEY----- the bot's"
			require.NoError(t, os.WriteFile(secret, []byte(secretText), 0o600))
			var l *Local
			var workDir string
			if isolated {
				l, workDir = newIsolatedLocal(t, testUsers(1))
			} else {
				l, workDir = newTestLocal(t, 0)
			}
			repo := newGitRepo(t)
			sha := commitFiles(t, repo, map[string]string{"project/real.json": `{"real": true}`}, "a")
			env := plainEnv()
			env["SECRET"], env["SECRET_DIR"] = secret, secretDir

			res, rec := runJob(t, l, Spec{
				RunID:  "artifact-attack",
				Source: Source{CloneURL: repo, SHA: sha},
				Subdir: "project",
				Command: []string{"sh", "-c", `
					mkdir -p target
					ln -s "$SECRET" target/manifest.json
					ln -s "../../../../../../../../..$SECRET" target/relative.json
					ln -s "$SECRET_DIR" linked
					ln -s ../.. target/out
					ln "$SECRET" target/hardlink.json 2>/dev/null || true
					mkfifo target/fifo.json
					ln -s ../real.json target/in-project.json`},
				Collect: []string{"target/manifest.json", "target/relative.json", "linked/private-key.pem",
					"target/out/project/real.json", "target/hardlink.json", "target/fifo.json", "target/in-project.json"},
				Env: env,
			})

			require.True(t, res.Succeeded(), "%+v: %s", res, rec.joined())
			for path, content := range res.Artifacts {
				assert.NotContains(t, string(content), "PRIVATE KEY", path)
			}
			assert.Equal(t, map[string][]byte{"target/in-project.json": []byte(`{"real": true}`)}, res.Artifacts,
				"a link inside the project is the project's own file")
			assert.Len(t, res.ArtifactErrors, 6, "%v", res.ArtifactErrors)
			for _, path := range []string{"target/manifest.json", "target/relative.json", "linked/private-key.pem",
				"target/out/project/real.json", "target/fifo.json"} {
				assert.Contains(t, res.ArtifactErrors[path], "refused", path)
			}
			assert.NotEmpty(t, res.ArtifactErrors["target/hardlink.json"], "a hard link to the bot's file")
			requireScratchRemoved(t, workDir)
		})
	}
	// Rejected before the job starts: not a clean path inside the project.
	_, err := (&Local{}).Start(t.Context(), Spec{Source: Source{Dir: "/tmp"}, Command: []string{"true"},
		Collect: []string{"target/up/../../src/project/real.json"}}, nil)
	assert.ErrorContains(t, err, "clean relative path")
}

func TestReadArtifactRefusesAHardLinkAndAnotherUsersFile(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(secret, []byte("secret"), 0o600))
	require.NoError(t, os.Link(secret, filepath.Join(dir, "linked.json")))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "own.json"), []byte("{}"), 0o644))

	_, err := ReadArtifact(dir, "linked.json", -1)
	assert.ErrorContains(t, err, "hard links")
	_, err = ReadArtifact(dir, "own.json", os.Geteuid()+1)
	assert.ErrorContains(t, err, "belongs to uid")
	content, err := ReadArtifact(dir, "own.json", os.Geteuid())
	require.NoError(t, err)
	assert.Equal(t, "{}", string(content))
}

// The files named in Collect come back whole on the result, read after the command ended (whatever its exit
// code); a missing file or one over the cap is an error on the result, never a cut file.
func TestLocalReturnsTheArtifactsTheJobLeft(t *testing.T) {
	l, workDir := newIsolatedLocal(t, testUsers(1))
	repo := newGitRepo(t)
	sha := commitFiles(t, repo, map[string]string{"project/dbt_project.yml": "name: shop\n"}, "a")
	manifest := strings.Repeat(`{"nodes": {}}`, 200_000)

	res, rec := runJob(t, l, Spec{
		RunID:  "artifacts",
		Source: Source{CloneURL: repo, SHA: sha},
		Subdir: "project",
		Command: []string{"sh", "-c", `mkdir -p target
			yes '{"nodes": {}}' | head -n 200000 | tr -d '\n' > target/manifest.json
			truncate -s ` + strconv.Itoa(MaxArtifactBytes+1) + ` target/run_results.json
			exit 3`},
		Collect: []string{"target/manifest.json", "target/run_results.json", "target/catalog.json"},
		Env:     plainEnv(),
	})

	assert.Equal(t, 3, res.ExitCode, rec.joined())
	require.Len(t, res.Artifacts, 1, "%v", res.ArtifactErrors)
	assert.True(t, manifest == string(res.Artifacts["target/manifest.json"]), "the manifest, whole (%d bytes)", len(res.Artifacts["target/manifest.json"]))
	assert.Contains(t, res.ArtifactErrors["target/run_results.json"], "over the cap of 67108864")
	assert.Contains(t, res.ArtifactErrors["target/catalog.json"], "no such file")
	assert.Len(t, res.ArtifactErrors, 2)
	requireScratchRemoved(t, workDir)
}

func TestLocalArtifactsOfAJobWhoseCommandDidNotRunAreErrors(t *testing.T) {
	l, workDir := newTestLocal(t, 0)
	spec := shellJob(testutil.TempDirForJobUsers(t), "echo must not run > out.json")
	spec.Setup = [][]string{{"false"}}
	spec.Collect = []string{"out.json"}

	res, rec := runJob(t, l, spec)

	assert.Equal(t, SetupFailedReason(1), res.Reason, rec.joined())
	assert.Nil(t, res.Artifacts)
	assert.Contains(t, res.ArtifactErrors["out.json"], "not collected")
	requireScratchRemoved(t, workDir)
}

func TestArtifactPaths(t *testing.T) {
	for p, want := range map[string]bool{
		"target/manifest.json": true, "manifest.json": true, "a/b/c.json": true,
		"": false, "/etc/passwd": false, "../x": false, "a/../b": false, "a//b": false, "./a": false,
		"a/": false, `a\b`: false, "a\x00": false, "..": false,
	} {
		assert.Equal(t, want, ValidArtifactPath(p), "%q", p)
	}
	assert.ErrorContains(t, CheckCollect([]string{"a", "a"}), "twice")
	assert.ErrorContains(t, CheckCollect(make([]string, MaxCollect+1)), "at most")
}
