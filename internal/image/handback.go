package image

import (
	"archive/tar"
	"crypto/sha1" //nolint:gosec // git's object ids are SHA-1 (or SHA-256): compared, not trusted for secrecy
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
)

// A layers build is split so that the registry credentials never enter a job that runs PR code: a job on the
// executor checks the commit out, runs `dbt deps`, and hands the project back as a tar (an artifact, within
// jobs.MaxArtifactBytes); the bot extracts it (ExtractProject), checks it against the forge's tree of the
// commit (CheckProject), and only then builds and pushes with its keychain. The job is PR code's, so its tar is
// too: what it may add is dbt_packages/ (what `dbt deps` fetched, which the PR chose anyway); every other file
// must be the commit's, byte for byte.

// PackagesDir is where `dbt deps` installs a project's packages: the one directory of the image that is not the
// commit's.
const PackagesDir = "dbt_packages"

// maxHandbackEntries bounds the entries of a handed-back project (the tar's bytes are bounded by the artifact
// cap; this bounds the work of an archive of empty files).
const maxHandbackEntries = 200_000

// FileID is a handed-back file's git object id, both ways git names blobs: SHA-1 and SHA-256 (a forge's tree
// gives one of them).
type FileID struct {
	SHA1, SHA256 string
}

// Matches reports whether id, a forge's content id of the path, names this content.
func (f FileID) Matches(id string) bool {
	id = strings.ToLower(id)
	return id != "" && (id == f.SHA1 || id == f.SHA256)
}

// ExtractProject writes a handed-back project tar into dir (an empty directory of the bot's) and returns the
// git object id of each file and symlink, by path relative to the project. It takes directories, regular files
// and symlinks only, names that are relative and stay inside (no "..", no absolute names, no entry below a
// symlink, no name twice), and writes through an os.Root, so no entry, link or name lands outside dir.
// Symlinks are written as they are, never followed; the layer builder refuses those that point outside.
func ExtractProject(r io.Reader, dir string) (map[string]FileID, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	ids := map[string]FileID{}
	seen := map[string]bool{}
	links := map[string]bool{}
	tr := tar.NewReader(r)
	for n := 0; ; n++ {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return ids, nil
		}
		if err != nil {
			return nil, fmt.Errorf("image: the handed-back project: %w", err)
		}
		if n >= maxHandbackEntries {
			return nil, fmt.Errorf("image: the handed-back project has more than %d entries", maxHandbackEntries)
		}
		name, err := entryName(h.Name)
		if err != nil {
			return nil, err
		}
		if name == "" {
			continue // the root itself
		}
		if seen[name] {
			return nil, fmt.Errorf("image: the handed-back project names %s twice", name)
		}
		seen[name] = true
		for p := path.Dir(name); p != "."; p = path.Dir(p) {
			if links[p] {
				return nil, fmt.Errorf("image: the handed-back project puts %s below the symlink %s", name, p)
			}
		}
		if d := path.Dir(name); d != "." {
			if err := root.MkdirAll(d, 0o755); err != nil {
				return nil, fmt.Errorf("image: %s: %w", name, err)
			}
		}
		mode := fs.FileMode(h.Mode).Perm()
		switch h.Typeflag {
		case tar.TypeDir:
			if err := root.Mkdir(name, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				return nil, fmt.Errorf("image: %s: %w", name, err)
			}
			if err := root.Chmod(name, mode|0o700); err != nil {
				return nil, fmt.Errorf("image: %s: %w", name, err)
			}
		case tar.TypeReg:
			id, err := extractFile(root, name, mode, tr, h.Size)
			if err != nil {
				return nil, err
			}
			ids[name] = id
		case tar.TypeSymlink:
			if err := root.Symlink(h.Linkname, name); err != nil {
				return nil, fmt.Errorf("image: %s: %w", name, err)
			}
			links[name] = true
			ids[name] = blobID([]byte(h.Linkname))
		default:
			return nil, fmt.Errorf("image: the handed-back project's %s is neither a file, a directory nor a symlink", name)
		}
	}
}

