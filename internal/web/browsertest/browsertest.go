// Package browsertest drives a real browser for tests of the bot's pages: Debian's chromium, headless, through
// chromedp. `make test` installs chromium where it is missing (`make browser`); without it a test fails under
// CI (the CI variable set) and skips elsewhere, saying how to install it.
package browsertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// Environment variables the harness reads.
const (
	// EnvChromium names the browser to run (default: chromium on PATH, as Debian's package installs it).
	EnvChromium = "DAGCTL_CHROMIUM"
	// EnvScreenshots is a directory to write screenshots to (default: none are written), e.g. for the docs.
	EnvScreenshots = "DAGCTL_SCREENSHOTS"
	// EnvCI set (any value, as CI services set it) makes a missing browser a failure instead of a skip.
	EnvCI = "CI"
)

// actionTimeout bounds one step in the browser: a page of the bot renders in milliseconds, but two cores
// shared with the rest of the suite can be slow.
const actionTimeout = 60 * time.Second

// Chromium finds the browser: $DAGCTL_CHROMIUM, else chromium or chromium-browser on PATH.
func Chromium() (string, error) {
	if path := os.Getenv(EnvChromium); path != "" {
		return exec.LookPath(path)
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if path, err := exec.LookPath(name); err == nil {
			return path, nil
		}
	}
	return "", errors.New("chromium not found on PATH")
}

// Browser is one headless browser for a test; each Tab is a tab of it.
type Browser struct {
	t      testing.TB
	ctx    context.Context // the browser's context: cancelling it stops the browser
	output *syncBuffer     // the browser's own output, shown when a test fails
}

// New starts the browser, stopped at the end of the test. Without one it fails the test under CI and skips it
// elsewhere.
func New(t testing.TB) *Browser {
	t.Helper()
	path, err := Chromium()
	if err != nil {
		const how = "`make browser` installs it (apt-get install chromium), or set " + EnvChromium
		if os.Getenv(EnvCI) != "" {
			t.Fatalf("%v: the browser tests run in CI; %s", err, how)
		}
		t.Skipf("%v: skipping the browser test; %s", err, how)
	}
	b := &Browser{t: t, output: &syncBuffer{}}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("hide-scrollbars", true), // scrollbars would take width from a phone's viewport
		chromedp.CombinedOutput(b.output),
	)
	if os.Geteuid() == 0 {
		// Chromium refuses to run as root with its sandbox (CI runs as root in a container).
		opts = append(opts, chromedp.NoSandbox)
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		if t.Failed() {
			t.Logf("chromium's output:\n%s", b.output.String())
		}
	})
	// The first run starts the browser and lives as long as ctx: it gets no timeout of its own.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v\n%s", path, err, b.output.String())
	}
	b.ctx = ctx
	return b
}

// Screen is how a tab shows pages.
type Screen struct {
	Width, Height int64
	Mobile        bool // a phone: mobile viewport rules and touch
	Dark          bool // prefers-color-scheme: dark
}

var (
	// Desktop is a laptop's window.
	Desktop = Screen{Width: 1280, Height: 800}
	// Phone is a small phone held upright (CSS pixels).
	Phone = Screen{Width: 375, Height: 667, Mobile: true}
)

// Tab is a browser tab showing pages on a screen.
type Tab struct {
	b   *Browser
	t   testing.TB
	ctx context.Context
}

// Tab opens a tab with screen; headers, when given, are sent with every request of the tab.
func (b *Browser) Tab(screen Screen, headers map[string]string) *Tab {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	b.t.Cleanup(cancel)
	// The first run opens the tab, which lives as long as that run's context: it gets no timeout (a timeout
	// would close the tab once the first step is done).
	if err := chromedp.Do(ctx); err != nil {
		b.t.Fatalf("opening a tab: %v", err)
	}
	tab := &Tab{b: b, t: b.t, ctx: ctx}
	var viewport []chromedp.EmulateViewportOption
	if screen.Mobile {
		viewport = append(viewport, chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulatePortrait)
	}
	scheme := "light"
	if screen.Dark {
		scheme = "dark"
	}
	steps := []chromedp.Action[chromedp.Void]{
		chromedp.EmulateViewport(screen.Width, screen.Height, viewport...),
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
				Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}},
			})
			return err
		}),
	}
	if len(headers) > 0 {
		h := network.Headers{}
		for k, v := range headers {
			h[k] = v
		}
		steps = append(steps, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			if _, err := cdp.Call(ctx, t, network.Enable, network.EnableParams{}); err != nil {
				return err
			}
			_, err := cdp.Call(ctx, t, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: h})
			return err
		}))
	}
	tab.do("setting the screen up", steps...)
	return tab
}

// Open loads url and waits for its body.
func (tab *Tab) Open(url string) {
	tab.t.Helper()
	tab.do("opening "+url, chromedp.Navigate(url), chromedp.WaitReady(chromedp.CSS("body")))
}

// Text is the page's text as a person reads it (innerText of the body: what CSS hides is left out).
func (tab *Tab) Text() string {
	tab.t.Helper()
	return Eval[string](tab, `document.body.innerText`)
}

// Title is the page's title.
func (tab *Tab) Title() string {
	tab.t.Helper()
	return Eval[string](tab, `document.title`)
}

// BackgroundColor is the computed background colour of the first element matching the CSS selector
// ("rgb(13, 17, 23)").
func (tab *Tab) BackgroundColor(selector string) string {
	tab.t.Helper()
	return Eval[string](tab, fmt.Sprintf(`getComputedStyle(document.querySelector(%q)).backgroundColor`, selector))
}

// Overflow is how many CSS pixels the page is wider than its viewport: more than 0 scrolls sideways.
func (tab *Tab) Overflow() int {
	tab.t.Helper()
	return Eval[int](tab, `Math.max(document.documentElement.scrollWidth, document.body.scrollWidth) - document.documentElement.clientWidth`)
}

// Eval evaluates a JavaScript expression in the tab's page and decodes its value.
func Eval[T any](tab *Tab, expression string) T {
	tab.t.Helper()
	ctx, cancel := context.WithTimeout(tab.ctx, actionTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expression))
	if err != nil {
		tab.t.Fatalf("evaluating %s: %v", expression, err)
	}
	return v
}

// Screenshot captures the whole page as PNG and, when DAGCTL_SCREENSHOTS names a directory, writes it there as
// name.png. It returns the image either way, so the capture itself is tested.
func (tab *Tab) Screenshot(name string) []byte {
	tab.t.Helper()
	ctx, cancel := context.WithTimeout(tab.ctx, actionTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tab.t.Fatalf("screenshot %s: %v", name, err)
	}
	if dir := os.Getenv(EnvScreenshots); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			tab.t.Fatal(err)
		}
		file := filepath.Join(dir, strings.ReplaceAll(name, string(filepath.Separator), "_")+".png")
		if err := os.WriteFile(file, png, 0o644); err != nil {
			tab.t.Fatal(err)
		}
		tab.t.Logf("screenshot: %s", file)
	}
	return png
}

func (tab *Tab) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	tab.t.Helper()
	ctx, cancel := context.WithTimeout(tab.ctx, actionTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		tab.t.Fatalf("%s: %v", what, err)
	}
}

// syncBuffer collects the browser's output, written from chromedp's goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b.Len() > 64<<10 { // enough to say why it would not start
		return len(p), nil
	}
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
