package image

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// layerTime is every entry's modification time, so the same files make the same layer whatever the checkout's
// clock said (1980-01-01, as ko uses: some tools refuse times before the zip epoch).
var layerTime = time.Date(1980, 1, 1, 0, 0, 1, 0, time.UTC)

// excludedAtRoot are what dbt writes into the project at run time (target/, logs/): never part of the image.
var excludedAtRoot = map[string]bool{"target": true, "logs": true}

// maxLinkHops bounds the symlinks followed while checking where one points (a loop is refused).
const maxLinkHops = 40

// writeProjectTar writes the project's files as a tar under imagePath: entries sorted by name, owned by 0:0,
// at layerTime, with their permission bits (setuid, setgid and sticky dropped). .git/ (at any depth),
// target/ and logs/ (at the root) are left out. Symlinks are stored as symlinks and never followed; one that
// resolves outside the project, or whose target is absolute, is refused, as are files a layer would read as
// whiteouts (`.wh.*`) and anything that is not a file, directory or symlink.
func writeProjectTar(w io.Writer, projectDir, imagePath string) error {
	// The directory is the bot's own checkout; resolved, so that a path through a symlink is walked too
	// (WalkDir does not descend into a root that is a link).
	root, err := filepath.EvalSymlinks(projectDir)
	if err != nil {
		return fmt.Errorf("image: project directory: %w", err)
	}
	if root, err = filepath.Abs(root); err != nil {
		return err
	}
	if info, err := os.Stat(root); err != nil {
		return fmt.Errorf("image: project directory: %w", err)
	} else if !info.IsDir() {
		return fmt.Errorf("image: project directory %s is not a directory", projectDir)
	}
	prefix, err := cleanImagePath(imagePath)
	if err != nil {
		return err
	}

	var rels []string
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		name := d.Name()
		if d.IsDir() && (name == ".git" || (!strings.Contains(rel, "/") && excludedAtRoot[name])) {
			return filepath.SkipDir
		}
		if name == ".git" { // a worktree's or submodule's .git file
			return nil
		}
		if strings.HasPrefix(name, ".wh.") {
			return fmt.Errorf("image: %s: a name starting with .wh. is a whiteout in an image layer", rel)
		}
		rels = append(rels, rel)
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(rels)

	tw := tar.NewWriter(w)
	// The directories above the project, so the runtime creates them with a known mode.
	parts := strings.Split(prefix, "/")
	for i := range parts {
		if err := tw.WriteHeader(dirHeader(strings.Join(parts[:i+1], "/"), 0o755)); err != nil {
			return err
		}
	}
	for _, rel := range rels {
		if err := writeEntry(tw, root, rel, prefix); err != nil {
			return err
		}
	}
	return tw.Close()
}

// cleanImagePath is the image path as a tar name (no leading "/"); the image's root itself is refused, since
// the project would then overlay the base's /etc, /usr, ...
func cleanImagePath(imagePath string) (string, error) {
	if imagePath == "" {
		imagePath = DefaultImagePath
	}
	if !path.IsAbs(imagePath) {
		return "", fmt.Errorf("image: image path %q is not absolute", imagePath)
	}
	p := strings.TrimPrefix(path.Clean(imagePath), "/")
	if p == "" {
		return "", fmt.Errorf("image: image path %q is the image's root", imagePath)
	}
	return p, nil
}

func dirHeader(name string, mode int64) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, ModTime: layerTime, Format: tar.FormatPAX}
}

func writeEntry(tw *tar.Writer, root, rel, prefix string) error {
	full := filepath.Join(root, filepath.FromSlash(rel))
	info, err := os.Lstat(full)
	if err != nil {
		return err
	}
	name := prefix + "/" + rel
	mode := int64(info.Mode().Perm())
	switch {
	case info.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(full)
		if err != nil {
			return err
		}
		if err := checkLinkInside(root, rel, target); err != nil {
			return err
		}
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777,
			ModTime: layerTime, Format: tar.FormatPAX})
	case info.IsDir():
		return tw.WriteHeader(dirHeader(name, mode))
	case info.Mode().IsRegular():
		// O_NOFOLLOW: a file swapped for a symlink after the walk is an error, not a read through the link.
		f, err := os.OpenFile(full, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
		if err != nil {
			return fmt.Errorf("image: %s: %w", rel, err)
		}
		defer f.Close()
		opened, err := f.Stat()
		if err != nil {
			return err
		}
		if !opened.Mode().IsRegular() || !os.SameFile(info, opened) {
			return fmt.Errorf("image: %s changed while the layer was written", rel)
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: opened.Size(), Mode: mode,
			ModTime: layerTime, Format: tar.FormatPAX}); err != nil {
			return err
		}
		n, err := io.Copy(tw, f)
		if err == nil && n != opened.Size() {
			err = fmt.Errorf("image: %s changed while the layer was written", rel)
		}
		return err
	default:
		return fmt.Errorf("image: %s: %s is neither a file, a directory nor a symlink", rel, info.Mode().Type())
	}
}

// errLinkOutside is a symlink that resolves outside the project.
var errLinkOutside = errors.New("points outside the project")

// checkLinkInside refuses a symlink at rel (relative to root) whose target is absolute or resolves above
// root. It resolves component by component, following the symlinks it meets inside the project (reading
// them, never opening through them), so a chain of links that each look inside (`a -> d/l/..` with
// `d/l -> ..`) cannot climb out either: cleaning the path as text would have said `a -> d`.
func checkLinkInside(root, rel, target string) error {
	refuse := func(why error) error {
		return fmt.Errorf("image: symlink %s -> %s %w", rel, target, why)
	}
	dir := path.Dir(rel)
	var stack []string // the resolved position, as components below root
	if dir != "." {
		stack = strings.Split(dir, "/")
	}
	if path.IsAbs(target) {
		return refuse(errors.New("is absolute (it would point into the base image)"))
	}
	pending := strings.Split(target, "/")
	hops := 0
	for len(pending) > 0 {
		c := pending[0]
		pending = pending[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(stack) == 0 {
				return refuse(errLinkOutside)
			}
			stack = stack[:len(stack)-1]
			continue
		}
		next := append(append([]string(nil), stack...), c)
		full := filepath.Join(root, filepath.FromSlash(strings.Join(next, "/")))
		info, err := os.Lstat(full)
		if err != nil || info.Mode()&fs.ModeSymlink == 0 {
			stack = next // a file, a directory, or nothing (a dangling link inside is harmless)
			continue
		}
		if hops++; hops > maxLinkHops {
			return refuse(errors.New("goes through too many links"))
		}
		t, err := os.Readlink(full)
		if err != nil {
			return err
		}
		if path.IsAbs(t) {
			return refuse(fmt.Errorf("goes through %s -> %s, which is absolute", strings.Join(next, "/"), t))
		}
		pending = append(strings.Split(t, "/"), pending...) // resolved from the link's own directory: stack
	}
	return nil
}