// entryName is a tar entry's name relative to the project ("" for the project itself), refused when absolute,
// when it climbs out, or when it holds a NUL or a backslash.
func entryName(raw string) (string, error) {
	if strings.HasPrefix(raw, "/") || strings.ContainsAny(raw, "\x00\\") {
		return "", fmt.Errorf("image: the handed-back project names %q, not a relative path", raw)
	}
	for _, c := range strings.Split(raw, "/") {
		if c == ".." {
			return "", fmt.Errorf("image: the handed-back project names %q, which leaves the project", raw)
		}
	}
	name := path.Clean(raw)
	if name == "." {
		return "", nil
	}
	return name, nil
}

func extractFile(root *os.Root, name string, mode fs.FileMode, r io.Reader, size int64) (FileID, error) {
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode|0o600)
	if err != nil {
		return FileID{}, fmt.Errorf("image: %s: %w", name, err)
	}
	defer f.Close()
	s1, s256 := blobHashes(size)
	n, err := io.Copy(io.MultiWriter(f, s1, s256), r)
	if err == nil && n != size {
		err = io.ErrUnexpectedEOF
	}
	if err == nil {
		err = f.Chmod(mode) // the umask does not decide the image's modes
	}
	if err != nil {
		return FileID{}, fmt.Errorf("image: %s: %w", name, err)
	}
	return FileID{SHA1: hex.EncodeToString(s1.Sum(nil)), SHA256: hex.EncodeToString(s256.Sum(nil))}, f.Close()
}

// blobHashes start git's object ids of a blob of size bytes: the hash of "blob <size>\x00" and the content.
func blobHashes(size int64) (hash.Hash, hash.Hash) {
	s1, s256 := sha1.New(), sha256.New() //nolint:gosec // git's object id
	header := "blob " + strconv.FormatInt(size, 10) + "\x00"
	s1.Write([]byte(header))
	s256.Write([]byte(header))
	return s1, s256
}

func blobID(content []byte) FileID {
	s1, s256 := blobHashes(int64(len(content)))
	s1.Write(content)
	s256.Write(content)
	return FileID{SHA1: hex.EncodeToString(s1.Sum(nil)), SHA256: hex.EncodeToString(s256.Sum(nil))}
}

// notCompared are the project's root directories a handed-back project leaves out or generates (as the layer
// does): dbt's target/ and logs/, and dbt_packages/.
var notCompared = map[string]bool{"target": true, "logs": true, PackagesDir: true}

// maxNamed is how many files an error names.
const maxNamed = 5

// CheckProject compares a handed-back project (ExtractProject's ids) with the commit's files as the forge's
// tree shows them (path relative to the project → content id). Every file of the tree must be there with the
// same content, except dbt's target/, logs/ and dbt_packages/ at the root; what the job added outside
// dbt_packages/ (a package-lock.yml `dbt deps` wrote, anything else) is returned as extra, for the caller to
// leave out of the image. An error names what differs or is missing.
func CheckProject(tree map[string]string, got map[string]FileID) (extra []string, err error) {
	var differs, missing []string
	for p, id := range tree {
		if !compared(p) {
			continue
		}
		switch g, ok := got[p]; {
		case !ok:
			missing = append(missing, p)
		case !g.Matches(id):
			differs = append(differs, p)
		}
	}
	for p := range got {
		if _, ok := tree[p]; !ok && compared(p) {
			extra = append(extra, p)
		}
	}
	sort.Strings(extra)
	if len(differs)+len(missing) == 0 {
		return extra, nil
	}
	var parts []string
	if len(differs) > 0 {
		parts = append(parts, "differs from the commit: "+named(differs))
	}
	if len(missing) > 0 {
		parts = append(parts, "missing: "+named(missing))
	}
	return nil, fmt.Errorf("image: the project the job handed back is not the commit's (%s)", strings.Join(parts, "; "))
}

func compared(p string) bool {
	first, _, _ := strings.Cut(p, "/")
	return !notCompared[first] && p != ".git" && !strings.HasPrefix(p, ".git/") && !strings.Contains(p, "/.git/") &&
		path.Base(p) != ".git"
}

func named(paths []string) string {
	sort.Strings(paths)
	out := paths
	if len(out) > maxNamed {
		out = out[:maxNamed]
	}
	s := strings.Join(out, ", ")
	if n := len(paths) - len(out); n > 0 {
		s += fmt.Sprintf(" and %d more", n)
	}
	return s
}
