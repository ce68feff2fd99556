package comments

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"
	"github.com/yuin/goldmark/renderer/html"
)

// Structure checks shared by the golden and the property tests: every part must stand on its own as markdown.

var (
	fenceOpen  = regexp.MustCompile("^ {0,3}(`{3,})[^`]*$")
	detailsTag = regexp.MustCompile(`</?details>?`)
	anyTag     = regexp.MustCompile(`<([a-zA-Z][a-zA-Z0-9]*)`)
	tableHTML  = regexp.MustCompile(`(?s)<table>.*?</table>`)
	rowHTML    = regexp.MustCompile(`(?s)<tr>.*?</tr>`)
	markdown   = goldmark.New(goldmark.WithExtensions(extension.Table), goldmark.WithRendererOptions(html.WithUnsafe()))
)

// requireWellFormed checks one body: valid UTF-8, every code fence closed, every <details> closed inside the
// body (in the markdown and in the HTML a CommonMark+GFM renderer makes of it), no raw HTML but ours, and
// table rows with as many cells as their header.
func requireWellFormed(t testing.TB, body string) {
	t.Helper()
	require.True(t, utf8.ValidString(body), "invalid UTF-8")

	fence := ""
	depth := 0
	for i, line := range strings.Split(body, "\n") {
		if fence != "" {
			trimmed := strings.TrimLeft(line, " ")
			if len(line)-len(trimmed) <= 3 && strings.HasPrefix(trimmed, fence) && strings.Trim(trimmed, "` \t") == "" {
				fence = ""
			}
			continue
		}
		if m := fenceOpen.FindStringSubmatch(line); m != nil {
			fence = m[1]
			continue
		}
		if strings.HasPrefix(line, "<details>") {
			depth++
		}
		if strings.HasPrefix(line, "</details>") {
			depth--
			require.GreaterOrEqual(t, depth, 0, "line %d closes a <details> that is not open", i+1)
		}
	}
	require.Empty(t, fence, "a code fence is left open")
	require.Zero(t, depth, "a <details> is left open")

	var out bytes.Buffer
	require.NoError(t, markdown.Convert([]byte(body), &out))
	html := out.String()
	depth = 0
	for _, tag := range detailsTag.FindAllString(html, -1) {
		if strings.HasPrefix(tag, "</") {
			depth--
		} else {
			depth++
		}
		require.GreaterOrEqual(t, depth, 0, "rendered HTML closes a <details> that is not open")
	}
	require.Zero(t, depth, "rendered HTML leaves a <details> open")
	for _, tag := range anyTag.FindAllStringSubmatch(html, -1) {
		if !allowedTags[tag[1]] {
			require.Failf(t, "unexpected raw HTML", "<%s> in the rendered output", tag[1])
		}
	}
	for _, tbl := range tableHTML.FindAllString(html, -1) {
		rows := rowHTML.FindAllString(tbl, -1)
		require.NotEmpty(t, rows)
		cells := strings.Count(rows[0], "<th")
		for _, r := range rows[1:] {
			require.Equal(t, cells, strings.Count(r, "<td"), "a table row has the wrong number of cells: %s", r)
		}
	}
}

var allowedTags = map[string]bool{
	"details": true, "summary": true, "code": true, "b": true, "p": true, "h3": true, "table": true, "thead": true,
	"tbody": true, "tr": true, "th": true, "td": true, "ul": true, "li": true, "strong": true, "em": true,
	"blockquote": true, "pre": true, "a": true,
}
