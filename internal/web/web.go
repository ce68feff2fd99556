// Package web is the bot's HTML pages: server-rendered html/template pages in one layout, embedded in the
// binary, with no script and no build step. A page is a template of templates/ that defines "title" and
// "main"; Render executes it in the layout. The pages' data are view models built by plain functions (home.go),
// which decide what a viewer may see; the server reads the store and calls them.
package web

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
)

//go:embed templates
var templateFiles embed.FS

//go:embed assets
var assetFiles embed.FS

// AssetsPath is where Assets is served; the layout links its style sheet below it.
const AssetsPath = "/assets/"

// Assets serves the pages' static files (the style sheet) at AssetsPath.
func Assets() http.Handler {
	sub, err := fs.Sub(assetFiles, "assets")
	if err != nil {
		panic(err) // the embedded directory is there: it is compiled in
	}
	files := http.StripPrefix(AssetsPath, http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "public, max-age=300")
		files.ServeHTTP(w, r)
	})
}

// Pages renders the pages of templates/.
type Pages struct {
	pages map[string]*template.Template
	log   *slog.Logger
}

// NewPages parses every page of templates/ with the layout; a broken template fails here, at start.
func NewPages(log *slog.Logger) (*Pages, error) {
	if log == nil {
		log = slog.Default()
	}
	layout, err := template.New("layout.html").ParseFS(templateFiles, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("web: the layout: %w", err)
	}
	names, err := fs.Glob(templateFiles, "templates/*.html")
	if err != nil {
		return nil, err
	}
	p := &Pages{pages: map[string]*template.Template{}, log: log}
	for _, file := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(file, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.Must(layout.Clone()).ParseFS(templateFiles, file)
		if err != nil {
			return nil, fmt.Errorf("web: page %s: %w", name, err)
		}
		p.pages[name] = t
	}
	return p, nil
}

// Render writes page name with data and the status. The page is rendered into memory first, so that a template
// that fails half way sends an error page rather than half a page.
func (p *Pages) Render(w http.ResponseWriter, status int, name string, data any) {
	t, ok := p.pages[name]
	if !ok {
		p.log.Error("web: no such page", "page", name)
		p.failed(w)
		return
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout.html", data); err != nil {
		p.log.Error("web: rendering a page", "page", name, "err", err)
		p.failed(w)
		return
	}
	header(w, status)
	_, _ = buf.WriteTo(w)
}

// ErrorPage is what the error page shows: a title and one paragraph, both plain text.
type ErrorPage struct {
	Status  int
	Title   string
	Message string
}

// Error writes the error page. The message is shown as it is (escaped): never put a secret or an internal
// error's text in it.
func (p *Pages) Error(w http.ResponseWriter, status int, title, message string) {
	p.Render(w, status, "error", ErrorPage{Status: status, Title: title, Message: message})
}

// NotFound is the error page of a path the bot does not serve.
func (p *Pages) NotFound(w http.ResponseWriter, _ *http.Request) {
	p.Error(w, http.StatusNotFound, "Not found", "dagctl-bot has no page here.")
}

// failed answers when rendering itself failed: plain text, since the templates are what broke.
func (p *Pages) failed(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusInternalServerError)
	fmt.Fprintln(w, "dagctl-bot could not render this page; its log says why.")
}

func header(w http.ResponseWriter, status int) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	// The pages need nothing from elsewhere and run no script.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	w.WriteHeader(status)
}
