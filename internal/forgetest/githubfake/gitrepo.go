package githubfake

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// GitRepo is a git repository with a work tree in a test's temporary directory, to back a Repo on the fake.
type GitRepo struct {
	Dir string
	t   testing.TB
	// AuthorName and AuthorEmail sign the next commits (MapEmail links the email to an account).
	AuthorName  string
	AuthorEmail string
}

// NewGitRepo initialises an empty repository whose first branch is defaultBranch.
func NewGitRepo(t testing.TB, defaultBranch string) *GitRepo {
	t.Helper()
	g := &GitRepo{Dir: t.TempDir(), t: t, AuthorName: "Dev", AuthorEmail: "dev@example.com"}
	g.Git("init", "--quiet", "--initial-branch="+defaultBranch)
	return g
}

// Git runs git in the repository and returns its trimmed output; a failure fails the test.
func (g *GitRepo) Git(args ...string) string {
	g.t.Helper()
	cmd := exec.Command("git", append([]string{"-C", g.Dir}, args...)...)
	cmd.Env = append(cmd.Environ(), gitSafeEnv...)
	cmd.Env = append(cmd.Env,
		"GIT_AUTHOR_NAME="+g.AuthorName, "GIT_AUTHOR_EMAIL="+g.AuthorEmail,
		"GIT_COMMITTER_NAME="+g.AuthorName, "GIT_COMMITTER_EMAIL="+g.AuthorEmail)
	out, err := cmd.CombinedOutput()
	if err != nil {
		g.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// Commit checks out branch (creating it from the current HEAD when missing), writes files (path → content; a
// DeleteFile removes the file), commits them and returns the new commit's SHA.
func (g *GitRepo) Commit(branch string, files map[string]string, message string) string {
	g.t.Helper()
	current := g.Git("symbolic-ref", "--short", "HEAD")
	if current != branch {
		if g.hasBranch(branch) {
			g.Git("checkout", "--quiet", branch)
		} else {
			g.Git("checkout", "--quiet", "-b", branch)
		}
	}
	for name, content := range files {
		full := filepath.Join(g.Dir, filepath.FromSlash(name))
		if content == DeleteFile {
			g.Git("rm", "--quiet", "--", name)
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			g.t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			g.t.Fatal(err)
		}
		g.Git("add", "--", name)
	}
	g.Git("commit", "--quiet", "--allow-empty", "-m", message)
	return g.Git("rev-parse", "HEAD")
}

// DeleteFile as a file's content in Commit removes the file.
const DeleteFile = "\x00delete"

// SHA resolves a ref to a commit SHA.
func (g *GitRepo) SHA(ref string) string {
	g.t.Helper()
	return g.Git("rev-parse", ref+"^{commit}")
}

func (g *GitRepo) hasBranch(branch string) bool {
	cmd := exec.Command("git", "-C", g.Dir, "rev-parse", "--verify", "--quiet", "refs/heads/"+branch)
	cmd.Env = append(cmd.Environ(), gitSafeEnv...)
	return cmd.Run() == nil
}
