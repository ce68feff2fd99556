// Package e2e is the world of the bot's end-to-end tests: a fake forge (a forgetest.World, one per e2e.Forges)
// holding a repository with examples/sqlmesh, and the team's sqlmesh state in a DuckDB file. Each test suite adds
// the bot (local or Kubernetes executor) on top. Forge is the GitHub-only world the benchmarks use.
package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/comments"
	"github.com/dagctl/dagctl-bot/internal/forgetest/githubfake"
	"github.com/dagctl/dagctl-bot/internal/testutil"
)

// The app and repository every end-to-end test uses.
const (
	AppID          = 42
	InstallationID = 7
	WebhookSecret  = "s3cret-webhook"
	// ExecutionTime fixes sqlmesh's "now", so that backfill intervals are the same on every run.
	ExecutionTime = "2024-01-15"
)

// Forge is a fake GitHub with the app installed on acme/warehouse, whose main holds the example project: the
// GitHub-only world of the benchmarks and the Kubernetes suite (forge-neutral tests use World).
type Forge struct {
	*Warehouse
	Fake *githubfake.Fake
	Git  *githubfake.GitRepo
	Repo *githubfake.Repo
	PEM  []byte // the app's private key
	Base string // main's commit
}

// Warehouse is the team's side of every end-to-end world: the example project on main and its sqlmesh state.
type Warehouse struct {
	T testing.TB
	// State is the DuckDB file with the team's data and sqlmesh state (EXAMPLE_DUCKDB_PATH of the jobs).
	State     string
	baseFiles map[string]string
	// stateGroup is the jobs' shared group when jobs run as users of their own (ShareState).
	stateGroup uint32
}

func newWarehouse(t testing.TB, baseFiles map[string]string) *Warehouse {
	return &Warehouse{T: t, baseFiles: baseFiles, State: filepath.Join(t.TempDir(), "state.duckdb")}
}

// NewForge sets the forge up; baseFiles are added to (or replace) the example's files on main. Users: alice and
// bob have write permission, carol is an admin, dave can only read.
func NewForge(t testing.TB, baseFiles map[string]string) *Forge {
	t.Helper()
	f := &Forge{Warehouse: newWarehouse(t, baseFiles), Fake: githubfake.New(t)}
	f.PEM = f.Fake.NewApp(t, AppID, "dagctl-bot")
	f.Fake.AddInstallation(githubfake.Installation{ID: InstallationID, AppID: AppID, Account: "acme"})
	f.Git = githubfake.NewGitRepo(t, "main")
	f.Base = f.Git.Commit("main", f.MainFiles(), "the example project")
	f.Repo = f.Fake.AddRepo("acme", "warehouse", f.Git.Dir, "main")
	for user, role := range map[string]string{"alice": "write", "bob": "write", "carol": "admin", "dave": "read"} {
		f.Repo.SetPermission(user, role)
	}
	return f
}

// ShareState lets jobs that run as users of their own, all members of group gid (DAGCTL_JOB_GROUP), use the
// state file, as a team would share a local DuckDB warehouse: its directory becomes the group's with the
// setgid bit, so that the files one job creates (with umask 007) the others can write. Call it before
// DeployToProd.
func (f *Warehouse) ShareState(gid uint32) {
	f.T.Helper()
	dir := filepath.Dir(f.State)
	require.NoError(f.T, os.Chmod(filepath.Dir(dir), 0o711))
	require.NoError(f.T, os.Chown(dir, os.Geteuid(), int(gid)))
	require.NoError(f.T, os.Chmod(dir, 0o770|os.ModeSetgid))
	f.stateGroup = gid
}

// MainFiles are the files on main: the example and the test's own.
func (f *Warehouse) MainFiles() map[string]string {
	files := testutil.ExampleFiles(f.T)
	for name, content := range f.baseFiles {
		files[name] = content
	}
	return files
}

// DeployToProd applies main plus some changes (none: main as it is) to prod with the real sqlmesh, as the
// team's earlier deploys, or a deploy the bot does not know about, would.
func (f *Warehouse) DeployToProd(changes map[string]string) {
	f.T.Helper()
	dir := f.T.TempDir()
	files := f.MainFiles()
	for k, v := range changes {
		files[k] = v
	}
	for name, content := range files {
		full := filepath.Join(dir, filepath.FromSlash(name))
		require.NoError(f.T, os.MkdirAll(filepath.Dir(full), 0o755))
		require.NoError(f.T, os.WriteFile(full, []byte(content), 0o644))
	}
	cmd := exec.Command(testutil.SQLMesh(f.T), "plan", "prod", "--auto-apply", "--no-prompts", "--execution-time", ExecutionTime)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "EXAMPLE_DUCKDB_PATH="+f.State, "SQLMESH__DISABLE_ANONYMIZED_ANALYTICS=1")
	out, err := cmd.CombinedOutput()
	require.NoError(f.T, err, "deploying to prod: %s", out)
	if f.stateGroup != 0 {
		require.NoError(f.T, os.Chmod(f.State, 0o660), "the jobs' group writes the state too")
	}
}

// PR makes a PR from a branch with the given changes on top of main, and returns its head SHA.
func (f *Forge) PR(number int, branch, author string, files map[string]string) string {
	f.T.Helper()
	f.Git.Git("checkout", "--quiet", "main")
	head := f.Git.Commit(branch, files, "change on "+branch)
	f.Repo.SetPR(githubfake.PR{Number: number, Title: "Change " + branch, Author: author, HeadRef: branch, HeadSHA: head, BaseRef: "main", BaseSHA: f.Base})
	return head
}

// PREvent is a pull_request payload for the PR.
func (f *Forge) PREvent(action string, number int, head, author string) *githubfake.Payload {
	return githubfake.LoadPayload(f.T, "pull_request.opened.json").Installation(InstallationID).Repo(f.Repo).
		PullRequest(number, head, f.Base).Set("action", action).Set("pull_request.base.ref", "main").
		Set("pull_request.user.login", author).Set("sender.login", author)
}

// Sticky is the PR's sticky comment (all parts joined), or "": the bot's comments that carry the marker.
func (f *Forge) Sticky(number int) string {
	var parts []string
	for _, c := range f.Repo.Comments(number) {
		if _, ok := comments.MarkerPart(c.Body); ok && c.Bot && !c.Deleted {
			parts = append(parts, c.Body)
		}
	}
	return strings.Join(parts, "\n")
}
