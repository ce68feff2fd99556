package oauthfake

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const callback = "https://bot.test/login/x/callback"

func challenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// authorize runs the authorize endpoint and returns the code it sent back (or the answer's status).
func authorize(t *testing.T, s *Server, q url.Values) (string, int) {
	t.Helper()
	rec := httptest.NewRecorder()
	s.Authorize(rec, httptest.NewRequest(http.MethodGet, "/authorize?"+q.Encode(), nil))
	if rec.Code != http.StatusFound {
		return "", rec.Code
	}
	back, err := url.Parse(rec.Header().Get("Location"))
	require.NoError(t, err)
	assert.Equal(t, q.Get("state"), back.Query().Get("state"))
	assert.True(t, strings.HasPrefix(back.String(), callback+"?"))
	return back.Query().Get("code"), rec.Code
}

func exchange(s *Server, form url.Values) (string, string) {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	s.Token(rec, req)
	var body struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error"`
	}
	_ = json.Unmarshal(rec.Body.Bytes(), &body)
	return body.AccessToken, body.Error
}

func TestTheFakeForgeChecksWhatARealOneChecks(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s := New("tok_", func() time.Time { return now })
	s.AddClient("client", "secret", callback)
	q := url.Values{"client_id": {"client"}, "redirect_uri": {callback}, "state": {"st"},
		"code_challenge": {challenge("verifier")}, "code_challenge_method": {"S256"}}

	_, status := authorize(t, s, q)
	assert.Equal(t, http.StatusUnauthorized, status, "nobody signed in to the forge")
	s.SignIn("dave")
	bad := url.Values{}
	for k, v := range q {
		bad[k] = v
	}
	bad.Set("redirect_uri", "https://evil.example/cb")
	_, status = authorize(t, s, bad)
	assert.Equal(t, http.StatusBadRequest, status, "never redirects to an unregistered URL")
	bad.Set("redirect_uri", callback)
	bad.Set("client_id", "other")
	_, status = authorize(t, s, bad)
	assert.Equal(t, http.StatusNotFound, status)

	form := func(code string) url.Values {
		return url.Values{"client_id": {"client"}, "client_secret": {"secret"}, "code": {code},
			"redirect_uri": {callback}, "code_verifier": {"verifier"}, "grant_type": {"authorization_code"}}
	}
	for name, change := range map[string]func(url.Values){
		"a wrong secret":       func(f url.Values) { f.Set("client_secret", "guess") },
		"another redirect_uri": func(f url.Values) { f.Set("redirect_uri", callback+"2") },
		"a wrong verifier":     func(f url.Values) { f.Set("code_verifier", "other") },
		"an unknown code":      func(f url.Values) { f.Set("code", "nope") },
	} {
		code, _ := authorize(t, s, q)
		f := form(code)
		change(f)
		token, errCode := exchange(s, f)
		assert.Empty(t, token, name)
		assert.NotEmpty(t, errCode, name)
	}

	code, _ := authorize(t, s, q)
	token, errCode := exchange(s, form(code))
	require.Empty(t, errCode)
	tk, ok := s.TokenUser(token)
	require.True(t, ok)
	assert.Equal(t, "dave", tk.User)
	_, errCode = exchange(s, form(code))
	assert.Equal(t, "invalid_grant", errCode, "a code is redeemed once")

	code, _ = authorize(t, s, q)
	now = now.Add(CodeTTL)
	_, errCode = exchange(s, form(code))
	assert.Equal(t, "invalid_grant", errCode, "an expired code")
}
