package jobs

import (
	"encoding/base64"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestRedactorMasksSecretValues(t *testing.T) {
	r := NewRedactor("hunter22", "", "ab")

	assert.Equal(t, "password=*** and again ***.", r.Redact("password=hunter22 and again hunter22."))
	assert.Equal(t, "ab stays: too short to be a credential", r.Redact("ab stays: too short to be a credential"))
}

func TestRedactorMasksTheLongestSecretWhole(t *testing.T) {
	r := NewRedactor("abcdef", "abcdefghij")

	assert.Equal(t, "x *** y ***", r.Redact("x abcdefghij y abcdef"))
}

func TestRedactorMasksEveryLineOfAMultiLineSecret(t *testing.T) {
	key := "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEAx\nQ29udGludWVk\n-----END RSA PRIVATE KEY-----\n"
	r := NewRedactor(key)

	assert.Equal(t, "error near ***", r.Redact("error near MIIEpAIBAAKCAQEAx"))
	assert.Equal(t, "***", r.Redact("-----BEGIN RSA PRIVATE KEY-----"))
	assert.NotContains(t, r.Redact(key), "Q29udGludWVk")
}

func TestRedactorMasksURLEncodedSecrets(t *testing.T) {
	r := NewRedactor("p@ss/word")

	assert.Equal(t, "q=***", r.Redact("q=p%40ss%2Fword"))
}

func TestRedactorSkipsTriviallyShortValues(t *testing.T) {
	r := NewRedactor("12345", "on", "true", "a b@c", "123456")

	assert.Equal(t, "12345 on true ***", r.Redact("12345 on true 123456"), "masking 5 characters everywhere would shred logs")
	assert.Equal(t, "a+b%40c", r.Redact("a+b%40c"), "nor their longer encodings")
}

func TestRedactorMasksBase64AndURLEncodingsOfSecrets(t *testing.T) {
	secret := "p@ss/w rd+hunter2~" // has characters that the base64 alphabets and URL escaping treat differently
	r := NewRedactor(secret)
	forms := map[string]string{
		"std":         base64.StdEncoding.EncodeToString([]byte(secret)),
		"std raw":     base64.RawStdEncoding.EncodeToString([]byte(secret)),
		"url":         base64.URLEncoding.EncodeToString([]byte(secret)),
		"url raw":     base64.RawURLEncoding.EncodeToString([]byte(secret)),
		"query":       url.QueryEscape(secret),
		"path":        url.PathEscape(secret),
		"every byte":  "p%40ss%2Fw%20rd%2Bhunter2~",                             // encodeURIComponent, Python's quote(s, safe="")
		"echo|base64": base64.StdEncoding.EncodeToString([]byte(secret + "\n")), // with the newline echo adds
		"basic auth":  "Basic " + base64.StdEncoding.EncodeToString([]byte("user:"+secret)),
		"in a blob":   base64.URLEncoding.EncodeToString([]byte(`{"password":"` + secret + `"}`)),
	}
	for name, form := range forms {
		got := r.Redact("out: " + form + " end")
		assert.Contains(t, got, Mask, name)
		assert.NotContains(t, got, form, name)
	}
	for name, form := range map[string]string{"std": forms["std"], "url": forms["url"], "query": forms["query"], "path": forms["path"], "every byte": forms["every byte"]} {
		assert.Equal(t, "out: *** end", r.Redact("out: "+form+" end"), name)
	}
}

func TestRedactorMasksWrappedBase64OfLongSecrets(t *testing.T) {
	secret := strings.Repeat("0123456789abcdef", 10) // 160 bytes: GNU base64 wraps at 76 characters, openssl at 64
	r := NewRedactor(secret)
	encoded := base64.StdEncoding.EncodeToString([]byte(secret))
	for _, width := range []int{76, 64} {
		for i := 0; i < len(encoded); i += width {
			line := encoded[i:min(i+width, len(encoded))]
			if len(line) < 12 {
				continue // the last line may hold too little of the value to tell
			}
			assert.NotContains(t, r.Redact(line), line[:len(line)-4], "width %d, line %d", width, i/width)
		}
	}
}

func TestRedactorMasksCredentialsInURLs(t *testing.T) {
	var r *Redactor // even without secrets
	cases := map[string]string{
		"fatal: https://x-access-token:ghs_abc123@github.com/o/r.git": "fatal: https://x-access-token:***@github.com/o/r.git",
		"remote https://oauth2:glpat-xyz@gitlab.example.com/g/p.git":  "remote https://oauth2:***@gitlab.example.com/g/p.git",
		"https://ghp_tokenasuser@github.com/o/r":                      "https://***@github.com/o/r",
		"'postgres://bot:pw@db:5432/x'":                               "'postgres://bot:***@db:5432/x'",
		"mail me at someone@example.com, see https://github.com/o/r":  "mail me at someone@example.com, see https://github.com/o/r",
	}
	for in, want := range cases {
		assert.Equal(t, want, r.Redact(in), in)
	}
}

func TestRedactorWithAddsSecretsAndKeepsTheOldOnes(t *testing.T) {
	base := NewRedactor("first-secret")
	more := base.With("second-secret")

	assert.Equal(t, "*** ***", more.Redact("first-secret second-secret"))
	assert.Equal(t, "*** second-secret", base.Redact("first-secret second-secret"), "the original is unchanged")
}

func TestRedactorSinkRedactsEveryLine(t *testing.T) {
	var got []Line
	sink := NewRedactor("tok-9876").Sink(func(l Line) { got = append(got, l) })

	sink(Line{Stream: "stderr", Text: "auth with tok-9876 failed"})

	assert.Equal(t, []Line{{Stream: "stderr", Text: "auth with *** failed"}}, got)
	assert.Nil(t, NewRedactor().Sink(nil))
}
