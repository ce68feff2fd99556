package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// A local job's processes die with the bot only when the bot stops them (Shutdown). A bot killed with SIGKILL
// leaves them running, so each running process of a job is recorded in the work directory (its group, the
// leader's start time, the job's uid and scratch directory), and the next process's Attach stops what is left
// before it says the job is gone: an apply is then reported interrupted, and its lock released, only once
// nothing of it runs.

// leftover is what a running local job's record holds.
type leftover struct {
	PGID    int    `json:"pgid"`
	Start   uint64 `json:"start"` // the leader's start time (clock ticks since boot), against a reused pid
	UID     uint32 `json:"uid,omitempty"`
	Scratch string `json:"scratch"`
}

// leftoverStopWait bounds how long Attach waits for a dead bot's job to be gone.
const leftoverStopWait = 30 * time.Second

// recordFile is a job's record in the work directory; "" for an id that is not one of this executor's.
func (l *Local) recordFile(id string) string {
	if !strings.HasPrefix(id, "local-") || strings.ContainsAny(id, `/\`) || strings.Contains(id, "..") {
		return ""
	}
	return filepath.Join(l.workDir, id+".running")
}

// writeRecord records the job's running process group.
func (j *localJob) writeRecord(pgid int) {
	if j.record == "" {
		return
	}
	rec := leftover{PGID: pgid, Start: processStart(pgid), Scratch: j.scratch}
	if j.user != nil {
		rec.UID = j.user.uid
	}
	body, _ := json.Marshal(rec)
	if err := os.WriteFile(j.record, body, 0o600); err != nil {
		j.emit("stderr", "dagctl: recording the job's processes: "+err.Error())
	}
}

// stopLeftover stops what a previous process of the bot left running of the job id, and removes its scratch
// directory. It returns an error only when something of the job may still run.
func (l *Local) stopLeftover(ctx context.Context, id string) error {
	path := l.recordFile(id)
	if path == "" {
		return nil
	}
	l.mu.Lock()
	_, ours := l.running[id]
	l.mu.Unlock()
	if ours {
		return nil // started by this process: not a leftover
	}
	body, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading the record of job %s: %w", id, err)
	}
	var rec leftover
	if err := json.Unmarshal(body, &rec); err != nil || rec.PGID <= 1 {
		_ = os.Remove(path)
		return nil // nothing that names a process
	}
	ctx, cancel := context.WithTimeout(ctx, leftoverStopWait)
	defer cancel()
	if err := stopGroup(ctx, rec.PGID, rec.Start); err != nil {
		return fmt.Errorf("stopping job %s left by a previous process: %w", id, err)
	}
	if rec.UID != 0 && !clearUser(rec.UID) {
		return fmt.Errorf("stopping job %s left by a previous process: processes of uid %d are still running", id, rec.UID)
	}
	if rec.Scratch != "" && filepath.Dir(rec.Scratch) == l.workDir {
		_ = removeScratch(rec.Scratch)
	}
	_ = os.Remove(path)
	return nil
}
