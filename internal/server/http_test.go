package server_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/forgetest/e2e"
	"github.com/dagctl/dagctl-bot/internal/server"
)

// serveWith serves the world's bot through NewHTTPServer with the given limits and returns its address.
func serveWith(t *testing.T, w *world, limits server.HTTPLimits) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	hs := server.NewHTTPServer("", w.srv.Handler(), limits)
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { hs.Close() })
	return ln.Addr().String()
}

// trickle writes data a byte every 20 ms, like a slow sender, until all is written or the server ends the
// exchange (answers and closes, or just closes). It returns how many bytes were written by then.
func trickle(t *testing.T, conn net.Conn, data string) int {
	t.Helper()
	ended := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, conn) // returns when the server closes the connection
		close(ended)
	}()
	for i := range len(data) {
		select {
		case <-ended:
			return i
		default:
		}
		if _, err := conn.Write([]byte{data[i]}); err != nil {
			return i
		}
		time.Sleep(20 * time.Millisecond)
	}
	return len(data)
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return conn
}

// Slow senders are cut off by the server's deadlines: headers trickled past ReadHeaderTimeout, a body trickled
// past ReadTimeout, a connection left idle past IdleTimeout. Short limits here; serve uses the defaults.
func TestSlowSendersAreCutOff(t *testing.T) {
	w := newWorld(t, e2e.GitHub, worldOptions{}) // the server's limits, whichever forge: one world is enough
	addr := serveWith(t, w, server.HTTPLimits{
		ReadHeaderTimeout: 200 * time.Millisecond, ReadTimeout: 500 * time.Millisecond,
		WriteTimeout: time.Second, IdleTimeout: 200 * time.Millisecond,
	})
	delivery := func(contentLength int) string {
		return "POST /webhooks/github HTTP/1.1\r\nHost: bot\r\nX-GitHub-Event: push\r\nX-GitHub-Delivery: slow\r\n" +
			"X-Hub-Signature-256: sha256=" + strings.Repeat("0", 64) + "\r\nContent-Length: " +
			strconv.Itoa(contentLength) + "\r\n\r\n"
	}

	t.Run("headers", func(t *testing.T) {
		head := delivery(2) + "{}"
		sent := trickle(t, dial(t, addr), head)
		assert.Less(t, sent, len(head), "the server waited for all the trickled headers")
	})

	t.Run("body", func(t *testing.T) {
		body := strings.Repeat(" ", 200) + "{}"
		conn := dial(t, addr)
		_, err := conn.Write([]byte(delivery(len(body))))
		require.NoError(t, err)
		sent := trickle(t, conn, body)
		assert.Less(t, sent, len(body), "the server waited for all the trickled body")
	})

	t.Run("idle", func(t *testing.T) {
		conn := dial(t, addr)
		_, err := conn.Write([]byte("GET /healthz HTTP/1.1\r\nHost: bot\r\n\r\n"))
		require.NoError(t, err)
		r := bufio.NewReader(conn)
		resp, err := http.ReadResponse(r, nil)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		// The deadline only keeps a server that never closes from hanging the test.
		require.NoError(t, conn.SetReadDeadline(time.Now().Add(20*time.Second)))
		_, err = r.ReadByte()
		assert.ErrorIs(t, err, io.EOF, "the idle keep-alive connection was closed by the server")
	})
}

// Headers are capped (the default limits, as serve has them): a request with huge headers is refused before
// its handler runs.
func TestHugeHeadersAreRefused(t *testing.T) {
	w := newWorld(t, e2e.GitHub, worldOptions{}) // the server's limits, whichever forge: one world is enough
	addr := serveWith(t, w, server.DefaultHTTPLimits)
	conn := dial(t, addr)
	_, err := conn.Write([]byte("GET /healthz HTTP/1.1\r\nHost: bot\r\nX-Padding: " + strings.Repeat("a", 512<<10) + "\r\n\r\n"))
	if err != nil && !errors.Is(err, net.ErrClosed) {
		t.Logf("write: %v (the server may close before all is sent)", err)
	}
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(20*time.Second)))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusRequestHeaderFieldsTooLarge, resp.StatusCode)
}
