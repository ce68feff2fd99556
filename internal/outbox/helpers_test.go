package outbox_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/forgetest/githubfake"
	"github.com/dagctl/dagctl-bot/internal/outbox"
	"github.com/dagctl/dagctl-bot/internal/vcs"
	ghadapter "github.com/dagctl/dagctl-bot/internal/vcs/github"
)

const (
	appID          = 42
	installationID = 7
	prNumber       = 1
)

var acct = outbox.GitHubAccount(installationID)

// backoff is the first retry's wait in the tests: longer than the spacing, so that a Drain (which sleeps the
// spacing on the fake's clock) ends before the retry falls due.
const backoff = time.Minute

// world is a fake GitHub over HTTP with the app installed on acme/warehouse and one open PR, the GitHub adapter
// on the fake's clock, and a store on a temporary file.
type world struct {
	t     *testing.T
	fake  *githubfake.Fake
	repo  *githubfake.Repo
	pem   []byte
	head  string
	vrepo vcs.Repo
	app   *ghadapter.App
	store *db.Store
	path  string
	logs  *bytes.Buffer
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{t: t, fake: githubfake.New(t), logs: &bytes.Buffer{}}
	w.pem = w.fake.NewApp(t, appID, "dagctl-bot")
	w.fake.AddInstallation(githubfake.Installation{ID: installationID, AppID: appID, Account: "acme"})
	git := githubfake.NewGitRepo(t, "main")
	base := git.Commit("main", map[string]string{"README.md": "hello"}, "init")
	w.head = git.Commit("change", map[string]string{"README.md": "hello again"}, "change")
	w.repo = w.fake.AddRepo("acme", "warehouse", git.Dir, "main")
	w.repo.SetPR(githubfake.PR{Number: prNumber, Author: "alice", HeadRef: "change", HeadSHA: w.head, BaseRef: "main", BaseSHA: base})
	w.vrepo = vcs.Repo{Forge: ghadapter.Forge, Owner: "acme", Name: "warehouse", Account: strconv.FormatInt(installationID, 10)}
	w.app = w.newApp(w.fake.APIURL())
	w.path = filepath.Join(t.TempDir(), "dagctl.db")
	w.store = w.openStore()
	return w
}

// newApp is the GitHub adapter against apiURL, on the fake's clock, its own write spacing off: the outbox spaces.
func (w *world) newApp(apiURL string) *ghadapter.App {
	app, err := ghadapter.NewApp(ghadapter.Config{
		AppID: appID, PrivateKey: w.pem, APIURL: apiURL, Now: w.fake.Now, Sleep: w.fake.Sleep, MinWriteInterval: -1,
	})
	require.NoError(w.t, err)
	return app
}

func (w *world) openStore() *db.Store {
	s, err := db.Open(w.path, db.WithClock(w.fake.Now))
	require.NoError(w.t, err)
	w.t.Cleanup(func() { s.Close() })
	return s
}

// outbox is an outbox over the world's store, sending through app, on the fake's clock, retrying first after
// exactly backoff (the jitter at its lowest, half the base: so the base is twice backoff).
func (w *world) outbox(app *ghadapter.App) *outbox.Outbox {
	return outbox.New(w.store, func(outbox.Account) (outbox.Forge, error) { return app, nil }, w.config(outbox.Config{}))
}

// outboxWith is the world's outbox through its app with cfg's retry settings.
func (w *world) outboxWith(cfg outbox.Config) *outbox.Outbox {
	return outbox.New(w.store, func(outbox.Account) (outbox.Forge, error) { return w.app, nil }, w.config(cfg))
}

func (w *world) config(cfg outbox.Config) outbox.Config {
	cfg.Now, cfg.Sleep, cfg.Log = w.fake.Now, w.fake.Sleep, slog.New(slog.NewTextHandler(w.logs, nil))
	if cfg.Backoff == 0 {
		cfg.Backoff = 2 * backoff
	}
	cfg.Rand = func() float64 { return 0 }
	return cfg
}

func (w *world) status(name string, state vcs.StatusState, run string) vcs.Status {
	return vcs.Status{Name: name, CommitSHA: w.head, State: state, Description: string(state), ExternalID: run}
}

func (w *world) pending() []db.OutboxWrite {
	rows, err := w.store.ListOutbox(context.Background(), acct.Forge, acct.ID)
	require.NoError(w.t, err)
	return rows
}

// writes are the API writes the fake received, as "METHOD path".
func (w *world) writes() []string {
	var out []string
	for _, r := range w.fake.Requests() {
		if r.API && r.Method != "GET" && r.Path != fmt.Sprintf("/app/installations/%d/access_tokens", installationID) {
			out = append(out, r.Method+" "+r.Path)
		}
	}
	return out
}
