package jobs

import (
	"errors"
	"fmt"
	"sync"
)

// Users are the identities the local executor runs jobs as: each running job gets a uid of the range that no
// other running job has, with a group of the same number, so that PR code can read neither the bot's files nor
// another job's (its environment in /proc, its checkout).
type Users struct {
	// First and Last bound the uid range, inclusive. The ids need no passwd entries; no other user or process
	// on the machine (another bot included) may use them.
	First, Last uint32
	// Group, when not 0, is a supplementary group of every job: the one way for jobs to share files on purpose
	// (a setgid directory of that group, such as a local DuckDB warehouse's). Jobs create files with umask 007.
	Group uint32
}

// DefaultUsers is the uid range a bot that can switch users runs jobs as unless told otherwise.
var DefaultUsers = Users{First: 20000, Last: 20999}

func (u Users) String() string {
	s := fmt.Sprintf("uids %d-%d", u.First, u.Last)
	if u.Group != 0 {
		s += fmt.Sprintf(", group %d", u.Group)
	}
	return s
}

// validate refuses ranges that would give a job the bot's identity or root's.
func (u Users) validate(botUID, botGID int) error {
	in := func(id int) bool { return id >= 0 && uint32(id) >= u.First && uint32(id) <= u.Last }
	switch {
	case u.First == 0 || u.First > u.Last:
		return fmt.Errorf("job uid range %d-%d must be non-empty and must not contain 0", u.First, u.Last)
	case u.Last > 1<<31-2:
		return fmt.Errorf("job uid range %d-%d is past the largest uid", u.First, u.Last)
	case in(botUID) || in(botGID):
		return fmt.Errorf("job uid range %d-%d contains the bot's own uid %d or gid %d", u.First, u.Last, botUID, botGID)
	case u.Group != 0 && (int(u.Group) == botGID || (u.Group >= u.First && u.Group <= u.Last)):
		return fmt.Errorf("job group %d must be neither the bot's group nor in the job uid range", u.Group)
	}
	return nil
}

// errNoFreeUser means every uid of the range is taken by a running job.
var errNoFreeUser = errors.New("every job uid is in use: widen the range (DAGCTL_JOB_UIDS) or run fewer jobs at once")

// userPool hands each running job a uid of its own. It goes round the range rather than reusing the lowest
// free uid, so that a uid comes back as late as possible (files a job left in /tmp stay its uid's).
type userPool struct {
	users Users
	// clear kills whatever still runs as a uid and reports whether none is left; a uid is handed out only then.
	clear func(uid uint32) bool

	mu    sync.Mutex
	inUse map[uint32]bool
	next  uint32
}

func newUserPool(u Users, clear func(uint32) bool) *userPool {
	return &userPool{users: u, clear: clear, inUse: map[uint32]bool{}, next: u.First}
}

// acquire returns a uid no running job has and no process runs as.
func (p *userPool) acquire() (uint32, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	size := uint64(p.users.Last) - uint64(p.users.First) + 1
	for i := uint64(0); i < size; i++ {
		uid := p.next
		if p.next == p.users.Last {
			p.next = p.users.First
		} else {
			p.next++
		}
		if p.inUse[uid] {
			continue
		}
		// A process left by an earlier job (or a bot that crashed) would share the uid with the new job.
		if !p.clear(uid) {
			continue
		}
		p.inUse[uid] = true
		return uid, nil
	}
	return 0, errNoFreeUser
}

func (p *userPool) release(uid uint32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.inUse, uid)
}
