package githubfake

import (
	"net/http"
	"strings"

	"github.com/dagctl/dagctl-bot/internal/forgetest/oauthfake"
)

// OAuth is the fake's user sign-in (GitHub's web flow at /login/oauth/authorize and /login/oauth/access_token of
// URL): register a GitHub App's client id, secret and callback URL with AddClient, and the user the browser is
// signed in as with SignIn. Its tokens are user tokens for GET /user.
func (f *Fake) OAuth() *oauthfake.Server { return f.oauth }

// UserID is the stable numeric id of a login, as GET /user and the permission API answer it.
func (f *Fake) UserID(login string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.userID(login)
}

// RenameUser gives the account of from the login to, as a rename on GitHub does: its id stays, and the old login
// is free for another account (which gets a new id when it is used).
func (f *Fake) RenameUser(from, to string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := f.userID(from)
	delete(f.users, strings.ToLower(from))
	f.users[strings.ToLower(to)] = id
}

// handleCurrentUser is GET /user with a user token of the OAuth flow.
func (f *Fake) handleCurrentUser(w http.ResponseWriter, r *http.Request) {
	token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if t, found := strings.CutPrefix(r.Header.Get("Authorization"), "token "); found {
		token = t
	}
	t, ok := f.oauth.TokenUser(token)
	if !ok {
		writeError(w, http.StatusUnauthorized, "Bad credentials", "https://docs.github.com/rest")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	rateHeaders(w, f.now)
	writeJSON(w, http.StatusOK, f.userJSON(t.User, false))
}
