package jobs

import (
	"net/url"
	"regexp"
	"sort"
	"strings"
)

// Mask replaces a redacted secret.
const Mask = "***"

// MinSecretLen is the shortest value a Redactor masks: masking "1" or "on" everywhere would destroy every
// log without protecting anything, since no credential is that short.
const MinSecretLen = 4

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
		add(s)
		// A log line holds at most one line of a multi-line secret (a private key), and a secret may show
		// up URL-encoded (in a clone URL or a query string).
		for _, line := range strings.Split(s, "\n") {
			add(strings.TrimSpace(line))
		}
		add(url.QueryEscape(s))
		add(url.PathEscape(s))
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
