package kubee2e_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dagctl/dagctl-bot/internal/forgetest"
	"github.com/dagctl/dagctl-bot/internal/testutil"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

var logLinkRE = regexp.MustCompile(regexp.QuoteMeta(publicURL) + `/runs/\d+/[0-9a-f]+`)

// A PR is planned in Kubernetes Jobs: the same checks and the same sticky comment as with local processes (the
// main end-to-end suite's golden file), the plan's log reported by the Pod through the bot's /jobs endpoints.
func TestPullRequestIsPlannedInKubernetesJobs(t *testing.T) {
	w := newWorld(t, nil)
	head := w.PR(1, "more-columns", "alice", testutil.NonBreakingChange)
	d := w.send(w.PREvent(vcs.PROpened, 1))
	require.Equal(t, 202, d.Status)

	for _, env := range []string{"prod", "dev"} {
		w.waitForCheck("dagctl/plan: "+env, head, completed)
	}
	w.waitJobs()
	for _, env := range []string{"prod", "dev"} {
		check, _ := w.Status("dagctl/plan: "+env, head)
		// The outbox sends only a status's newest state: queued or running may have been superseded unsent.
		assert.Contains(t, [][]vcs.StatusState{{vcs.StatusQueued, vcs.StatusRunning, vcs.StatusSuccess},
			{vcs.StatusRunning, vcs.StatusSuccess}, {vcs.StatusQueued, vcs.StatusSuccess}, {vcs.StatusSuccess}}, check.History, env)
		assert.Equal(t, vcs.StatusSuccess, check.State, env)
		assert.Contains(t, check.Summary, "dagctl_example.customer_totals", env)
	}
	// Each plan ran in a Job of the bot's, which the job controller completed.
	list, err := cluster.Client.BatchV1().Jobs(w.ns).List(context.Background(), metav1.ListOptions{})
	require.NoError(t, err)
	require.Len(t, list.Items, 2, "one Job per plan")
	for _, job := range list.Items {
		assert.EqualValues(t, 1, job.Status.Succeeded, job.Name)
	}

	require.Len(t, w.Comments(1), 1, "one sticky comment")
	body := w.Sticky(1)
	for sha, name := range map[string]string{head: "head", w.Base: "base"} {
		body = strings.ReplaceAll(body, sha, "<"+name+">")
		body = strings.ReplaceAll(body, sha[:7], "<"+name+"7>")
	}
	body = logLinkRE.ReplaceAllString(body, publicURL+"/runs/<id>/<sig>")
	want, err := os.ReadFile(filepath.Join("..", "testdata", "pr_opened_non_breaking.md"))
	require.NoError(t, err)
	assert.Equal(t, string(want), body, "the sticky comment is the local executor's (internal/server/testdata)")

	// The log holds what the Pod's two containers reported: the checkout, then sqlmesh's output.
	prod, _ := w.Status("dagctl/plan: prod", head)
	log := w.get(prod.DetailsURL + "?format=text")
	assert.Contains(t, log, "dagctl: checking out "+head)
	assert.Contains(t, log, "dagctl_example.customer_totals")
}

// The bot restarts while a plan's Job runs: the new process re-attaches to the Job (it is not run again) and
// finishes the check; dev's plan, lost or queued at the restart, runs after it (the followed Job holds a job
// slot, and the example's DuckDB file takes one writer at a time).
func TestBotRestartMidJobReattachesToTheJob(t *testing.T) {
	w := newWorld(t, nil)
	head := w.PR(1, "more-columns", "alice", testutil.NonBreakingChange)
	require.Equal(t, 202, w.send(w.PREvent(vcs.PROpened, 1)).Status)
	w.waitForCheck("dagctl/plan: prod", head, func(c forgetest.Status) bool { return c.State == vcs.StatusRunning })

	w.close(50 * time.Millisecond) // a deploy: the Job goes on without the bot
	c, _ := w.Status("dagctl/plan: prod", head)
	require.False(t, c.State.Final(), "the restart left the check open")
	w.start()

	w.waitForCheck("dagctl/plan: prod", head, completed)
	w.waitForCheck("dagctl/plan: dev", head, completed)
	w.waitJobs()
	c, _ = w.Status("dagctl/plan: prod", head)
	assert.Equal(t, vcs.StatusSuccess, c.State)
	dev, _ := w.Status("dagctl/plan: dev", head)
	assert.Equal(t, vcs.StatusSuccess, dev.State, dev.Summary)
	assert.Contains(t, c.Summary, "dagctl_example.customer_totals")
	assert.Len(t, w.StatusesNamed("dagctl/plan: prod", head), 1, "the same check run is finished, not a new one")
	list, err := cluster.Client.BatchV1().Jobs(w.ns).List(context.Background(), metav1.ListOptions{
		LabelSelector: "dagctl.dev/environment=prod"})
	require.NoError(t, err)
	assert.Len(t, list.Items, 1, "prod's Job was followed, not run again")
	assert.Contains(t, w.Sticky(1), "Waiting for approval")
	assert.Contains(t, w.Sticky(1), "dagctl_example.top_customers")
}

// get fetches a bot URL (links point at the public URL; the ingress answers them).
// get fetches a bot URL as a person who may read the repository, signing in with the forge on the way (a
// browser's cookie jar; the bot's public URL answered by the ingress).
func (w *world) get(link string) string {
	w.t.Helper()
	w.SetPermission("log-reader", vcs.PermissionRead)
	w.SignIn("log-reader")
	jar, err := cookiejar.New(nil)
	require.NoError(w.t, err)
	public, err := url.Parse(publicURL)
	require.NoError(w.t, err)
	ingress, err := url.Parse(w.ingress.URL)
	require.NoError(w.t, err)
	client := &http.Client{Jar: jar, Transport: roundTrip(func(r *http.Request) (*http.Response, error) {
		if r.URL.Host == public.Host {
			r = r.Clone(r.Context())
			r.URL.Scheme, r.URL.Host = ingress.Scheme, ingress.Host
		}
		return http.DefaultTransport.RoundTrip(r)
	})}
	resp, err := client.Get(link)
	require.NoError(w.t, err)
	defer resp.Body.Close()
	require.Equal(w.t, 200, resp.StatusCode)
	b, err := io.ReadAll(resp.Body)
	require.NoError(w.t, err)
	return string(b)
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
