package setup

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/testutil"
)

func TestManifestJSONFromTheShippedManifest(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(testutil.RepoRoot(), "app-manifest.yml"))
	require.NoError(t, err)
	out, err := ManifestJSON(raw, "https://bot.example.com/")
	require.NoError(t, err)
	var m struct {
		Name           string            `json:"name"`
		Public         bool              `json:"public"`
		RedirectURL    string            `json:"redirect_url"`
		HookAttributes map[string]any    `json:"hook_attributes"`
		Permissions    map[string]string `json:"default_permissions"`
		Events         []string          `json:"default_events"`
	}
	require.NoError(t, json.Unmarshal(out, &m))
	assert.Equal(t, "dagctl-bot", m.Name)
	assert.False(t, m.Public)
	assert.Equal(t, "https://bot.example.com/setup/callback", m.RedirectURL)
	assert.Equal(t, "https://bot.example.com/webhooks/github", m.HookAttributes["url"])
	assert.Equal(t, map[string]string{"checks": "write", "pull_requests": "write", "issues": "write", "contents": "read", "metadata": "read", "members": "read"}, m.Permissions)
	assert.ElementsMatch(t, []string{"pull_request", "pull_request_review", "issue_comment", "push", "check_run"}, m.Events)
}

func TestStatesAreSingleUse(t *testing.T) {
	h := &Handler{}
	s := h.newState()
	assert.True(t, h.takeState(s))
	assert.False(t, h.takeState(s), "a state must not be usable twice")
	assert.False(t, h.takeState("forged"))
}

func TestTheFlowStartsOnlyWithTheSetupCode(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(testutil.RepoRoot(), "app-manifest.yml"))
	require.NoError(t, err)
	code := NewCode()
	h := &Handler{SetupCode: code, PublicURL: "https://bot.example.com", WebURL: "https://github.com/", Manifest: raw,
		Configured: func() bool { return false }}
	start := func(query string) int {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/setup"+query, nil))
		return rec.Code
	}
	assert.Equal(t, http.StatusForbidden, start(""))
	assert.Equal(t, http.StatusForbidden, start("?setup_code="+NewCode()))
	assert.Equal(t, http.StatusOK, start("?setup_code="+code))
	assert.Equal(t, http.StatusOK, start("?setup_code="+code), "usable until an app is set up")
	h.forgetCode() // what a successful callback does
	assert.Equal(t, http.StatusForbidden, start("?setup_code="+code))
	assert.Equal(t, http.StatusForbidden, start("?setup_code="), "no code is no code")
	assert.NotEqual(t, NewCode(), NewCode())
}
