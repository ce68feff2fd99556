// Package testutil finds the pinned tools that tests run for real.
package testutil

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// RepoRoot is the directory holding go.mod.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// SQLMesh returns the pinned sqlmesh executable: $DAGCTL_SQLMESH, else .venv/bin/sqlmesh in the repository.
// It never looks on PATH, so a test cannot silently run another version. A missing executable fails the test:
// `make test` installs it, and a skipped test proves nothing.
func SQLMesh(t testing.TB) string {
	t.Helper()
	return tool(t, "DAGCTL_SQLMESH", "sqlmesh")
}

// Python returns the interpreter of the pinned tool environment (the one sqlmesh is installed in).
func Python(t testing.TB) string {
	t.Helper()
	return filepath.Join(filepath.Dir(SQLMesh(t)), "python")
}

// DBT returns the pinned dbt executable.
func DBT(t testing.TB) string {
	t.Helper()
	return filepath.Join(filepath.Dir(SQLMesh(t)), "dbt")
}

func tool(t testing.TB, envVar, name string) string {
	t.Helper()
	path := os.Getenv(envVar)
	if path == "" {
		path = filepath.Join(RepoRoot(), ".venv", "bin", name)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("%s not found at %s (%v): run `make tools`, or set %s", name, path, err, envVar)
	}
	return path
}
