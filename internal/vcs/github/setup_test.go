package github_test

import (
	"context"
	"crypto/rsa"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/forgetest/githubfake"
	"github.com/dagctl/dagctl-bot/internal/vcs"
	"github.com/dagctl/dagctl-bot/internal/vcs/github"
)

const (
	testAppID          = 4242
	testAppSlug        = "dagctl-test"
	testInstallationID = 77
	testOwner          = "acme"
	testRepoName       = "warehouse"
)

var (
	keyOnce   sync.Once
	keyPEM    []byte
	publicKey *rsa.PublicKey
	keyErr    error
)

// appKey is one RSA key for the whole package: generating one per test would dominate the run time.
func appKey(t *testing.T) ([]byte, *rsa.PublicKey) {
	t.Helper()
	keyOnce.Do(func() { keyPEM, publicKey, keyErr = githubfake.GenerateAppKey() })
	require.NoError(t, keyErr)
	return keyPEM, publicKey
}

// env is a fake GitHub with one app, one installation and one repository backed by a git repository, and the
// adapter configured against it.
type env struct {
	t    *testing.T
	fake *githubfake.Fake
	git  *githubfake.GitRepo
	fr   *githubfake.Repo
	app  *github.App
	inst *github.Installation
	repo vcs.Repo
	ctx  context.Context

	mu    sync.Mutex
	waits []time.Duration
}

type envOption func(*github.Config)

func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	pemBytes, pub := appKey(t)
	e := &env{t: t, fake: githubfake.New(t), ctx: context.Background()}
	e.fake.AddApp(testAppID, testAppSlug, pub)
	e.fake.AddInstallation(githubfake.Installation{ID: testInstallationID, AppID: testAppID, Account: testOwner})

	e.git = githubfake.NewGitRepo(t, "main")
	e.git.Commit("main", map[string]string{
		".dagctl/config.yaml": "projects:\n  - path: .\n",
		"models/orders.sql":   "select 1 as id\n",
	}, "initial")
	e.fr = e.fake.AddRepo(testOwner, testRepoName, e.git.Dir, "main")

	cfg := github.Config{
		AppID:            testAppID,
		PrivateKey:       pemBytes,
		APIURL:           e.fake.APIURL(),
		Now:              e.fake.Now,
		Sleep:            e.sleep,
		MinWriteInterval: -1, // the spacing test turns it on
	}
	for _, opt := range opts {
		opt(&cfg)
	}
	app, err := github.NewApp(cfg)
	require.NoError(t, err)
	e.app = app
	e.inst = app.Installation(testInstallationID)
	e.repo = vcs.Repo{
		Forge: github.Forge, Owner: testOwner, Name: testRepoName, Account: github.AccountOf(testInstallationID),
		CloneURL: e.fr.CloneURL(), DefaultBranch: "main",
	}
	return e
}

// sleep is the adapter's sleep: it records the wait and advances the fake's clock instead of waiting.
func (e *env) sleep(ctx context.Context, d time.Duration) error {
	e.mu.Lock()
	e.waits = append(e.waits, d)
	e.mu.Unlock()
	return e.fake.Sleep(ctx, d)
}

func (e *env) recordedWaits() []time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]time.Duration(nil), e.waits...)
}

// tokenRequests counts the installation token requests the fake received.
func (e *env) tokenRequests() int {
	return len(e.fake.RequestsMatching("POST", "/app/installations/*/access_tokens"))
}

// openPR registers PR 1 on a feature branch with one commit on top of main.
func (e *env) openPR() githubfake.PR {
	base := e.git.SHA("main")
	head := e.git.Commit("feature", map[string]string{"models/orders.sql": "select 2 as id\n"}, "change orders")
	pr := githubfake.PR{
		Number: 1, Title: "Change orders", Author: "alice", HeadRef: "feature", HeadSHA: head, BaseRef: "main",
		BaseSHA: base,
	}
	e.fr.SetPR(pr)
	return pr
}
