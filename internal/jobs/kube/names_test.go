package kube

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/dagctl/dagctl-bot/internal/jobs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/util/validation"
)

func TestLabelValuesAreValidAndDistinct(t *testing.T) {
	long := strings.Repeat("a", 100)
	values := []string{"", "acme/warehouse", "feature/ünïcode branch", "-leading.and.trailing_", long, long + "b",
		"0123456789abcdef0123456789abcdef01234567", "run/01JABCDEF: plan of acme/warehouse#42"}
	seen := map[string]string{}
	for _, v := range values {
		got := labelValue(v)
		assert.Empty(t, validation.IsValidLabelValue(got), "%q -> %q", v, got)
		if prev, dup := seen[got]; dup {
			t.Errorf("%q and %q both become %q", prev, v, got)
		}
		seen[got] = v
	}
	assert.Equal(t, "acme-warehouse", labelValue("acme/warehouse"))
	assert.Equal(t, "42", labelValue("42"))
}

func TestJobNamesAreValidPodLabels(t *testing.T) {
	for _, id := range []string{"r1", "RUN_With.Dots/and slashes", strings.Repeat("x", 200), "---"} {
		for _, kind := range []jobs.Kind{jobs.KindPlan, jobs.KindApply} {
			name := jobName(jobs.Spec{RunID: id, Kind: kind})
			assert.Empty(t, validation.IsDNS1123Label(name), name)
			assert.LessOrEqual(t, len(name), 52, name)
			assert.True(t, strings.HasPrefix(name, "dagctl-"+string(kind)+"-"), name)
		}
	}
	assert.NotEqual(t, jobName(jobs.Spec{RunID: "a/b", Kind: jobs.KindPlan}), jobName(jobs.Spec{RunID: "a-b", Kind: jobs.KindPlan}))
}

func TestLabelsKeepTheExecutorsOwn(t *testing.T) {
	l := jobLabels("bot", jobs.Spec{RunID: "r", Kind: jobs.KindApply, Labels: map[string]string{"run-id": "spoofed", "Environment": "prod"}})
	assert.Equal(t, "r", l[LabelRunID])
	assert.Equal(t, "prod", l["dagctl.dev/environment"])
	for k := range l {
		assert.Empty(t, validation.IsQualifiedName(k), k)
	}
}

// The report endpoints authenticate each run's own token, tell a Pod to retry while its run is not followed,
// to stop once it is decided, and drop resent lines.
func TestReportEndpoints(t *testing.T) {
	ns := newNamespace(t)
	b := newBot(t)
	node := startNode(t, ns)
	repo := newGitRepo(t)
	e := b.startExecutor(t, testClient, testConfig(ns, b.server.URL))

	post := func(runID, token, what string, body any) int {
		data, err := json.Marshal(body)
		require.NoError(t, err)
		req := httptest.NewRequest(http.MethodPost, "/jobs/"+pathEscape(runID)+"/"+what, bytes.NewReader(data))
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		e.Handler().ServeHTTP(rec, req)
		return rec.Code
	}
	batch := func(seq int64, texts ...string) linesBatch {
		b := linesBatch{Seq: seq}
		for _, text := range texts {
			b.Lines = append(b.Lines, wireLine{Stream: "stdout", Text: text})
		}
		return b
	}

	runID := "run/with slashes & spaces"
	token := RunToken(testTokenKey, runID)
	assert.Equal(t, http.StatusServiceUnavailable, post(runID, token, "lines", batch(0, "early")), "not followed yet: retry")

	node.Hold(runID)
	var out lineSink
	h, err := e.Start(context.Background(), planSpec(repo, runID, "true"), out.sink)
	require.NoError(t, err)

	assert.Equal(t, http.StatusUnauthorized, post(runID, "wrong", "lines", batch(0, "x")))
	assert.Equal(t, http.StatusUnauthorized, post(runID, RunToken(testTokenKey, "another run"), "lines", batch(0, "x")),
		"a token is worth nothing for another run")
	assert.Equal(t, http.StatusUnauthorized, post(runID, RunToken([]byte("another key 0123456"), runID), "lines", batch(0, "x")))

	assert.Equal(t, http.StatusNoContent, post(runID, token, "lines", batch(0, "one", "two")))
	assert.Equal(t, http.StatusNoContent, post(runID, token, "lines", batch(1, "two", "three")), "a resent batch")
	assert.Equal(t, http.StatusNoContent, post(runID, token, "lines", batch(0, "one")))
	assert.Equal(t, []string{"one", "two", "three"}, out.texts())
	assert.Equal(t, http.StatusBadRequest, post(runID, token, "lines", "not a batch"))

	require.NoError(t, h.Cancel(context.Background()))
	wait(t, h)
	assert.Equal(t, http.StatusGone, post(runID, token, "result", wireResult{ExitCode: 0}), "decided: stop retrying")
}
