package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/serverconfig"
	"github.com/dagctl/dagctl-bot/internal/testutil"
)

// syncBuffer is the server's stderr: its goroutines log while the test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// freeAddr is a loopback address nothing listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// `dagctl-bot serve` with GitLab's variables and none of GitHub's starts, serves GitLab's route (refusing a
// wrong token) and says GitHub is not set up, and stops cleanly. GitLab itself is unreachable: the bot asks it
// nothing until a hook must be parsed.
func TestServeWithOnlyGitLabVariablesServesGitLab(t *testing.T) {
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "DAGCTL_") {
			t.Setenv(name, "") // an empty variable is an unset setting
		}
	}
	dir := t.TempDir()
	addr := freeAddr(t)
	for name, value := range map[string]string{
		serverconfig.EnvGitLabURL:           "http://127.0.0.1:9", // the discard port: nothing answers
		serverconfig.EnvGitLabToken:         "glpat-serve-test",
		serverconfig.EnvGitLabWebhookSecret: "serve-test-secret",
		serverconfig.EnvGitLabCloneToken:    "glpat-serve-test-read",
		serverconfig.EnvDB:                  filepath.Join(dir, "data", "dagctl.db"),
		serverconfig.EnvWorkDir:             filepath.Join(dir, "work"),
		serverconfig.EnvListen:              addr,
		serverconfig.EnvSQLMesh:             testutil.SQLMesh(t),
		serverconfig.EnvJobUIDs:             "off",
	} {
		t.Setenv(name, value)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"serve"}, io.Discard, &stderr) }()

	base := "http://" + addr
	client := &http.Client{Timeout: 5 * time.Second}
	require.Eventually(t, func() bool {
		resp, err := client.Get(base + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, time.Minute, 20*time.Millisecond, "serve never answered /healthz:\n%s", &stderr)

	post := func(path string, headers map[string]string) int {
		req, err := http.NewRequest(http.MethodPost, base+path, strings.NewReader(`{"object_kind":"merge_request"}`))
		require.NoError(t, err)
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, http.StatusUnauthorized, post("/webhooks/gitlab", map[string]string{
		"X-Gitlab-Event": "Merge Request Hook", "X-Gitlab-Token": "wrong", "X-Gitlab-Event-UUID": "u-1"}))
	assert.Equal(t, http.StatusServiceUnavailable, post("/webhooks/github", map[string]string{
		"X-GitHub-Event": "ping", "X-GitHub-Delivery": "d-1", "X-Hub-Signature-256": "sha256=00"}))

	cancel()
	assert.Equal(t, 0, <-done, "stderr:\n%s", &stderr)
	logs := stderr.String()
	assert.Contains(t, logs, "serving GitLab without a GitHub App")
	assert.Contains(t, logs, `msg="webhook rejected" forge=gitlab`)
	assert.NotContains(t, logs, "glpat-serve-test", "the tokens are never logged")
	// Until the stop: as the workers stop, a cancelled claim or prune may still log an error.
	serving, _, _ := strings.Cut(logs, `msg="shutting down"`)
	assert.NotContains(t, serving, "level=ERROR")
}
