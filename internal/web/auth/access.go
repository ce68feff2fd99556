package auth

import (
	"container/list"
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// User is who signed in: the forge's numeric account id is the identity (a login can be renamed and taken by
// someone else); the login is what pages show and what GitHub's permission API is asked about.
type User struct {
	Forge string `json:"f"`
	ID    int64  `json:"i"`
	Login string `json:"l"`
}

// GitLabReporter is the lowest GitLab access level that reads a private project's code and pipelines.
const GitLabReporter = 20

// Facts are what a forge says, asked with the bot's credentials, about a user's access to a repository.
type Facts struct {
	// Permission is GitHub's folded permission of the user's login on the repository.
	Permission vcs.Permission
	// AccountID is the account GitHub answered the permission for (0: not said): it must be the session's.
	AccountID int64
	// AccessLevel is the user's GitLab access level in the project, inherited from groups included (0: none).
	AccessLevel int
	// Public is a GitLab project whose visibility is public: anyone signed in reads it.
	Public bool
}

// Decision is whether a user may read a repository's pages, and why (for the log, never for the page).
type Decision struct {
	Allowed bool
	Reason  string
}

// Decide is the read rule. GitHub: read, write or admin permission of the same account. GitLab: Reporter or
// more, or a public project. A user of one forge reads nothing of another's.
func Decide(u User, repo vcs.Repo, f Facts) Decision {
	if u.Forge != repo.Forge {
		return Decision{false, "signed in with " + u.Forge + ", the repository is on " + repo.Forge}
	}
	switch repo.Forge {
	case "github":
		if f.AccountID != u.ID {
			return Decision{false, "the permission answered is of another account (a renamed login)"}
		}
		switch f.Permission {
		case vcs.PermissionRead, vcs.PermissionWrite, vcs.PermissionAdmin:
			return Decision{true, "permission " + string(f.Permission)}
		}
		return Decision{false, "no permission on the repository"}
	case "gitlab":
		switch {
		case f.AccessLevel >= GitLabReporter:
			return Decision{true, "access level " + strconv.Itoa(f.AccessLevel)}
		case f.Public:
			return Decision{true, "public project"}
		}
		return Decision{false, "access level below Reporter on a project that is not public"}
	}
	return Decision{false, "no read rule for forge " + repo.Forge}
}

// FactsReader asks a forge, with the bot's credentials, what Decide needs.
type FactsReader interface {
	ReadFacts(ctx context.Context, repo vcs.Repo, u User) (Facts, error)
}

// Cache bounds and defaults.
const (
	DefaultAllowTTL   = 5 * time.Minute
	DefaultDenyTTL    = 30 * time.Second
	DefaultMaxEntries = 10000
)

// Access answers MayRead through the forge, remembering each answer for a while: allowed for AllowTTL (a
// revoked member keeps reading for that long at most), refused for DenyTTL (a new member waits that long).
// Errors are not remembered. At most MaxEntries answers are kept, the least recently used dropped first.
type Access struct {
	Facts      FactsReader
	Now        func() time.Time
	AllowTTL   time.Duration
	DenyTTL    time.Duration
	MaxEntries int

	mu      sync.Mutex
	entries map[string]*list.Element
	order   *list.List // front: most recently used
}

type cached struct {
	key      string
	decision Decision
	until    time.Time
}

// MayRead decides whether u may read repo's pages.
func (a *Access) MayRead(ctx context.Context, u User, repo vcs.Repo) (Decision, error) {
	now := a.now()
	key := u.Forge + "\x00" + strconv.FormatInt(u.ID, 10) + "\x00" + u.Login + "\x00" + repo.Forge + "\x00" +
		strings.ToLower(repo.FullName())
	if d, ok := a.lookup(key, now); ok {
		return d, nil
	}
	var facts Facts
	if u.Forge == repo.Forge {
		var err error
		if facts, err = a.Facts.ReadFacts(ctx, repo, u); err != nil {
			return Decision{}, err
		}
	}
	d := Decide(u, repo, facts)
	ttl := a.AllowTTL
	if ttl <= 0 {
		ttl = DefaultAllowTTL
	}
	if !d.Allowed {
		if ttl = a.DenyTTL; ttl <= 0 {
			ttl = DefaultDenyTTL
		}
	}
	a.store(key, d, now.Add(ttl))
	return d, nil
}

// Len is how many answers are kept.
func (a *Access) Len() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.order == nil {
		return 0
	}
	return a.order.Len()
}

func (a *Access) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

func (a *Access) lookup(key string, now time.Time) (Decision, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	el, ok := a.entries[key]
	if !ok {
		return Decision{}, false
	}
	c := el.Value.(*cached)
	if !now.Before(c.until) {
		a.order.Remove(el)
		delete(a.entries, key)
		return Decision{}, false
	}
	a.order.MoveToFront(el)
	return c.decision, true
}

func (a *Access) store(key string, d Decision, until time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.entries == nil {
		a.entries, a.order = map[string]*list.Element{}, list.New()
	}
	if el, ok := a.entries[key]; ok {
		el.Value = &cached{key, d, until}
		a.order.MoveToFront(el)
		return
	}
	a.entries[key] = a.order.PushFront(&cached{key, d, until})
	limit := a.MaxEntries
	if limit <= 0 {
		limit = DefaultMaxEntries
	}
	for a.order.Len() > limit {
		oldest := a.order.Back()
		a.order.Remove(oldest)
		delete(a.entries, oldest.Value.(*cached).key)
	}
}
