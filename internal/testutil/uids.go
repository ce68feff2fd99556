package testutil

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// heldUIDBlocks keeps the lock files of the uid blocks this process took open until it exits (the kernel then
// releases the locks).
var heldUIDBlocks []*os.File

// UIDBlock takes one of blocks blocks of size uids from base for this test process alone and returns its first
// uid. Jobs that run as users of their own kill every process of their uid before they start, so two test
// processes on one machine (two checkouts, or one package run twice) must never share a uid: each block is an
// flock on a file in the system's temporary directory, held until the process exits.
func UIDBlock(base, size, blocks int) int {
	for i := 0; i < blocks; i++ {
		first := base + i*size
		path := filepath.Join(os.TempDir(), fmt.Sprintf("dagctl-test-uids-%d.lock", first))
		f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			panic(fmt.Sprintf("testutil: uid block lock %s: %v", path, err))
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			continue // another test process has this block
		}
		heldUIDBlocks = append(heldUIDBlocks, f)
		return first
	}
	panic(fmt.Sprintf("testutil: all %d uid blocks from %d are taken by other test processes", blocks, base))
}
