package jobs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// CollectArtifacts reads the files of paths (Spec.Collect) from the project directory dir with ReadArtifact,
// for a Result: each file read whole, or the reason it is not.
func CollectArtifacts(dir string, paths []string, owner int) (artifacts map[string][]byte, errs map[string]string) {
	if len(paths) == 0 {
		return nil, nil
	}
	artifacts, errs = map[string][]byte{}, map[string]string{}
	for _, p := range paths {
		content, err := ReadArtifact(dir, p, owner)
		if err != nil {
			errs[p] = err.Error()
			continue
		}
		artifacts[p] = content
	}
	return artifacts, errs
}

// NotCollected gives every path the same reason: the job ended before its artifacts could be read.
func NotCollected(paths []string, why string) map[string]string {
	if len(paths) == 0 {
		return nil
	}
	errs := make(map[string]string, len(paths))
	for _, p := range paths {
		errs[p] = why
	}
	return errs
}

// ReadArtifact reads the file rel inside the project directory dir, which PR code wrote: so a symbolic link
// anywhere on the way that leads out of dir is refused (os.Root), as is anything but a regular file (a FIFO
// would block the bot: it is opened without waiting), a file with other hard links (one could be a link to a
// secret of the bot's) and, when owner is not -1, a file of another user than the job's. A file over
// MaxArtifactBytes is an error, never cut.
func ReadArtifact(dir, rel string, owner int) ([]byte, error) {
	if !ValidArtifactPath(rel) {
		return nil, errors.New("not a clean relative path inside the project")
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("the project directory: %w", err)
	}
	defer root.Close()
	f, err := root.OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errors.New("the job left no such file")
	}
	if err != nil {
		return nil, fmt.Errorf("refused: %w", err) // os.Root: a path leaving the project
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("refused: not a regular file (%s)", info.Mode().Type())
	}
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		if st.Nlink != 1 {
			return nil, fmt.Errorf("refused: the file has %d hard links", st.Nlink)
		}
		if owner >= 0 && int(st.Uid) != owner {
			return nil, fmt.Errorf("refused: the file belongs to uid %d, not the job's", st.Uid)
		}
	}
	if info.Size() > MaxArtifactBytes {
		return nil, fmt.Errorf("the file is %d bytes, over the cap of %d", info.Size(), MaxArtifactBytes)
	}
	content, err := io.ReadAll(io.LimitReader(f, MaxArtifactBytes+1))
	if err != nil {
		return nil, err
	}
	if len(content) > MaxArtifactBytes { // it grew while being read
		return nil, fmt.Errorf("the file is over the cap of %d bytes", MaxArtifactBytes)
	}
	return content, nil
}
