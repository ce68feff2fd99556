package auth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/vcs"
)

var (
	ghRepo = vcs.Repo{Forge: "github", Owner: "acme", Name: "warehouse"}
	glRepo = vcs.Repo{Forge: "gitlab", Owner: "acme/data", Name: "warehouse"}
	alice  = User{Forge: "github", ID: 7, Login: "alice"}
	dave   = User{Forge: "gitlab", ID: 9, Login: "dave"}
)

func TestDecide(t *testing.T) {
	for _, tc := range []struct {
		name  string
		user  User
		repo  vcs.Repo
		facts Facts
		want  bool
	}{
		{"github read", alice, ghRepo, Facts{Permission: vcs.PermissionRead, AccountID: 7}, true},
		{"github write", alice, ghRepo, Facts{Permission: vcs.PermissionWrite, AccountID: 7}, true},
		{"github admin", alice, ghRepo, Facts{Permission: vcs.PermissionAdmin, AccountID: 7}, true},
		{"github none", alice, ghRepo, Facts{Permission: vcs.PermissionNone, AccountID: 7}, false},
		{"github unknown login", alice, ghRepo, Facts{Permission: vcs.PermissionNone}, false},
		{"github permission of another account (renamed login)", alice, ghRepo, Facts{Permission: vcs.PermissionAdmin, AccountID: 8}, false},
		{"github permission without an account", alice, ghRepo, Facts{Permission: vcs.PermissionRead}, false},
		{"gitlab reporter", dave, glRepo, Facts{AccessLevel: 20}, true},
		{"gitlab maintainer", dave, glRepo, Facts{AccessLevel: 40}, true},
		{"gitlab guest of a private project", dave, glRepo, Facts{AccessLevel: 10}, false},
		{"gitlab planner of a private project", dave, glRepo, Facts{AccessLevel: 15}, false},
		{"gitlab no member of a public project", dave, glRepo, Facts{Public: true}, true},
		{"gitlab no member of a private project", dave, glRepo, Facts{}, false},
		{"a github user on a gitlab repository", alice, glRepo, Facts{AccessLevel: 50, Public: true}, false},
		{"a gitlab user on a github repository", dave, ghRepo, Facts{Permission: vcs.PermissionAdmin, AccountID: 9}, false},
		{"an unknown forge", User{Forge: "bitbucket", ID: 1}, vcs.Repo{Forge: "bitbucket"}, Facts{Permission: vcs.PermissionAdmin, AccountID: 1, AccessLevel: 50}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := Decide(tc.user, tc.repo, tc.facts)
			assert.Equal(t, tc.want, d.Allowed, d.Reason)
			assert.NotEmpty(t, d.Reason)
		})
	}
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"":                        "/",
		"/runs/5":                 "/runs/5",
		"/runs/5?format=text":     "/runs/5?format=text",
		"//evil.example/x":        "/",
		"/\\evil.example":         "/",
		"https://evil.example/":   "/",
		"evil.example":            "/",
		"javascript:alert(1)":     "/",
		"/login":                  "/",
		"/login/github/callback":  "/",
		"/logout":                 "/",
		"/runs/5\r\nSet-Cookie:x": "/",
		"/%2F%2Fevil.example":     "/%2F%2Fevil.example", // a path of this site, not a host
	} {
		assert.Equal(t, want, SafeNext(in), "%q", in)
	}
}

