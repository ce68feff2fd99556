package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/dispatch"
	"github.com/dagctl/dagctl-bot/internal/retry"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// botQueue is the bot's side of a database: the store open as serve opens it, and the real dispatcher over it,
// its handler failing while forgeDown (the forge's outage) and counting what it handled.
type botQueue struct {
	store     *db.Store
	dispatch  *dispatch.Dispatcher
	now       time.Time
	forgeDown bool
	handled   []string
}

func newBotQueue(t *testing.T, path string) *botQueue {
	// The bot's clock starts at the real time: the CLI's store, on the real clock, makes a retried delivery due
	// now, and the bot's drains must not be in the past of that (a fixed date here failed once the day passed it).
	b := &botQueue{now: time.Now().UTC().Truncate(time.Minute), forgeDown: true}
	store, err := db.Open(path, db.WithClock(func() time.Time { return b.now }))
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	b.store = store
	parse := func(event string, body []byte) (vcs.Event, error) {
		return vcs.Event{Repo: vcs.Repo{Forge: "github", Owner: "acme", Name: string(body)}}, nil
	}
	b.dispatch = &dispatch.Dispatcher{Queue: store, Parsers: map[string]dispatch.Parser{"github": parse}, Now: store.Now,
		Rand: func() float64 { return 0 }, Policy: retry.Policy{For: time.Hour}, Log: slog.New(slog.DiscardHandler),
		Handle: func(ctx context.Context, ev vcs.Event) error {
			if b.forgeDown {
				return errors.New("github: 502 Bad Gateway")
			}
			b.handled = append(b.handled, ev.Repo.Name)
			return nil
		}}
	return b
}

// runFor drains the queue every minute of the bot's clock for d.
func (b *botQueue) runFor(d time.Duration) {
	for end := b.now.Add(d); b.now.Before(end); b.now = b.now.Add(time.Minute) {
		b.dispatch.Drain(context.Background())
	}
}

// The CLI lists and retries dead deliveries on the database a running bot holds open; the bot picks the
// retried one up in its key's order on its next drain.
func TestDeliveriesListAndRetryOnARunningBotsDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bot", "dagctl.db")
	t.Setenv("DAGCTL_DB", path)
	code, _, stderr := cli(t, "deliveries", "list")
	assert.Equal(t, 1, code, "a missing database is not created")
	assert.Contains(t, stderr, path)

	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o700))
	bot := newBotQueue(t, path)
	received := bot.now
	ctx := context.Background()
	for _, d := range []struct{ id, key, body string }{{"m1", "acme/w#1", "merge"}, {"c2", "acme/w#1", "comment"}, {"p3", "acme/w#2", "other"}} {
		_, err := bot.store.Enqueue(ctx, "github", d.id, "pull_request", d.key, []byte(d.body))
		require.NoError(t, err)
	}
	// The outage outlasts the hour's window: m1 and p3 die after an hour, c2 (behind m1) fails from then and dies an
	// hour later.
	bot.runFor(150 * time.Minute)
	code, stdout, stderr := cli(t, "deliveries", "list", "--dead")
	require.Equal(t, 0, code, stderr)
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	require.Len(t, lines, 4, stdout)
	assert.Regexp(t, `^ID\s+STATUS\s+FORGE\s+DELIVERY\s+EVENT\s+KEY\s+ATTEMPTS\s+RECEIVED\s+LAST ERROR$`, lines[0])
	assert.Regexp(t, `^1\s+dead\s+github\s+m1\s+pull_request\s+acme/w#1\s+\d+\s+`+regexp.QuoteMeta(received.Format(time.RFC3339))+`\s+github: 502 Bad Gateway$`, lines[1])

	bot.forgeDown = false
	code, stdout, stderr = cli(t, "deliveries", "retry", "1")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "delivery 1 is pending again")
	code, _, stderr = cli(t, "deliveries", "retry", "1")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "not dead")
	bot.runFor(time.Minute)
	assert.Equal(t, []string{"merge"}, bot.handled, "the running bot picked it up")

	code, stdout, stderr = cli(t, "deliveries", "retry", "--all-dead")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "2 dead deliveries are pending again")
	bot.runFor(time.Minute)
	assert.Equal(t, []string{"merge", "comment", "other"}, bot.handled, "in their keys' order")
	code, stdout, _ = cli(t, "deliveries", "list", "--dead")
	require.Equal(t, 0, code)
	assert.Equal(t, "no dead deliveries\n", stdout)

	code, _, stderr = cli(t, "deliveries", "retry")
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "usage")
}
