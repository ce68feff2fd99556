package jobs

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// switchCapabilities are what running jobs as other users takes: start them as another uid (SETUID, SETGID),
// hand them their checkout (CHOWN), remove what they leave (DAC_OVERRIDE) and kill what they leave running
// (KILL). Root has them all.
var switchCapabilities = []struct {
	bit  uint
	name string
}{
	{unix.CAP_CHOWN, "CAP_CHOWN"},
	{unix.CAP_DAC_OVERRIDE, "CAP_DAC_OVERRIDE"},
	{unix.CAP_KILL, "CAP_KILL"},
	{unix.CAP_SETGID, "CAP_SETGID"},
	{unix.CAP_SETUID, "CAP_SETUID"},
}

// CanSwitchUsers reports whether this process can run jobs as other users (see Users); the error says why not.
func CanSwitchUsers() error {
	effective, err := effectiveCapabilities()
	if err != nil {
		return err
	}
	return missingCapabilities(effective)
}

// missingCapabilities names the capabilities of switchCapabilities that the effective set lacks.
func missingCapabilities(effective uint64) error {
	var missing []string
	for _, c := range switchCapabilities {
		if effective&(1<<c.bit) == 0 {
			missing = append(missing, c.name)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("the bot runs as uid %d without %s", os.Geteuid(), strings.Join(missing, ", "))
}

func effectiveCapabilities() (uint64, error) {
	header := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&header, &data[0]); err != nil {
		return 0, fmt.Errorf("capget: %w", err)
	}
	return uint64(data[0].Effective) | uint64(data[1].Effective)<<32, nil
}

// clearUser kills every process running as uid and reports whether none is left. A job's processes can leave
// its process group (setsid, a daemon); with a uid of its own, nothing it started survives it. Signalled
// processes may linger a moment as they die, so it looks again a few times.
func clearUser(uid uint32) bool {
	for round := 0; round < 100; round++ {
		pids := processesOf(uid)
		if len(pids) == 0 {
			return true
		}
		for _, pid := range pids {
			_ = unix.Kill(pid, unix.SIGKILL)
		}
		time.Sleep(time.Duration(min(round+1, 20)) * time.Millisecond)
	}
	return len(processesOf(uid)) == 0
}

// processesOf lists the live processes whose real, effective, saved or file-system uid is uid (zombies hold
// nothing and cannot be killed, so they do not count).
func processesOf(uid uint32) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	want := strconv.FormatUint(uint64(uid), 10)
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		status, err := os.ReadFile("/proc/" + e.Name() + "/status")
		if err != nil {
			continue // gone meanwhile
		}
		if live, uids := statusUIDs(status); live && slices.Contains(uids, want) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// statusUIDs reads a /proc/<pid>/status: whether the process is alive (not a zombie) and its four uids.
func statusUIDs(status []byte) (live bool, uids []string) {
	live = true
	s := bufio.NewScanner(bytes.NewReader(status))
	for s.Scan() {
		line := s.Text()
		if v, ok := strings.CutPrefix(line, "State:"); ok {
			state := strings.TrimSpace(v)
			live = !strings.HasPrefix(state, "Z") && !strings.HasPrefix(state, "X")
		} else if v, ok := strings.CutPrefix(line, "Uid:"); ok {
			uids = strings.Fields(v)
		}
	}
	return live, uids
}
