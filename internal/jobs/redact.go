package jobs

import (
	"encoding/base64"
	"net/url"
	"regexp"
	"sort"
	"strings"
)

// Mask replaces a redacted secret.
const Mask = "***"

// MinSecretLen is the shortest value a Redactor masks: masking "1", "true" or a port number everywhere would
// shred every log without protecting anything worth protecting (no credential is that short).
const MinSecretLen = 6

// urlCredentials finds the user-info part of URLs, as in https://x-access-token:TOKEN@github.com/….
var urlCredentials = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.\-]*://)([^\s/?#@'"]+)@`)

// Redactor masks secret values, and the credentials in URLs, in text shown to people or stored. Use it on
// every log line of a job. The zero value and nil mask URL credentials only. A Redactor is immutable and
// safe for concurrent use.
type Redactor struct {
	secrets  []string
	replacer *strings.Replacer
}

// NewRedactor returns a Redactor for the given secret values. Empty and too short values are ignored.
func NewRedactor(secrets ...string) *Redactor {
	return (*Redactor)(nil).With(secrets...)
}

// With returns a Redactor that masks r's secrets and these.
func (r *Redactor) With(secrets ...string) *Redactor {
	seen := map[string]bool{}
	var all []string
	add := func(s string) {
		if len(s) >= MinSecretLen && !seen[s] {
			seen[s] = true
			all = append(all, s)
		}
	}
	if r != nil {
		for _, s := range r.secrets {
			add(s)
		}
	}
	for _, s := range secrets {
		if len(s) < MinSecretLen {
			continue // nor its encodings, which may be longer ("a b@c" is "a+b%40c")
		}
		add(s)
		// A log line holds at most one line of a multi-line secret (a private key), and a secret may show
		// up URL-encoded (in a clone URL or a query string) or base64-encoded (a header, a Secret's data). This
		// is hygiene against accidents, not a boundary: code that wants to leak a value can encode it otherwise.
		for _, line := range strings.Split(s, "\n") {
			add(strings.TrimSpace(line))
		}
		add(url.QueryEscape(s))
		add(url.PathEscape(s))
		add(escapeAll(s))
		for _, form := range base64Forms(s) {
			add(form)
		}
	}
	// strings.Replacer tries patterns in argument order at each position: longest first, so that a secret
	// containing another is masked whole.
	sort.SliceStable(all, func(i, j int) bool { return len(all[i]) > len(all[j]) })
	pairs := make([]string, 0, 2*len(all))
	for _, s := range all {
		pairs = append(pairs, s, Mask)
	}
	return &Redactor{secrets: all, replacer: strings.NewReplacer(pairs...)}
}

// Redact returns text with every secret and every URL credential masked.
func (r *Redactor) Redact(text string) string {
	if r != nil && r.replacer != nil {
		text = r.replacer.Replace(text)
	}
	return urlCredentials.ReplaceAllStringFunc(text, func(m string) string {
		sub := urlCredentials.FindStringSubmatch(m)
		scheme, userinfo := sub[1], sub[2]
		if user, _, hasPassword := strings.Cut(userinfo, ":"); hasPassword {
			return scheme + user + ":" + Mask + "@" // the user name (x-access-token, oauth2) helps debugging
		}
		return scheme + Mask + "@" // a lone user name may itself be the token (https://TOKEN@github.com)
	})
}

// Sink wraps a sink so that every line it receives is redacted first.
func (r *Redactor) Sink(sink Sink) Sink {
	if sink == nil {
		return nil
	}
	return func(l Line) {
		l.Text = r.Redact(l.Text)
		sink(l)
	}
}

// escapeAll percent-encodes every byte but RFC 3986's unreserved characters, as JavaScript's
// encodeURIComponent and Python's quote(s, safe="") do.
func escapeAll(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '.', c == '_', c == '~':
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}

// base64Forms are the ways a secret shows up base64-encoded: whole (padded or not, standard or URL alphabet),
// and inside a longer encoded text (an Authorization: Basic header, an encoded JSON blob), where it may start at
// any of the three byte positions of a group. Inside, only the characters that encode the secret's bits alone
// are fixed; those are masked. Encoders that wrap lines (base64(1) at 76 characters, openssl at 64) put each
// 57- or 48-byte chunk of an encoded-from-the-start value on a line of its own.
func base64Forms(s string) []string {
	var forms []string
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		forms = append(forms, enc.EncodeToString([]byte(s)), enc.WithPadding(base64.NoPadding).EncodeToString([]byte(s)))
		for offset := 0; offset < 3; offset++ {
			encoded := enc.EncodeToString(append(make([]byte, offset), s...))
			// Character i holds bits 6i to 6i+5 of the text; keep those that lie inside the secret's bytes.
			first, last := (8*offset+5)/6, 8*(offset+len(s))/6
			if last-first >= MinSecretLen {
				forms = append(forms, encoded[first:last])
			}
		}
		for _, chunk := range []int{57, 48} {
			for i := 0; len(s) > chunk && i < len(s); i += chunk {
				if part := s[i:min(i+chunk, len(s))]; len(part) >= MinSecretLen {
					forms = append(forms, enc.WithPadding(base64.NoPadding).EncodeToString([]byte(part))[:8*len(part)/6])
				}
			}
		}
	}
	return forms
}