func key(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func TestSealedCookiesCannotBeReadForgedOrMoved(t *testing.T) {
	s, err := NewSealer(key(1))
	require.NoError(t, err)
	sealed, err := s.Seal(SessionCookie, session{User: alice, Expires: 100})
	require.NoError(t, err)
	assert.NotContains(t, sealed, "alice", "the browser cannot read it")

	var got session
	require.NoError(t, s.Open(SessionCookie, sealed, &got))
	assert.Equal(t, alice, got.User)

	// Any changed byte is refused.
	raw := []byte(sealed)
	for i := range raw {
		tampered := append([]byte(nil), raw...)
		tampered[i] ^= 1
		if string(tampered) == sealed {
			continue
		}
		assert.ErrorIs(t, s.Open(SessionCookie, string(tampered), &got), ErrInvalid, "byte %d", i)
	}
	assert.ErrorIs(t, s.Open(LoginCookie, sealed, &got), ErrInvalid, "sealed for another purpose")
	assert.ErrorIs(t, s.Open(SessionCookie, "", &got), ErrInvalid)
	assert.ErrorIs(t, s.Open(SessionCookie, "bm90IHNlYWxlZA", &got), ErrInvalid)

	other, err := NewSealer(key(2))
	require.NoError(t, err)
	assert.ErrorIs(t, other.Open(SessionCookie, sealed, &got), ErrInvalid, "another bot's key")

	// Rotation: the new key first, the old one still opens; once removed it does not.
	rotated, err := NewSealer(key(2), key(1))
	require.NoError(t, err)
	require.NoError(t, rotated.Open(SessionCookie, sealed, &got))
	resealed, err := rotated.Seal(SessionCookie, session{User: alice})
	require.NoError(t, err)
	require.NoError(t, other.Open(SessionCookie, resealed, &got), "the new key seals")
	assert.ErrorIs(t, s.Open(SessionCookie, resealed, &got), ErrInvalid)

	_, err = NewSealer([]byte("short"))
	assert.Error(t, err)
	_, err = NewSealer()
	assert.Error(t, err)
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

type countingFacts struct {
	calls int
	facts map[string]Facts // by user login
	err   error
}

func (c *countingFacts) ReadFacts(_ context.Context, _ vcs.Repo, u User) (Facts, error) {
	c.calls++
	return c.facts[u.Login], c.err
}

func TestAccessRemembersAnswersForAWhileAndNotErrors(t *testing.T) {
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	facts := &countingFacts{facts: map[string]Facts{"alice": {Permission: vcs.PermissionRead, AccountID: 7}}}
	a := &Access{Facts: facts, Now: clk.now, AllowTTL: 5 * time.Minute, DenyTTL: 30 * time.Second}
	ctx := context.Background()

	d, err := a.MayRead(ctx, alice, ghRepo)
	require.NoError(t, err)
	assert.True(t, d.Allowed)
	clk.advance(4 * time.Minute)
	d, _ = a.MayRead(ctx, alice, ghRepo)
	assert.True(t, d.Allowed)
	assert.Equal(t, 1, facts.calls, "answered from the cache")

	facts.facts["alice"] = Facts{Permission: vcs.PermissionNone, AccountID: 7} // access revoked
	clk.advance(time.Minute)
	d, _ = a.MayRead(ctx, alice, ghRepo)
	assert.False(t, d.Allowed, "after the allow TTL the forge is asked again")
	assert.Equal(t, 2, facts.calls)

	facts.facts["alice"] = Facts{Permission: vcs.PermissionRead, AccountID: 7} // granted again
	clk.advance(29 * time.Second)
	d, _ = a.MayRead(ctx, alice, ghRepo)
	assert.False(t, d.Allowed, "a refusal is remembered for the deny TTL")
	clk.advance(time.Second)
	d, _ = a.MayRead(ctx, alice, ghRepo)
	assert.True(t, d.Allowed)
	assert.Equal(t, 3, facts.calls)

	// Per repository and per user.
	_, _ = a.MayRead(ctx, alice, vcs.Repo{Forge: "github", Owner: "acme", Name: "other"})
	assert.Equal(t, 4, facts.calls)
	_, _ = a.MayRead(ctx, User{Forge: "github", ID: 8, Login: "alice"}, ghRepo)
	assert.Equal(t, 5, facts.calls, "another account with the same login is asked about by itself")

	// A forge error is no answer: nothing is remembered.
	facts.err = errors.New("forge down")
	bob := User{Forge: "github", ID: 11, Login: "bob"}
	_, err = a.MayRead(ctx, bob, ghRepo)
	require.Error(t, err)
	_, err = a.MayRead(ctx, bob, ghRepo)
	require.Error(t, err)
	assert.Equal(t, 7, facts.calls)

	// Another forge's user is refused without asking.
	facts.err = nil
	d, err = a.MayRead(ctx, dave, ghRepo)
	require.NoError(t, err)
	assert.False(t, d.Allowed)
	assert.Equal(t, 7, facts.calls)
}

func TestAccessKeepsAtMostMaxEntries(t *testing.T) {
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	facts := &countingFacts{facts: map[string]Facts{}}
	a := &Access{Facts: facts, Now: clk.now, MaxEntries: 3}
	ctx := context.Background()
	for i := 0; i < 10; i++ {
		_, err := a.MayRead(ctx, User{Forge: "github", ID: int64(i + 1), Login: fmt.Sprint("u", i)}, ghRepo)
		require.NoError(t, err)
		assert.LessOrEqual(t, a.Len(), 3)
	}
	assert.Equal(t, 3, a.Len())
	// The most recent are kept, the oldest dropped.
	_, _ = a.MayRead(ctx, User{Forge: "github", ID: 10, Login: "u9"}, ghRepo)
	assert.Equal(t, 10, facts.calls)
	_, _ = a.MayRead(ctx, User{Forge: "github", ID: 1, Login: "u0"}, ghRepo)
	assert.Equal(t, 11, facts.calls)
}

func TestSessionCookies(t *testing.T) {
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	s, err := NewSealer(key(3))
	require.NoError(t, err)
	w := &Web{Sealer: s, Secure: true, SessionTTL: time.Hour, Now: clk.now}

	rec := httptest.NewRecorder()
	require.NoError(t, w.startSession(rec, alice))
	cookies := rec.Result().Cookies()
	require.Len(t, cookies, 1)
	c := cookies[0]
	assert.Equal(t, SessionCookie, c.Name)
	assert.True(t, c.HttpOnly)
	assert.True(t, c.Secure)
	assert.Equal(t, http.SameSiteLaxMode, c.SameSite)
	assert.Equal(t, "/", c.Path)
	assert.Equal(t, 3600, c.MaxAge)

	req := httptest.NewRequest(http.MethodGet, "/runs/1", nil)
	req.AddCookie(c)
	u, ok := w.CurrentUser(req)
	require.True(t, ok)
	assert.Equal(t, alice, u)

	clk.advance(time.Hour)
	_, ok = w.CurrentUser(req)
	assert.False(t, ok, "expired: the sealed expiry counts, whatever the browser keeps")

	plain := &Web{Sealer: s, Now: clk.now}
	rec = httptest.NewRecorder()
	require.NoError(t, plain.startSession(rec, alice))
	assert.False(t, rec.Result().Cookies()[0].Secure, "not Secure behind plain http")
	assert.True(t, strings.HasPrefix(rec.Header().Get("Set-Cookie"), SessionCookie+"="))
}
