package web

import (
	"context"
	"strings"
)

// RepoRef names a repository on a forge: its forge ("github", "gitlab") and full name ("owner/name", a GitLab
// group path included). Forges compare names case-insensitively, and so does Key.
type RepoRef struct {
	Forge    string
	FullName string
}

// Key is the reference in one spelling, for sets.
func (r RepoRef) Key() string { return strings.ToLower(r.Forge + ":" + r.FullName) }

func (r RepoRef) String() string { return r.Forge + ":" + r.FullName }

// Viewer is who looks at a page. Pages show a repository's names, runs and logs only to a viewer who signed in
// and may read that repository; everyone else sees counts. Sign-in supplies the signed-in viewers; until a
// request carries one, its viewer is Anonymous.
type Viewer interface {
	// Login is the signed-in user's name on the forge, "" for a visitor who has not signed in.
	Login() string
	// MayRead reports whether the viewer may read repo, as the forge says. It fails closed: false when the
	// forge cannot be asked.
	MayRead(ctx context.Context, repo RepoRef) bool
}

// Anonymous is a visitor who has not signed in: it may read nothing.
type Anonymous struct{}

func (Anonymous) Login() string                         { return "" }
func (Anonymous) MayRead(context.Context, RepoRef) bool { return false }

// Access is what a viewer may see of a page's repositories, decided before the page is built so that building
// it is plain Go over plain data.
type Access struct {
	Login    string
	readable map[string]bool // by RepoRef.Key
}

// AccessOf asks the viewer once about each repository of repos. An anonymous viewer is not asked.
func AccessOf(ctx context.Context, v Viewer, repos []RepoRef) Access {
	a := Access{Login: v.Login(), readable: map[string]bool{}}
	if a.Login == "" {
		return a
	}
	for _, r := range repos {
		k := r.Key()
		if _, asked := a.readable[k]; !asked {
			a.readable[k] = v.MayRead(ctx, r)
		}
	}
	return a
}

// AccessTo is the access of a signed-in login who may read exactly repos (tests, and callers that know).
func AccessTo(login string, repos ...RepoRef) Access {
	a := Access{Login: login, readable: map[string]bool{}}
	for _, r := range repos {
		a.readable[r.Key()] = true
	}
	return a
}

// SignedIn reports whether the viewer signed in.
func (a Access) SignedIn() bool { return a.Login != "" }

// MayRead reports whether the viewer may see repo's content: only a signed-in viewer, and only what the forge
// lets it read.
func (a Access) MayRead(repo RepoRef) bool { return a.SignedIn() && a.readable[repo.Key()] }
