//go:build !linux

package jobs

import (
	"context"
	"errors"
	"os/exec"
	"syscall"
)

// HardenProcess does nothing outside Linux. There, a job running as the bot's user may be able to inspect
// the bot's process; run the bot on Linux, or jobs on another executor, where that matters.
func HardenProcess() error { return nil }

// watchExit reaps the command as soon as it exits: there is no portable way to wait without reaping, so
// killing the process group afterwards carries a tiny risk of reused ids that the Linux version avoids.
func watchExit(cmd *exec.Cmd) (exited <-chan struct{}, reap func() error) {
	ch := make(chan struct{})
	var err error
	go func() {
		defer close(ch)
		err = cmd.Wait()
	}()
	return ch, func() error {
		<-ch
		return err
	}
}

// startJobProcess starts cmd as it is outside Linux.
func startJobProcess(cmd *exec.Cmd, isolated bool) error { return cmd.Start() }

// CanSwitchUsers: running jobs as users of their own is implemented on Linux only.
func CanSwitchUsers() error {
	return errors.New("running jobs as users of their own needs Linux")
}

// clearUser is never called outside Linux (CanSwitchUsers refuses).
func clearUser(uid uint32) bool { return false }

// processStart is not known outside Linux.
func processStart(pid int) uint64 { return 0 }

// stopGroup kills the process group once; outside Linux it cannot tell when the group is gone.
func stopGroup(ctx context.Context, pgid int, leaderStart uint64) error {
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	return nil
}
