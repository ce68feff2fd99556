package testutil

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// SQLMeshForJobUsers returns a sqlmesh that jobs running as users of their own (jobs.Users) can execute: the
// pinned one when other users can reach its interpreter. A virtualenv made from a Python under a home that
// only its owner may enter (pyenv in /root) is out of their reach; then it is the pinned packages, run by the
// system's Python of the same minor version from a small virtualenv in the temporary directory (made once,
// reused by later runs). A machine with neither fails the test.
func SQLMeshForJobUsers(t testing.TB) string {
	t.Helper()
	pinned := SQLMesh(t)
	if reachableByOthers(Python(t)) == nil {
		return pinned
	}
	jobVenvOnce.Do(func() { jobVenvSQLMesh, jobVenvErr = makeJobVenv(pinned) })
	if jobVenvErr != nil {
		t.Fatalf("no sqlmesh that jobs of other users can run: %v", jobVenvErr)
	}
	return jobVenvSQLMesh
}

var (
	jobVenvOnce    sync.Once
	jobVenvSQLMesh string
	jobVenvErr     error
)

func makeJobVenv(pinned string) (string, error) {
	venv := filepath.Dir(filepath.Dir(pinned))
	version, err := venvVersion(filepath.Join(venv, "pyvenv.cfg"))
	if err != nil {
		return "", err
	}
	minor := strings.Join(strings.SplitN(version, ".", 3)[:2], ".")
	sitePackages := filepath.Join(venv, "lib", "python"+minor, "site-packages")
	// A clone under a private home (CI's, say) keeps the packages out of reach too: then they are copied.
	copyPackages := reachableByOthers(sitePackages) != nil
	var python string
	for _, dir := range []string{"/usr/bin", "/usr/local/bin"} {
		candidate := filepath.Join(dir, "python"+minor)
		if reachableByOthers(candidate) == nil {
			python = candidate
			break
		}
	}
	if python == "" {
		return "", fmt.Errorf("%s's interpreter is out of other users' reach, and there is no python%s in /usr/bin or /usr/local/bin", pinned, minor)
	}
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%s\x00%t", pinned, python, copyPackages)))
	dir := filepath.Join(os.TempDir(), "dagctl-job-venv-"+hex.EncodeToString(sum[:6]))
	sqlmesh := filepath.Join(dir, "bin", "sqlmesh")
	if _, err := os.Stat(sqlmesh); err == nil {
		return sqlmesh, nil
	}
	build, err := os.MkdirTemp(os.TempDir(), "dagctl-job-venv-build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(build)
	// Made under another name and renamed into place, so that a half-made one is never used; a virtualenv's
	// interpreter finds its pyvenv.cfg beside it wherever it is.
	if out, err := exec.Command(python, "-m", "venv", "--without-pip", build).CombinedOutput(); err != nil {
		return "", fmt.Errorf("%s -m venv: %v: %s", python, err, out)
	}
	buildPackages := filepath.Join(build, "lib", "python"+minor, "site-packages")
	if copyPackages {
		if out, err := exec.Command("cp", "-a", sitePackages+"/.", buildPackages).CombinedOutput(); err != nil {
			return "", fmt.Errorf("copying %s: %v: %s", sitePackages, err, out)
		}
		if out, err := exec.Command("chmod", "-R", "go+rX", buildPackages).CombinedOutput(); err != nil {
			return "", fmt.Errorf("chmod %s: %v: %s", buildPackages, err, out)
		}
	} else if err := os.WriteFile(filepath.Join(buildPackages, "dagctl-pinned.pth"), []byte(sitePackages+"\n"), 0o644); err != nil {
		return "", err
	}
	script, err := os.ReadFile(pinned)
	if err != nil {
		return "", err
	}
	_, body, _ := strings.Cut(string(script), "\n") // the console script without its #! line
	if err := os.WriteFile(filepath.Join(build, "bin", "sqlmesh"), []byte("#!"+filepath.Join(dir, "bin", "python")+"\n"+body), 0o755); err != nil {
		return "", err
	}
	if err := os.Chmod(build, 0o755); err != nil {
		return "", err
	}
	if err := os.Rename(build, dir); err != nil && reachableByOthers(sqlmesh) != nil {
		return "", err // not another process having made it meanwhile
	}
	return sqlmesh, nil
}

func venvVersion(cfg string) (string, error) {
	f, err := os.Open(cfg)
	if err != nil {
		return "", err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if k, v, ok := strings.Cut(s.Text(), "="); ok && strings.TrimSpace(k) == "version" {
			return strings.TrimSpace(v), nil
		}
	}
	return "", errors.New(cfg + " names no version")
}

// reachableByOthers checks that every directory up to path (symbolic links resolved) lets others search it.
func reachableByOthers(path string) error {
	resolved, err := filepath.EvalSymlinks(path)
	if err != nil {
		return err
	}
	for dir := filepath.Dir(resolved); ; dir = filepath.Dir(dir) {
		info, err := os.Stat(dir)
		if err != nil {
			return err
		}
		if info.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("%s: %s has mode %04o", path, dir, info.Mode().Perm())
		}
		if dir == filepath.Dir(dir) {
			return nil
		}
	}
}

// TempDirForJobUsers is a fresh temporary directory that other users can pass through (mode 0711, as is the
// test's temporary directory above it), as jobs running as users of their own must pass through the
// directories above their work directory.
func TempDirForJobUsers(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
