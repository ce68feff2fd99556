package gitlabfake

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/dagctl/dagctl-bot/internal/forgetest/oauthfake"
)

// User is a GitLab account.
type User struct {
	ID       int64
	Username string
	Name     string
	// PublicEmail is what any user sees; Email only an admin does. Commits are matched by either.
	PublicEmail string
	Email       string
	Bot         bool
}

// Scopes of personal, project and group access tokens.
const (
	ScopeAPI            = "api"
	ScopeReadAPI        = "read_api"
	ScopeReadRepository = "read_repository"
)

type tokenState struct {
	userID int64
	scopes []string
}

func (t *tokenState) has(scope string) bool {
	for _, s := range t.scopes {
		if s == scope {
			return true
		}
	}
	return false
}

// AddUser registers an account (username unique, case-insensitively) and returns it with its id.
func (f *Fake) AddUser(u User) User {
	f.mu.Lock()
	defer f.mu.Unlock()
	if have := f.userByName(u.Username); have != nil {
		return *have
	}
	u.ID = f.newID()
	if u.Name == "" {
		u.Name = u.Username
	}
	f.users[u.ID] = &u
	return u
}

// User is the account with this username.
func (f *Fake) User(username string) (User, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u := f.userByName(username)
	if u == nil {
		return User{}, false
	}
	return *u, true
}

func (f *Fake) userByName(username string) *User {
	for _, u := range f.users {
		if strings.EqualFold(u.Username, username) {
			return u
		}
	}
	return nil
}

// user is the account of a username, created when missing. Callers hold f.mu.
func (f *Fake) user(username string) *User {
	if u := f.userByName(username); u != nil {
		return u
	}
	u := &User{ID: f.newID(), Username: username, Name: username}
	f.users[u.ID] = u
	return u
}

// AddToken issues a token for username (created when missing) with scopes (default api) and returns it.
func (f *Fake) AddToken(username string, scopes ...string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(scopes) == 0 {
		scopes = []string{ScopeAPI}
	}
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	token := "glpat-" + hex.EncodeToString(b)
	f.tokens[token] = &tokenState{userID: f.user(username).ID, scopes: scopes}
	return token
}

// RevokeToken makes a token unknown: it gets 401.
func (f *Fake) RevokeToken(token string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.tokens, token)
}

// apiUser is the user of a request's PRIVATE-TOKEN or Authorization: Bearer token, and whether its scopes allow
// the API (reads need read_api or api, writes api). Callers hold f.mu.
func (f *Fake) apiUser(r *http.Request) (*User, bool) {
	token := r.Header.Get("PRIVATE-TOKEN")
	if token == "" {
		if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") {
			token = strings.TrimPrefix(h, "Bearer ")
		}
	}
	t, ok := f.tokens[token]
	if token == "" {
		return nil, false
	}
	if !ok {
		// An OAuth token of the sign-in flow reads the current user alone (scope read_user).
		ot, found := f.oauth.TokenUser(token)
		if !found {
			return nil, false
		}
		u := f.userByName(ot.User)
		return u, u != nil && r.Method == http.MethodGet && r.URL.Path == apiPrefix+"/user" && hasScope(ot.Scope, "read_user")
	}
	u := f.users[t.userID]
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return u, t.has(ScopeAPI) || t.has(ScopeReadAPI)
	}
	return u, t.has(ScopeAPI)
}

// Group is a group or subgroup, by its full path ("acme/data").
type Group struct {
	ID       int64
	FullPath string
	members  map[int64]int // user id → access level
}

// group is the group of a full path, created (with its parents) when missing. Callers hold f.mu.
func (f *Fake) group(fullPath string) *Group {
	key := strings.ToLower(fullPath)
	if g, ok := f.groups[key]; ok {
		return g
	}
	if i := strings.LastIndex(fullPath, "/"); i > 0 {
		f.group(fullPath[:i])
	}
	g := &Group{ID: f.newID(), FullPath: fullPath, members: map[int64]int{}}
	f.groups[key] = g
	return g
}

