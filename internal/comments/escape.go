package comments

import (
	"html"
	"net/url"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Upper bounds for one-line user-controlled values, in runes. They keep any single line of the output far below
// MinCommentLimit, so the splitter always finds room for it.
const (
	maxNameRunes = 300  // model, environment, project names
	maxUserRunes = 100  // logins
	maxLineRunes = 1000 // notes, approval requirements
)

// ansiEscape matches terminal colour and cursor sequences that tools print into their errors.
var ansiEscape = regexp.MustCompile(`\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]`)

// sanitize makes tool or user text safe to embed: valid UTF-8, "\n" line endings only (a lone "\r" would be a
// line ending to a markdown parser), no terminal escapes and no other control characters except tabs.
func sanitize(s string) string {
	if clean(s) {
		return s
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	if strings.Contains(s, "\x1b") {
		s = ansiEscape.ReplaceAllString(s, "")
	}
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\t':
			return r
		case r == '\r':
			return '\n'
		case r < 0x20 || r == 0x7f:
			return '\uFFFD'
		}
		return r
	}, s)
}

// clean reports whether sanitize would leave s as it is (the common case, checked without allocating).
func clean(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\n' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return utf8.ValidString(s)
}

// oneLine sanitizes s, folds its whitespace into single spaces when it spans lines (or holds tabs) and cuts
// it to maxRunes runes, marking the cut with "…".
func oneLine(s string, maxRunes int) string {
	s = sanitize(s)
	if strings.ContainsAny(s, "\n\t") {
		s = strings.Join(strings.Fields(s), " ")
	}
	s = strings.TrimSpace(s)
	if utf8.RuneCountInString(s) > maxRunes {
		s = cutRunes(s, maxRunes-1) + "…"
	}
	return s
}

// cutRunes returns the first n runes of s.
func cutRunes(s string, n int) string {
	if n <= 0 {
		return ""
	}
	i := 0
	for pos := range s {
		if i == n {
			return s[:pos]
		}
		i++
	}
	return s
}

// markdownSpecial are the characters that could start markdown or HTML inside a line, and "$" (GitHub math).
const markdownSpecial = "\\`*_[]<>|&~$"

// text escapes a one-line value for markdown prose (also valid inside a table cell: "|" is escaped).
func text(s string, maxRunes int) string { return escapeMarkdown(oneLine(s, maxRunes)) }

func escapeMarkdown(s string) string {
	if !strings.ContainsAny(s, markdownSpecial) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if r < utf8.RuneSelf && strings.IndexByte(markdownSpecial, byte(r)) >= 0 {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// code renders a one-line value as a markdown code span, whatever backticks it holds. Inside a table cell use
// cellCode: GFM splits cells on "|" even inside code spans.
func code(s string, maxRunes int) string { return codeSpan(oneLine(s, maxRunes)) }

func codeSpan(s string) string {
	longest, run := 0, 0
	for i := 0; i < len(s); i++ {
		if s[i] == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	fence := strings.Repeat("`", longest+1)
	// A code span strips one space from each end when both are spaces, and cannot start or end with its own
	// delimiter character: pad in those cases.
	if s == "" || s[0] == '`' || s[len(s)-1] == '`' || s[0] == ' ' || s[len(s)-1] == ' ' {
		s = " " + s + " "
	}
	return fence + s + fence
}

// cellCode is code for a table cell.
func cellCode(s string, maxRunes int) string {
	return strings.ReplaceAll(code(s, maxRunes), "|", `\|`)
}

// htmlCode renders a one-line value as <code> inside raw HTML (a <summary>), where markdown does not apply.
func htmlCode(s string, maxRunes int) string {
	return "<code>" + html.EscapeString(oneLine(s, maxRunes)) + "</code>"
}

// htmlText escapes a one-line value for raw HTML.
func htmlText(s string, maxRunes int) string { return html.EscapeString(oneLine(s, maxRunes)) }

// prose renders bot-written plain text in which `backticked` spans are code, as notes use them ("comment
// `/dagctl plan`"). Everything else is escaped, so that user-derived parts of a note cannot break the layout.
func prose(s string, maxRunes int) string {
	s = oneLine(s, maxRunes)
	parts := strings.Split(s, "`")
	if len(parts)%2 == 0 { // an unpaired backtick: no code spans at all
		return escapeMarkdown(s)
	}
	var b strings.Builder
	for i, p := range parts {
		if i%2 == 1 && strings.TrimSpace(p) != "" {
			b.WriteString(codeSpan(p))
		} else {
			b.WriteString(escapeMarkdown(p))
		}
	}
	return b.String()
}

// safeURL returns u when it is an absolute http(s) URL, encoded so that it cannot end a markdown link early;
// otherwise "".
func safeURL(u string) string {
	parsed, err := url.Parse(strings.TrimSpace(u))
	if err != nil || (parsed.Scheme != "https" && parsed.Scheme != "http") || parsed.Host == "" {
		return ""
	}
	return strings.NewReplacer("(", "%28", ")", "%29", "<", "%3C", ">", "%3E", " ", "%20", "\"", "%22",
		"`", "%60", "|", "%7C").Replace(parsed.String())
}

// link renders a markdown link to u, or just the label when u is not usable.
func link(label, u string) string {
	if u = safeURL(u); u == "" {
		return label
	}
	return "[" + label + "](" + u + ")"
}
