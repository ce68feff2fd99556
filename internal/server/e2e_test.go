package server_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/forgetest"
	"github.com/dagctl/dagctl-bot/internal/forgetest/e2e"
	"github.com/dagctl/dagctl-bot/internal/testutil"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// nonBreaking adds a column to customer_totals: a non-breaking change whose downstream view is indirectly
// modified.
var nonBreaking = testutil.NonBreakingChange

func TestPullRequestGetsPlanChecksAndStickyComment(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		w := newWorld(t, forge, worldOptions{seedProd: true})
		head := w.PR(1, "more-columns", "alice", nonBreaking)
		d := w.send(w.PREvent(vcs.PROpened, 1))
		assert.Equal(t, 202, d.Status)

		for _, env := range []string{"prod", "dev"} {
			check, ok := w.Status("dagctl/plan: "+env, head)
			require.True(t, ok, "no check for %s; checks: %v", env, w.Statuses())
			assertLifecycle(t, check.History, vcs.StatusSuccess, env)
			assert.Equal(t, vcs.StatusSuccess, check.State, env)
			assert.Contains(t, check.DetailsURL, publicURL+"/runs/", env)
			if w.Can(forgetest.StatusOutput) {
				assert.Contains(t, check.Summary, "dagctl_example.customer_totals", env)
			}
		}
		prod, _ := w.Status("dagctl/plan: prod", head)
		if w.Can(forgetest.StatusOutput) { // elsewhere the plan is the sticky comment's alone
			assert.Contains(t, prod.Summary, "Non-breaking")
			assert.Contains(t, prod.Summary, "dagctl_example.top_customers", "the downstream view is indirectly modified")
		}

		comments := w.Comments(1)
		require.Len(t, comments, 1, "one sticky comment")
		body := w.normalize(w.Sticky(1), map[string]string{head: "head", w.Base: "base"})
		golden(t, "pr_opened_non_breaking.md", body)

		// The log link works and shows the real sqlmesh output.
		resp := httpGet(t, prod.DetailsURL, w)
		assert.Contains(t, resp, "dagctl_example.customer_totals")
	})
}

// golden compares got with testdata/name; DAGCTL_UPDATE_GOLDEN=1 rewrites it.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if os.Getenv("DAGCTL_UPDATE_GOLDEN") != "" {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "missing golden file: run `make golden`")
	assert.Equal(t, string(want), got)
}

// httpGet fetches a bot URL (links point at the public URL; the test server answers them) as a person who may
// read the repository, signing in with the forge on the way.
func httpGet(t *testing.T, url string, w *world) string {
	t.Helper()
	w.SetPermission("log-reader", vcs.PermissionRead)
	w.SignIn("log-reader")
	resp, body := w.browser().get(url + "?format=text")
	require.Equal(t, 200, resp.StatusCode, body)
	return body
}
