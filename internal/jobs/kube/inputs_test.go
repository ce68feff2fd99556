package kube

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dagctl/dagctl-bot/internal/jobs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The init container fetches the job's inputs from the bot over the run's report channel (a manifest can be
// over the 1 MiB a ConfigMap holds) into a volume the job container mounts read-only.
func TestAJobGetsItsInputsFromTheBot(t *testing.T) {
	ns := newNamespace(t)
	b := newBot(t)
	startNode(t, ns)
	repo := newGitRepo(t)
	e := b.startExecutor(t, testClient, testConfig(ns, b.server.URL))
	manifest := []byte(strings.Repeat(`{"nodes": {}}`, 200_000))
	sum := sha256.Sum256(manifest)

	spec := planSpec(repo, "run-inputs", "sh", "-c", `
		sha256sum "$DAGCTL_INPUT_DIR/manifest.json" | cut -d' ' -f1
		cat "$DAGCTL_INPUT_DIR/notes.txt"
		ls "$DAGCTL_INPUT_DIR"`)
	spec.Inputs = map[string][]byte{"manifest.json": manifest, "notes.txt": []byte("prod state\n")}
	var out lineSink
	h, err := e.Start(context.Background(), spec, out.sink)
	require.NoError(t, err)
	res := wait(t, h)

	require.True(t, res.Succeeded(), "%+v\n%s", res, strings.Join(out.texts(), "\n"))
	for _, want := range []string{hex.EncodeToString(sum[:]), "prod state", "manifest.json", "notes.txt"} {
		assert.True(t, out.has(want), "%q in %q", want, out.texts())
	}
	pod := getJob(t, ns, "run-inputs").Spec.Template.Spec
	for _, m := range pod.Containers[0].VolumeMounts {
		if m.Name == "inputs" {
			assert.True(t, m.ReadOnly, "the job only reads its inputs")
			assert.Equal(t, inputsMount, m.MountPath)
		}
	}
	for _, v := range pod.Containers[0].Env {
		if v.Name == jobs.EnvInputDir {
			assert.Equal(t, inputsMount, v.Value)
		}
	}
}

// The inputs are served to the run's own token only, and only by the process that started the run.
func TestInputsAreServedToTheRunOnly(t *testing.T) {
	ns := newNamespace(t)
	b := newBot(t)
	node := startNode(t, ns)
	repo := newGitRepo(t)
	cfg := testConfig(ns, b.server.URL)
	first := b.startExecutor(t, testClient, cfg)
	get := func(e *Executor, runID, token string) (int, inputsBody) {
		req := httptest.NewRequest(http.MethodGet, "/jobs/"+pathEscape(runID)+"/inputs", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		e.Handler().ServeHTTP(rec, req)
		var body inputsBody
		if rec.Code == http.StatusOK {
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
		}
		return rec.Code, body
	}
	const runID = "run-inputs-auth"
	node.Hold(runID)
	spec := planSpec(repo, runID, "true")
	spec.Inputs = map[string][]byte{"manifest.json": []byte(`{"nodes": {}}`)}
	_, err := first.Start(context.Background(), spec, nil)
	require.NoError(t, err)

	code, _ := get(first, runID, RunToken(testTokenKey, "another run"))
	assert.Equal(t, http.StatusUnauthorized, code)
	code, body := get(first, runID, RunToken(testTokenKey, runID))
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, spec.Inputs, body.Files)

	b.stop(first)
	second := b.startExecutor(t, testClient, cfg)
	h2, err := second.Attach(context.Background(), runID, nil)
	require.NoError(t, err)
	code, _ = get(second, runID, RunToken(testTokenKey, runID))
	assert.Equal(t, http.StatusConflict, code, "a process that attached after a restart does not have them")
	require.NoError(t, h2.Cancel(context.Background()))
	wait(t, h2)
}

// A bot that restarted before the Pod fetched the inputs ends the run as InputsLost, before anything ran.
func TestAJobWhoseInputsWereLostWithARestartEndsAsInputsLost(t *testing.T) {
	ns := newNamespace(t)
	b := newBot(t)
	startNode(t, ns)
	repo := newGitRepo(t)
	cfg := testConfig(ns, b.server.URL)
	// The first process starts the job but the Pods never reach it (the bot is down for them: 502).
	first, err := New(context.Background(), testClient, cfg)
	require.NoError(t, err)
	spec := planSpec(repo, "run-inputs-lost", "sh", "-c", "echo must not run")
	spec.Inputs = map[string][]byte{"manifest.json": []byte(`{}`)}
	_, err = first.Start(context.Background(), spec, nil)
	require.NoError(t, err)
	first.Close()

	second := b.startExecutor(t, testClient, cfg)
	var out lineSink
	h, err := second.Attach(context.Background(), "run-inputs-lost", out.sink)
	require.NoError(t, err)
	res := wait(t, h)

	assert.Equal(t, ReasonInputsLost, res.Reason, "%+v\n%s", res, strings.Join(out.texts(), "\n"))
	assert.False(t, out.has("must not run"))
}

// The init container waits out a bot that is down (a restart) for the inputs, and gives up at once on a 409.
func TestTheRunnerFetchesTheInputsOnceTheBotIsBack(t *testing.T) {
	answers := []int{http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusOK}
	var requests int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code := answers[min(requests, len(answers)-1)]
		requests++
		if r.Method != http.MethodGet || r.URL.Path != "/jobs/r/inputs" || r.Header.Get("Authorization") != "Bearer tok" {
			code = http.StatusUnauthorized
		}
		w.WriteHeader(code)
		if code == http.StatusOK {
			_ = json.NewEncoder(w).Encode(inputsBody{Files: map[string][]byte{"manifest.json": []byte(`{}`)}})
		}
	}))
	defer srv.Close()
	rep := &reporter{url: srv.URL + "/jobs/r", token: "tok"}

	inputs, err := rep.fetchInputs(context.Background(), time.Minute)

	require.NoError(t, err)
	assert.Equal(t, map[string][]byte{"manifest.json": []byte(`{}`)}, inputs)
	assert.Equal(t, 3, requests)

	answers, requests = []int{http.StatusConflict}, 0
	_, err = rep.fetchInputs(context.Background(), time.Minute)
	assert.ErrorIs(t, err, errInputsLost)
	assert.Equal(t, 1, requests, "no retry: the bot will never have them")
}
