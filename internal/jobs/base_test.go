//go:build linux

package jobs

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/testutil"
)

// baseAndHead is a repository with a base commit and a PR head after it, served over HTTP behind a token.
type baseAndHead struct {
	url, token, base, head string
}

func newBaseAndHead(t *testing.T) baseAndHead {
	t.Helper()
	repo := newGitRepo(t)
	base := commitFiles(t, repo, map[string]string{"project/version.txt": "base\n", "project/only_base.txt": "gone at the head\n"}, "base")
	runGit(t, repo, "rm", "-q", "project/only_base.txt")
	head := commitFiles(t, repo, map[string]string{"project/version.txt": "head\n"}, "head")
	root := t.TempDir()
	runGit(t, root, "clone", "-q", "--bare", repo, filepath.Join(root, "repo.git"))
	const token = "ghs_basecheckouttoken"
	srv, _ := gitHTTPServer(t, root, DefaultTokenUser, token)
	return baseAndHead{url: srv.URL + "/repo.git", token: token, base: base, head: head}
}

// The base commit is checked out beside the head's, over the same URL and token, read-only to a job of its own
// user; the token is in neither checkout nor in the job's environment, and both checkouts go with the job.
func TestLocalChecksOutTheBaseBesideTheHeadReadOnlyWithoutTheToken(t *testing.T) {
	r := newBaseAndHead(t)
	l, workDir := newIsolatedLocal(t, testUsers(1))
	out := filepath.Join(testutil.TempDirForJobUsers(t), "out")
	require.NoError(t, os.Mkdir(out, 0o777))
	require.NoError(t, os.Chmod(out, 0o777)) // the job's user writes its findings here, unmasked

	env := plainEnv()
	env["OUT"] = out
	env[EnvBaseDir] = "/a/path/the/spec/must/not/choose"
	res, rec := runJob(t, l, Spec{
		RunID:  "base-checkout",
		Source: Source{CloneURL: r.url, SHA: r.head, BaseSHA: r.base, Token: r.token},
		Subdir: "project",
		Command: []string{"sh", "-c", `
			echo "head=$(cat version.txt) $(cat ../.git/HEAD)"
			echo "base=$(cat "$DAGCTL_BASE_DIR/version.txt") $(cat "$DAGCTL_BASE_DIR/../.git/HEAD")"
			test -e only_base.txt || echo "the head has no only_base.txt"
			test -e "$DAGCTL_BASE_DIR/only_base.txt" && echo "the base has only_base.txt"
			case "$DAGCTL_BASE_DIR" in "$(cd .. && pwd)"/*) echo "the base is inside the head's checkout";; esac
			touch "$DAGCTL_BASE_DIR/new" 2>/dev/null && echo "the base takes new files"
			echo changed 2>/dev/null >> "$DAGCTL_BASE_DIR/version.txt" && echo "the base's files can be changed"
			echo "head is writable" > written.txt && cat written.txt
			env > "$OUT/env"
			cp -r ../.git "$OUT/head-git" && cp -r "$DAGCTL_BASE_DIR/../.git" "$OUT/base-git"`},
		Env: env,
	})

	require.True(t, res.Succeeded(), "%+v: %s", res, rec.joined())
	assert.Equal(t, []string{
		"head=head " + r.head,
		"base=base " + r.base,
		"the head has no only_base.txt",
		"the base has only_base.txt",
		"head is writable",
	}, rec.texts("stdout"))
	jobEnv, err := os.ReadFile(filepath.Join(out, "env"))
	require.NoError(t, err)
	baseDir := EnvMap(strings.Split(strings.TrimSpace(string(jobEnv)), "\n"))[EnvBaseDir]
	assert.True(t, strings.HasPrefix(baseDir, workDir+"/") && strings.HasSuffix(baseDir, "/base/project"),
		"the executor sets %s, whatever the spec says: %q", EnvBaseDir, baseDir)
	// What the job saw, unmasked: the token is nowhere in it (the output the sink gets is masked, so it would
	// prove nothing).
	configs := 0
	require.NoError(t, filepath.WalkDir(out, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		assert.NotContains(t, string(b), r.token, path)
		if d.Name() == "config" {
			configs++
			assert.Contains(t, string(b), r.url, "%s is the checkout's git config", path)
		}
		return nil
	}))
	assert.Equal(t, 2, configs, "both checkouts' git config were read")
	requireScratchRemoved(t, workDir)
}

func TestLocalWithoutABaseSetsNoBaseDir(t *testing.T) {
	repo := newGitRepo(t)
	sha := commitFiles(t, repo, map[string]string{"a.txt": "a\n"}, "a")
	l, workDir := newTestLocal(t, 0)

	res, rec := runJob(t, l, Spec{RunID: "no-base", Source: Source{CloneURL: repo, SHA: sha},
		Command: []string{"sh", "-c", `echo "base=${DAGCTL_BASE_DIR-unset}"; ls ..`}, Env: plainEnv()})

	require.True(t, res.Succeeded(), "%+v: %s", res, rec.joined())
	assert.Equal(t, []string{"base=unset", "home", "src", "tmp"}, rec.texts("stdout"), "no base checkout beside the head")
	requireScratchRemoved(t, workDir)
}

func TestLocalFailsAJobWhoseBaseCannotBeCheckedOut(t *testing.T) {
	repo := newGitRepo(t)
	sha := commitFiles(t, repo, map[string]string{"a.txt": "a\n"}, "a")
	unknown := strings.Repeat("0123456789", 4)
	l, workDir := newTestLocal(t, 0)

	res, rec := runJob(t, l, Spec{RunID: "bad-base", Source: Source{CloneURL: repo, SHA: sha, BaseSHA: unknown},
		Command: []string{"sh", "-c", "echo must not run"}, Env: plainEnv()})

	assert.Equal(t, ReasonCheckoutFailed, res.Reason)
	assert.Empty(t, rec.texts("stdout"))
	assert.Contains(t, rec.joined(), "checking out the base "+unknown)
	requireScratchRemoved(t, workDir)
}

// A job on a working tree (the CLI) finds a base directory the caller wrote as its base, the project's subdir
// in it; a BaseDir without Dir, or beside a BaseSHA, is refused.
func TestLocalGivesAWorkingTreesJobItsBaseDir(t *testing.T) {
	tree, base := t.TempDir(), t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(tree, "dbt"), 0o755))
	l, _ := newTestLocal(t, 0)

	res, rec := runJob(t, l, Spec{RunID: "base-dir", Source: Source{Dir: tree, BaseDir: base}, Subdir: "dbt",
		Command: []string{"sh", "-c", `echo "base=$DAGCTL_BASE_DIR"`}, Env: plainEnv()})
	require.True(t, res.Succeeded(), "%+v: %s", res, rec.joined())
	assert.Equal(t, []string{"base=" + filepath.Join(base, "dbt")}, rec.texts("stdout"))

	for _, src := range []Source{{CloneURL: "https://git.example/r.git", SHA: strings.Repeat("a", 40), BaseDir: base},
		{Dir: tree, BaseDir: base, BaseSHA: strings.Repeat("b", 40)}} {
		_, err := l.Start(context.Background(), Spec{RunID: "bad-base-dir", Source: src, Command: []string{"true"}}, nil)
		assert.ErrorContains(t, err, "Source.Base", "%+v", src)
	}
}
