package outbox_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// holdMode is what the proxy does with the request it was told to catch.
type holdMode int

const (
	// loseAnswer forwards the request and answers 502: the forge has the write, the sender does not know.
	loseAnswer holdMode = iota
	// holdAfterForward forwards the request and then never answers: the forge has the write when the sender is
	// killed.
	holdAfterForward
	// holdBeforeForward never forwards the request: the forge never sees the write the sender began.
	holdBeforeForward
)

// holdingProxy stands between the sender and the fake GitHub and catches the nth request matching a method and
// path, so that a test knows exactly how far a write got when the sender fails or is killed.
type holdingProxy struct {
	URL  string
	Held chan struct{} // closed when the caught request is being held (or its answer was lost)

	// BeforeLosing, set, runs in loseAnswer mode after the forge handled the request and before the 502.
	BeforeLosing func()

	nth   int
	mu    sync.Mutex
	seen  int
	once  sync.Once
	close chan struct{}
}

func newHoldingProxy(t *testing.T, target, method, path string, nth int, mode holdMode) *holdingProxy {
	t.Helper()
	u, err := url.Parse(target)
	require.NoError(t, err)
	p := &holdingProxy{Held: make(chan struct{}), close: make(chan struct{}), nth: nth}
	forward := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(u) }}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != method || r.URL.Path != path || !p.count() {
			forward.ServeHTTP(w, r)
			return
		}
		switch mode {
		case loseAnswer:
			forward.ServeHTTP(&discard{header: http.Header{}}, r)
			if p.BeforeLosing != nil {
				p.BeforeLosing()
			}
			w.WriteHeader(http.StatusBadGateway)
			p.once.Do(func() { close(p.Held) })
		case holdAfterForward:
			forward.ServeHTTP(&discard{header: http.Header{}}, r)
			p.hold(r)
		case holdBeforeForward:
			_, _ = io.Copy(io.Discard, r.Body)
			p.hold(r)
		}
	}))
	t.Cleanup(func() { close(p.close); srv.Close() })
	p.URL = srv.URL
	return p
}

// count reports whether this matching request is the one to catch.
func (p *holdingProxy) count() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seen++
	return p.seen == p.nth
}

func (p *holdingProxy) hold(r *http.Request) {
	p.once.Do(func() { close(p.Held) })
	select {
	case <-r.Context().Done(): // the sender went away (killed)
	case <-p.close:
	}
}

// discard is a ResponseWriter that drops the forge's answer.
type discard struct {
	header http.Header
	body   bytes.Buffer
}

func (d *discard) Header() http.Header         { return d.header }
func (d *discard) Write(b []byte) (int, error) { return d.body.Write(b) }
func (d *discard) WriteHeader(int)             {}
