package jobs

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestRedactorMasksSecretValues(t *testing.T) {
	r := NewRedactor("hunter22", "", "ab")

	assert.Equal(t, "password=*** and again ***.", r.Redact("password=hunter22 and again hunter22."))
	assert.Equal(t, "ab stays: too short to be a credential", r.Redact("ab stays: too short to be a credential"))
}

func TestRedactorMasksTheLongestSecretWhole(t *testing.T) {
	r := NewRedactor("abcd", "abcdefgh")

	assert.Equal(t, "x *** y ***", r.Redact("x abcdefgh y abcd"))
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