// parents are a group and its ancestors, nearest first. Callers hold f.mu.
func (f *Fake) parents(fullPath string) []*Group {
	var out []*Group
	for p := fullPath; p != ""; {
		if g, ok := f.groups[strings.ToLower(p)]; ok {
			out = append(out, g)
		}
		i := strings.LastIndex(p, "/")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return out
}

// SetGroupMember sets user's access level in a group (created when missing); 0 removes the membership.
// Members of a group are members of its subgroups and projects, at the highest level they hold (GitLab's
// inherited membership, what /members/all lists).
func (f *Fake) SetGroupMember(fullPath, username string, level int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	g, u := f.group(fullPath), f.user(username)
	if level == 0 {
		delete(g.members, u.ID)
		return
	}
	g.members[u.ID] = level
}

// groupLevel is a user's level in a group, inherited from its ancestors. Callers hold f.mu.
func (f *Fake) groupLevel(fullPath string, userID int64) int {
	level := 0
	for _, g := range f.parents(fullPath) {
		level = max(level, g.members[userID])
	}
	return level
}

// Project is a project backed by a git directory.
type Project struct {
	ID            int64
	Namespace     string // the group's full path ("acme/data") or a user's namespace
	Path          string
	DefaultBranch string
	gitDir        string
	f             *Fake
	forkedFrom    int64
	members       map[int64]int
	visibility    string // "" is private
	// ResetApprovalsOnPush: a push to a merge request's source branch removes its approvals (the project's
	// "Remove all approvals when commits are added" setting).
	resetApprovalsOnPush bool

	mrs       map[int64]*MR
	nextIID   int64
	statuses  []*CommitStatus
	pipelines []*pipeline
}

// AddProject registers a project at namespace/path backed by gitDir (a work tree or bare repository).
func (f *Fake) AddProject(namespace, path, gitDir, defaultBranch string) *Project {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.group(namespace)
	p := &Project{ID: f.newID(), Namespace: namespace, Path: path, DefaultBranch: defaultBranch, gitDir: gitDir, f: f,
		members: map[int64]int{}, mrs: map[int64]*MR{}}
	f.projects[p.ID] = p
	return p
}

// Fork registers a fork of p at namespace/path, backed by gitDir.
func (p *Project) Fork(namespace, path, gitDir string) *Project {
	fork := p.f.AddProject(namespace, path, gitDir, p.DefaultBranch)
	p.f.mu.Lock()
	fork.forkedFrom = p.ID
	p.f.mu.Unlock()
	return fork
}

// FullPath is namespace/path.
func (p *Project) FullPath() string { return p.Namespace + "/" + p.Path }

// CloneURL is where git clones the project over HTTP.
func (p *Project) CloneURL() string { return p.f.URL() + "/" + p.FullPath() + ".git" }

// WebURL is the project's page.
func (p *Project) WebURL() string { return p.f.URL() + "/" + p.FullPath() }

// SetMember sets user's access level in the project itself; 0 removes the membership.
func (p *Project) SetMember(username string, level int) {
	p.f.mu.Lock()
	defer p.f.mu.Unlock()
	u := p.f.user(username)
	if level == 0 {
		delete(p.members, u.ID)
		return
	}
	p.members[u.ID] = level
}

// SetResetApprovalsOnPush sets the project's "Remove all approvals when commits are added" setting.
func (p *Project) SetResetApprovalsOnPush(on bool) {
	p.f.mu.Lock()
	defer p.f.mu.Unlock()
	p.resetApprovalsOnPush = on
}

// level is a user's access to the project: its own membership or what its groups give. Callers hold f.mu.
func (p *Project) level(userID int64) int {
	return max(p.members[userID], p.f.groupLevel(p.Namespace, userID))
}

// project finds a project by numeric id or full path (case-insensitive). Callers hold f.mu.
func (f *Fake) project(id string) *Project {
	if n, err := strconv.ParseInt(id, 10, 64); err == nil {
		return f.projects[n]
	}
	for _, p := range f.projects {
		if strings.EqualFold(p.FullPath(), id) {
			return p
		}
	}
	return nil
}

// projectFor is the request's {id} project, visible to the caller (a member, at least a guest), or a 404
// written. Callers hold f.mu.
func (f *Fake) projectFor(w http.ResponseWriter, r *http.Request) (*Project, bool) {
	p := f.project(r.PathValue("id"))
	if p == nil || p.level(caller(r).ID) == 0 {
		notFound(w, "Project")
		return nil, false
	}
	return p, true
}

// stamp is the fake's now (each call a millisecond later than the last, so times order events).
func (f *Fake) stamp() time.Time {
	f.now = f.now.Add(time.Millisecond)
	return f.now
}

func userJSON(u *User) map[string]any {
	if u == nil {
		return nil
	}
	return map[string]any{"id": u.ID, "username": u.Username, "name": u.Name, "state": "active",
		"web_url": "https://gitlab.test/" + u.Username, "bot": u.Bot}
}

func hasScope(scopes, want string) bool {
	for _, s := range strings.Fields(scopes) {
		if s == want {
			return true
		}
	}
	return false
}

// OAuth is the fake's user sign-in (/oauth/authorize and /oauth/token of URL): register an application's id,
// secret and callback URL with AddClient, and the user the browser is signed in as with SignIn. Its tokens read
// GET /api/v4/user when they have the read_user scope, and nothing else.
func (f *Fake) OAuth() *oauthfake.Server { return f.oauth }

// SetVisibility sets the project's visibility: private (the default), internal or public.
func (p *Project) SetVisibility(v string) {
	p.f.mu.Lock()
	defer p.f.mu.Unlock()
	p.visibility = v
}
