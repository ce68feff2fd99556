package jobs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// HardenProcess makes the bot's process non-dumpable. Jobs run as the bot's user, and without this a job
// could read the bot's credentials from /proc/<bot pid>/environ (the environment the bot started with,
// whatever it unset since) or from its memory. Core dumps of the bot are disabled as a consequence. NewLocal
// calls it.
func HardenProcess() error {
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_DUMPABLE, 0): %w", err)
	}
	return nil
}

// startJobProcess starts cmd without any Linux capabilities and unable to gain any (no_new_privs), even when
// the bot runs as root: with CAP_SYS_PTRACE a job could read a non-dumpable bot's memory all the same.
// Capabilities belong to threads, so every job is forked from one OS thread that dropped them for good, but
// for CAP_SETUID and CAP_SETGID: the child uses them to become its job's user (cmd.SysProcAttr.Credential),
// which clears every capability, before it executes the command. A job of another user (isolated) starts with
// umask 007, so that what it writes outside its own directory is not the other jobs' to read.
func startJobProcess(cmd *exec.Cmd, isolated bool) error {
	starterOnce.Do(func() {
		starter = make(chan startRequest)
		ready := make(chan error)
		go runStarter(ready)
		starterErr = <-ready
	})
	if starterErr != nil {
		return starterErr
	}
	req := startRequest{cmd: cmd, umask: starterUmask, done: make(chan error, 1)}
	if isolated {
		req.umask = isolatedUmask
	}
	starter <- req
	return <-req.done
}

type startRequest struct {
	cmd   *exec.Cmd
	umask int
	done  chan error
}

// isolatedUmask is the umask of jobs that run as users of their own.
const isolatedUmask = 0o007

var (
	starterOnce sync.Once
	starter     chan startRequest
	starterErr  error
	// starterUmask is the bot's umask, which jobs running as the bot's user keep.
	starterUmask int
)

func runStarter(ready chan<- error) {
	// Never unlocked: the thread keeps its reduced privileges and serves only this goroutine. The runtime
	// creates new threads from a clean template thread while a locked one runs, so none inherits them.
	runtime.LockOSThread()
	// The thread's own umask (and working directory), so that setting a job's umask changes nothing else.
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		ready <- fmt.Errorf("unshare(CLONE_FS) for jobs: %w", err)
		return
	}
	starterUmask = unix.Umask(0o022)
	unix.Umask(starterUmask)
	if err := dropThreadPrivileges(); err != nil {
		ready <- fmt.Errorf("dropping privileges for jobs: %w", err)
		return
	}
	ready <- nil
	for req := range starter {
		unix.Umask(req.umask)
		req.done <- req.cmd.Start()
	}
}

// dropThreadPrivileges leaves the thread only CAP_SETUID and CAP_SETGID (when it had them), with an empty
// bounding set, no inheritable or ambient capabilities and no_new_privs: nothing it executes gets any.
func dropThreadPrivileges() error {
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("no_new_privs: %w", err)
	}
	// The bounding set limits what an exec as root gets; dropping from it needs CAP_SETPCAP, which only a
	// privileged bot has, and only a privileged bot needs it dropped.
	for c := 0; c < 64; c++ {
		err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0)
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EPERM) {
			break // past the kernel's last capability, or nothing to drop
		}
		if err != nil {
			return fmt.Errorf("dropping capability %d from the bounding set: %w", c, err)
		}
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("clearing ambient capabilities: %w", err)
	}
	header := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var caps [2]unix.CapUserData
	if err := unix.Capget(&header, &caps[0]); err != nil {
		return fmt.Errorf("capget: %w", err)
	}
	keep := caps[0].Permitted & (1<<unix.CAP_SETUID | 1<<unix.CAP_SETGID)
	var kept [2]unix.CapUserData // inheritable and the upper 32 capabilities: empty
	kept[0].Effective, kept[0].Permitted = keep, keep
	if err := unix.Capset(&header, &kept[0]); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	return nil
}

// watchExit returns a channel closed when the started command has exited, and a function that then reaps
// it. Between the two the process is a zombie whose id, and so its process group id, cannot be reused: the
// group can be killed without any risk of hitting someone else's processes.
func watchExit(cmd *exec.Cmd) (exited <-chan struct{}, reap func() error) {
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		for {
			var info unix.Siginfo
			err := unix.Waitid(unix.P_PID, cmd.Process.Pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
			if !errors.Is(err, unix.EINTR) {
				return
			}
		}
	}()
	return ch, cmd.Wait
}

// processStart is a process's start time in clock ticks since boot (0 when it is gone): with its pid it names
// one process, as a pid alone may be reused.
func processStart(pid int) uint64 {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	fields := statFields(stat)
	if len(fields) < 20 {
		return 0
	}
	start, _ := strconv.ParseUint(fields[19], 10, 64) // field 22 of stat(5): starttime
	return start
}

// statFields are the fields of a /proc/<pid>/stat after the command's name (which may hold spaces): the
// process's state first.
func statFields(stat []byte) []string {
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 {
		return nil
	}
	return strings.Fields(string(stat[end+1:]))
}

// groupMembers lists the live processes of the process group (zombies hold nothing and cannot be killed).
func groupMembers(pgid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	want := strconv.Itoa(pgid)
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		f := statFields(stat)
		if len(f) > 2 && f[2] == want && f[0] != "Z" && f[0] != "X" {
			pids = append(pids, pid)
		}
	}
	return pids
}

// stopGroup kills a job's process group left by a previous process of the bot and waits until none of it
// lives. The group's number cannot be reused while any member lives, so its members are the job's, unless
// the leader's pid now names another process (a different start time): then the job's group is long gone.
func stopGroup(ctx context.Context, pgid int, leaderStart uint64) error {
	if now := processStart(pgid); now != 0 && leaderStart != 0 && now != leaderStart {
		return nil
	}
	for round := 0; ; round++ {
		if len(groupMembers(pgid)) == 0 {
			return nil
		}
		_ = unix.Kill(-pgid, unix.SIGKILL)
		select {
		case <-ctx.Done():
			return fmt.Errorf("process group %d is still running: %w", pgid, ctx.Err())
		case <-time.After(time.Duration(min(round+1, 20)) * time.Millisecond):
		}
	}
}
