package webhook

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/forgetest/githubfake"
)

// rawPost opens a connection to the intake and sends a delivery's request line and headers, declaring a body of
// contentLength bytes, with a well-formed (but wrong) signature. It sends no body; the caller writes what it
// wants of one to the returned connection.
func rawPost(t *testing.T, srvURL string, contentLength int64) net.Conn {
	t.Helper()
	u, err := url.Parse(srvURL)
	require.NoError(t, err)
	conn, err := net.Dial("tcp", u.Host)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	head := "POST / HTTP/1.1\r\nHost: " + u.Host + "\r\nContent-Type: application/json\r\n" +
		"X-GitHub-Event: push\r\nX-GitHub-Delivery: raw-" + strconv.FormatInt(time.Now().UnixNano(), 10) + "\r\n" +
		"X-Hub-Signature-256: sha256=" + strings.Repeat("0", 64) + "\r\n" +
		"Content-Length: " + strconv.FormatInt(contentLength, 10) + "\r\n\r\n"
	_, err = conn.Write([]byte(head))
	require.NoError(t, err)
	return conn
}

// readResponse reads the answer on conn; the deadline only keeps a broken intake from hanging the test.
func readResponse(t *testing.T, conn net.Conn) (*http.Response, error) {
	t.Helper()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(20*time.Second)))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err == nil {
		resp.Body.Close()
	}
	return resp, err
}

// A body declared larger than the cap is refused at once: the intake answers 413 before a byte of it is sent.
func TestOversizedContentLengthIsRefusedUnread(t *testing.T) {
	_, srv, _ := newIntake(t, secret)
	conn := rawPost(t, srv.URL, MaxBodyBytes+1)
	resp, err := readResponse(t, conn)
	require.NoError(t, err, "the intake waited for a body it must refuse")
	assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	assert.True(t, resp.Close, "the connection is closed rather than drained")
}

// eventually polls cond until it holds; the limit only keeps a broken intake from hanging the test.
func eventually(t *testing.T, h *GitHub, what string, cond func(IntakeStats) bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond(h.Stats()) {
			return
		}
	}
	t.Fatalf("never %s; the intake holds %+v", what, h.Stats())
}

// Strangers' large bodies beyond the bound wait for room instead of all being read into memory at once, and a
// real delivery sent meanwhile is stored and acknowledged: small bodies have room of their own.
func TestLargeBodiesBeyondTheBoundWaitWhileDeliveriesAreStored(t *testing.T) {
	store, srv, h, _ := newIntakeWith(t, secret, BodyLimits{LargeBudget: 2 * MaxBodyBytes, Wait: time.Minute})
	var senders []net.Conn
	for range 6 {
		conn := rawPost(t, srv.URL, MaxBodyBytes)
		_, err := conn.Write(make([]byte, 4096)) // a start, then the sender stalls
		require.NoError(t, err)
		senders = append(senders, conn)
	}
	eventually(t, h, "took in all six bodies", func(s IntakeStats) bool { return s.Reading+s.Waiting == 6 })
	s := h.Stats()
	assert.Equal(t, 2, s.Reading, "bodies being read")
	assert.Equal(t, 4, s.Waiting, "bodies waiting for room")
	assert.LessOrEqual(t, s.PeakBytes, int64(2*MaxBodyBytes))

	d := githubfake.LoadPayload(t, "pull_request.opened.json").SendT(t, srv.URL, secret)
	assert.Equal(t, http.StatusAccepted, d.Status, d.Body)
	_, err := store.GetDelivery(context.Background(), "github", d.ID)
	require.NoError(t, err, "the delivery is stored")

	for _, c := range senders {
		c.Close()
	}
	eventually(t, h, "let go of the stalled bodies", func(s IntakeStats) bool { return s.Reading == 0 && s.Waiting == 0 })
	assert.LessOrEqual(t, h.Stats().PeakBytes, int64(2*MaxBodyBytes)+int64(len(githubfake.LoadPayload(t, "pull_request.opened.json").Bytes())))
	assert.Zero(t, h.Stats().Refused)
}

