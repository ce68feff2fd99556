package image

import (
	"archive/tar"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type tarEntry struct {
	name, body, link string
	typ              byte
	mode             int64
}

func tarOf(t *testing.T, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Linkname: e.link, Size: int64(len(e.body))}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if h.Typeflag != tar.TypeReg {
			h.Size = 0
		}
		require.NoError(t, tw.WriteHeader(h))
		if h.Typeflag == tar.TypeReg {
			_, err := tw.Write([]byte(e.body))
			require.NoError(t, err)
		}
	}
	require.NoError(t, tw.Close())
	return buf.Bytes()
}

// gitIDs are the blob ids real git gives the files of dir, by path: what a forge's tree says.
func gitIDs(t *testing.T, files map[string]string, links map[string]string) map[string]string {
	t.Helper()
	dir := t.TempDir()
	run := func(args ...string) string {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, string(out))
		return string(out)
	}
	run("init", "-q")
	for p, body := range files {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, p), []byte(body), 0o644))
	}
	for p, target := range links {
		require.NoError(t, os.Symlink(target, filepath.Join(dir, p)))
	}
	run("add", "-A")
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(run("ls-files", "-s")), "\n") {
		meta, p, _ := strings.Cut(line, "\t")
		out[p] = strings.Fields(meta)[1]
	}
	return out
}

func TestAHandedBackProjectIsCheckedAgainstTheCommitsTree(t *testing.T) {
	files := map[string]string{"dbt_project.yml": "name: shop\n", "models/orders.sql": "select 1\n", "target/old.json": "{}"}
	tree := gitIDs(t, files, map[string]string{"models/alias.sql": "orders.sql"})

	back := tarOf(t,
		tarEntry{name: "./", typ: tar.TypeDir, mode: 0o755},
		tarEntry{name: "dbt_project.yml", body: "name: shop\n"},
		tarEntry{name: "models/orders.sql", body: "select 1\n"},
		tarEntry{name: "models/alias.sql", typ: tar.TypeSymlink, link: "orders.sql"},
		tarEntry{name: "dbt_packages/dbt_utils/macros/x.sql", body: "{% macro x() %}{% endmacro %}"},
		tarEntry{name: "package-lock.yml", body: "packages: []\n"},
		tarEntry{name: "run.sh", body: "#!/bin/sh\n", mode: 0o755},
	)
	dir := t.TempDir()
	ids, err := ExtractProject(bytes.NewReader(back), dir)
	require.NoError(t, err)
	extra, err := CheckProject(tree, ids)
	require.NoError(t, err, "the commit's files (target/ is not compared) and dbt_packages/")
	assert.Equal(t, []string{"package-lock.yml", "run.sh"}, extra, "what the job added outside dbt_packages/")
	body, err := os.ReadFile(filepath.Join(dir, "models/orders.sql"))
	require.NoError(t, err)
	assert.Equal(t, "select 1\n", string(body))
	link, err := os.Readlink(filepath.Join(dir, "models/alias.sql"))
	require.NoError(t, err)
	assert.Equal(t, "orders.sql", link, "a symlink is written as a symlink")
	info, err := os.Stat(filepath.Join(dir, "run.sh"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o755), info.Mode().Perm(), "modes kept")

	// A job that changed a reviewed model, or left one out, is refused by name.
	tampered := tarOf(t, tarEntry{name: "dbt_project.yml", body: "name: shop\n"},
		tarEntry{name: "models/orders.sql", body: "select 2\n"})
	ids, err = ExtractProject(bytes.NewReader(tampered), t.TempDir())
	require.NoError(t, err)
	_, err = CheckProject(tree, ids)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "differs from the commit: models/orders.sql")
	assert.Contains(t, err.Error(), "missing: models/alias.sql")
	assert.NotContains(t, err.Error(), "target/old.json", "dbt's target/ is never compared")
}

func TestAHandedBackProjectCannotWriteOutsideItsDirectory(t *testing.T) {
	for name, back := range map[string][]tarEntry{
		"dot-dot":          {{name: "../escape", body: "x"}},
		"absolute":         {{name: "/etc/escape", body: "x"}},
		"below a symlink":  {{name: "up", typ: tar.TypeSymlink, link: ".."}, {name: "up/escape", body: "x"}},
		"a hard link":      {{name: "a", body: "x"}, {name: "b", typ: tar.TypeLink, link: "a"}},
		"a device":         {{name: "null", typ: tar.TypeChar}},
		"twice":            {{name: "a", body: "x"}, {name: "./a", body: "y"}},
		"a backslash name": {{name: `a\..\..\escape`, body: "x"}},
	} {
		t.Run(name, func(t *testing.T) {
			parent := t.TempDir()
			dir := filepath.Join(parent, "project")
			require.NoError(t, os.Mkdir(dir, 0o700))
			_, err := ExtractProject(bytes.NewReader(tarOf(t, back...)), dir)
			require.Error(t, err)
			_, statErr := os.Stat(filepath.Join(parent, "escape"))
			assert.True(t, os.IsNotExist(statErr), "nothing was written beside the project")
		})
	}
}
