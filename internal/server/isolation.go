package server

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/dagctl/dagctl-bot/internal/jobs"
	"github.com/dagctl/dagctl-bot/internal/serverconfig"
)

// jobIsolation is how local jobs, which run pull-request code, are kept from the bot's files and from each other.
type jobIsolation struct {
	// users are the uids jobs run as; nil means the bot's own user.
	users *jobs.Users
	// notIsolated says why jobs run as the bot's user (empty when they do not, or run elsewhere).
	notIsolated string
}

// notIsolatedRisk is what running jobs as the bot's user means, for the warning and /readyz.
const notIsolatedRisk = "pull-request code can read and write the bot's database (the forges' credentials, the " +
	"log-link key, the webhook queue) and read the environment of other running jobs"

// notIsolatedFix is what the operator can do about it.
const notIsolatedFix = "run the bot as root (or with CAP_SETUID, CAP_SETGID, CAP_CHOWN, CAP_DAC_OVERRIDE and " +
	"CAP_KILL) with sqlmesh's Python where other users can reach it, or use the kubernetes executor"

// decideJobIsolation applies DAGCTL_JOB_UIDS: auto isolates when it can and says why not otherwise; an explicit
// range that cannot be honoured is an error; off is off. python is the interpreter jobs run.
func decideJobIsolation(cfg serverconfig.JobUsers, python string) (jobIsolation, error) {
	users := jobs.DefaultUsers
	users.Group = cfg.Group
	switch cfg.Mode {
	case serverconfig.JobUsersOff:
		return jobIsolation{notIsolated: serverconfig.EnvJobUIDs + "=off"}, nil
	case serverconfig.JobUsersRange:
		users.First, users.Last = cfg.First, cfg.Last
	}
	err := jobs.CanSwitchUsers()
	if err == nil {
		err = jobs.ReachableByJobs(python, true)
	}
	if err == nil {
		return jobIsolation{users: &users}, nil
	}
	if cfg.Mode == serverconfig.JobUsersRange {
		return jobIsolation{}, fmt.Errorf("%s=%s: %w", serverconfig.EnvJobUIDs, cfg, err)
	}
	return jobIsolation{notIsolated: err.Error()}, nil
}

// describe is the jobs line of /readyz.
func (i jobIsolation) describe() string {
	switch {
	case i.users != nil:
		return "jobs: isolated: each running job has a uid of its own (" + i.users.String() + ")"
	case i.notIsolated != "":
		return "jobs: WARNING: not isolated, they run as the bot's own user (" + i.notIsolated + "): " + notIsolatedRisk
	}
	return ""
}

// prepareDatabaseDir makes sure that jobs running as other users cannot reach the database: its directory is
// the bot's alone (mode 0700, created so if missing), no directory above it lets every user replace it, and
// nothing a job needs (its work directory, sqlmesh) is inside. A directory that is open to others is made
// 0700 only when it holds nothing but the database (chmod-ing a shared directory, such as the working
// directory the default path names, could break whatever else is in it); otherwise the bot refuses to start.
// SQLite's -wal and -shm files live beside the database, so they are covered too.
func prepareDatabaseDir(dbPath string, jobPaths ...string) error {
	abs, err := filepath.Abs(dbPath)
	if err != nil {
		return err
	}
	dir, base := filepath.Split(abs)
	dir = filepath.Clean(dir)
	for _, p := range jobPaths {
		if within(dir, p) {
			return fmt.Errorf("%s is inside the database's directory %s: jobs must reach it, and must not reach the database; put them apart (%s, %s)",
				p, dir, serverconfig.EnvDB, serverconfig.EnvWorkDir)
		}
	}
	info, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("creating the database's directory: %w", err)
		}
		info, err = os.Stat(dir)
	}
	if err != nil {
		return fmt.Errorf("the database's directory: %w", err)
	}
	fix := fmt.Sprintf("put the database in a directory of its own (%s=%s, created with mode 0700) or make %s the bot's alone (chmod 700)",
		serverconfig.EnvDB, filepath.Join(dir, "dagctl-data", base), dir)
	switch {
	case !info.IsDir():
		return fmt.Errorf("the database's directory %s is not a directory", dir)
	case !ownedByMe(info):
		return fmt.Errorf("the database's directory %s belongs to another user: %s", dir, fix)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		if !onlyDatabaseFiles(dir, base) {
			return fmt.Errorf("the database's directory %s is open to other users (mode %04o) and holds more than the database; jobs run pull-request code as other users and must not reach the database and its credentials: %s",
				dir, perm, fix)
		}
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("making the database's directory private: %w", err)
		}
	}
	for parent := filepath.Dir(dir); ; parent = filepath.Dir(parent) {
		pinfo, err := os.Stat(parent)
		if err != nil {
			return err
		}
		if m := pinfo.Mode(); m.Perm()&0o002 != 0 && m&fs.ModeSticky == 0 {
			return fmt.Errorf("%s, above the database's directory, is writable by every user (mode %04o): a job could replace the directory; %s",
				parent, m.Perm(), fix)
		}
		if parent == filepath.Dir(parent) {
			return nil
		}
	}
}

// onlyDatabaseFiles reports whether dir holds nothing but the database named base and SQLite's files beside it.
func onlyDatabaseFiles(dir, base string) bool {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		switch strings.TrimPrefix(e.Name(), base) {
		case "", "-wal", "-shm", "-journal":
		default:
			return false
		}
	}
	return true
}

func ownedByMe(info fs.FileInfo) bool {
	st, ok := info.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == os.Geteuid()
}

// within reports whether path is dir or inside it.
func within(dir, path string) bool {
	abs, err := filepath.Abs(path)
	if err != nil {
		return false
	}
	rel, err := filepath.Rel(dir, abs)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}