// A burst of real deliveries larger than the budget waits for room, and every one is stored.
func TestBurstOfDeliveriesWaitsForRoomAndIsStored(t *testing.T) {
	const budget = 64 << 10 // about two of the payloads
	store, srv, h, _ := newIntakeWith(t, secret, BodyLimits{SmallBudget: budget, Wait: time.Minute})
	files := []string{"pull_request.opened.json", "pull_request.synchronize.json", "issue_comment.created.on-pr.json",
		"pull_request_review.submitted.json", "push.branch.json"}
	var wg sync.WaitGroup
	deliveries := make([]githubfake.Delivery, 20)
	for i := range deliveries {
		p := githubfake.LoadPayload(t, files[i%len(files)])
		wg.Go(func() { deliveries[i], _ = p.Send(srv.URL, secret) })
	}
	wg.Wait()
	for _, d := range deliveries {
		assert.Equal(t, http.StatusAccepted, d.Status, d.Body)
		_, err := store.GetDelivery(context.Background(), "github", d.ID)
		assert.NoError(t, err, "delivery %s stored", d.ID)
	}
	s := h.Stats()
	assert.LessOrEqual(t, s.PeakBytes, int64(budget), "never more than the budget read at once")
	assert.Zero(t, s.Refused)
}

// A body that finds no room within the wait is refused with 503 and nothing is stored; once there is room, the
// same delivery is accepted.
func TestNoRoomInTimeIsRefusedWith503(t *testing.T) {
	const budget = 64 << 10
	store, srv, h, _ := newIntakeWith(t, secret, BodyLimits{SmallBudget: budget, Wait: 50 * time.Millisecond})
	stalled := rawPost(t, srv.URL, 60<<10)
	_, err := stalled.Write([]byte("{"))
	require.NoError(t, err)
	eventually(t, h, "read the stalled body", func(s IntakeStats) bool { return s.Reading == 1 })

	p := githubfake.LoadPayload(t, "pull_request.opened.json")
	d, err := p.SendAs(srv.URL, secret, "delivery-503")
	require.NoError(t, err)
	assert.Equal(t, http.StatusServiceUnavailable, d.Status)
	assert.Contains(t, d.Body, "busy")
	_, err = store.GetDelivery(context.Background(), "github", d.ID)
	assert.ErrorIs(t, err, db.ErrNotFound)
	assert.Equal(t, 1, h.Stats().Refused)

	stalled.Close()
	eventually(t, h, "let go of the stalled body", func(s IntakeStats) bool { return s.Reading == 0 })
	d, err = p.SendAs(srv.URL, secret, "delivery-503")
	require.NoError(t, err)
	assert.Equal(t, http.StatusAccepted, d.Status, d.Body)
}

// The budget grants room in arrival order, and a waiter that gives up lets the ones behind it in.
func TestBudgetIsFirstComeFirstServed(t *testing.T) {
	b := &budget{size: 10}
	require.NoError(t, b.acquire(context.Background(), 8))
	waiters := func() int { b.mu.Lock(); defer b.mu.Unlock(); return b.waiters.Len() }

	bigCtx, giveUp := context.WithCancel(context.Background())
	bigDone := make(chan error, 1)
	go func() { bigDone <- b.acquire(bigCtx, 5) }()
	for waiters() < 1 {
		time.Sleep(time.Millisecond)
	}
	smallDone := make(chan error, 1)
	go func() { smallDone <- b.acquire(context.Background(), 2) }()
	for waiters() < 2 {
		time.Sleep(time.Millisecond)
	}
	// 2 bytes would fit, but the small one arrived after the big one: it waits.
	assert.Equal(t, 2, waiters())

	giveUp()
	assert.ErrorIs(t, <-bigDone, context.Canceled)
	require.NoError(t, <-smallDone, "the waiter behind the one that gave up got its room")
	b.release(2)
	b.release(8)
	assert.Zero(t, b.used)
}
