package command

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/plan"
)

// sha40 is a full commit SHA.
const sha40 = "0123456789abcdef0123456789abcdef01234567"

func TestParseCommands(t *testing.T) {
	cases := []struct {
		body string
		want []Command
	}{
		{"looks good to me", nil},
		{"/dagctl plan", []Command{{Verb: Plan}}},
		{"/dagctl", []Command{{Verb: Help}}},
		{"  /dagctl plan dev --forward-only", []Command{{Verb: Plan, Env: "dev", Flags: plan.Flags{ForwardOnly: true}}}},
		{"/dagctl plan prod --restate-model db.a -r db.b --start 2024-01-01 --end=2024-01-07", []Command{{
			Verb: Plan, Env: "prod",
			Flags: plan.Flags{RestateModels: []string{"db.a", "db.b"}, Start: "2024-01-01", End: "2024-01-07"},
		}}},
		{"/dagctl apply prod", []Command{{Verb: Apply, Env: "prod"}}},
		{"/dagctl apply prod --accept 0123456789abcdef", []Command{{Verb: Apply, Env: "prod", Accept: "0123456789abcdef"}}},
		{"/dagctl apply --accept=0123456789ab prod", []Command{{Verb: Apply, Env: "prod", Accept: "0123456789ab"}}},
		{"/dagctl unlock", []Command{{Verb: Unlock}}},
		{"/dagctl cancel", []Command{{Verb: Cancel}}},
		{"please\n/dagctl plan dev\nthen\n/dagctl apply dev", []Command{{Verb: Plan, Env: "dev"}, {Verb: Apply, Env: "dev"}}},
		{"```\n/dagctl apply prod\n```", nil},
		{"/dagctlx plan", nil},
		{"> quoted /dagctl apply", nil},
		{"/dagctl plan --sha " + sha40, []Command{{Verb: Plan, SHA: sha40}}},
		{"/dagctl plan dev --sha=" + strings.ToUpper(sha40) + " --forward-only", []Command{{
			Verb: Plan, Env: "dev", SHA: sha40, Flags: plan.Flags{ForwardOnly: true},
		}}},
	}
	for _, c := range cases {
		got, err := Parse(c.body)
		require.NoError(t, err, c.body)
		assert.Equal(t, c.want, got, c.body)
	}
}

func TestParseErrors(t *testing.T) {
	cases := map[string]string{
		"/dagctl destroy":                      `unknown command "destroy"`,
		"/dagctl plan --bogus":                 `unknown flag "--bogus"`,
		"/dagctl plan --start":                 "--start needs a value",
		"/dagctl plan dev prod":                "only one environment",
		"/dagctl plan --restate-model ;rm":     "is not a model name",
		"/dagctl plan --start $(id)":           "is not a date",
		"/dagctl apply prod dev":               "at most one environment",
		"/dagctl apply --forward-only":         "takes no plan flags",
		"/dagctl apply prod --accept 0123":     "not a content hash",
		"/dagctl apply prod --accept":          "needs the content hash",
		"/dagctl cancel now":                   "takes no arguments",
		"/dagctl plan --forward-only=yes":      "takes no value",
		"/dagctl plan --restate-model --start": "needs a value",
		// A short SHA names whichever commit shares its prefix: a fork author can make one in seconds.
		"/dagctl plan --sha " + sha40[:7]:                 "full 40-character commit SHA",
		"/dagctl plan --sha " + sha40 + "0":               "full 40-character commit SHA",
		"/dagctl plan --sha " + strings.Repeat("g", 40):   "full 40-character commit SHA",
		"/dagctl plan --sha":                              "--sha needs a value",
		"/dagctl plan --sha " + sha40 + " --sha " + sha40: "only one --sha",
		"/dagctl apply --sha " + sha40:                    "takes no plan flags",
	}
	for body, want := range cases {
		_, err := Parse(body)
		var cerr *Error
		require.ErrorAs(t, err, &cerr, body)
		assert.Contains(t, err.Error(), want, body)
	}
}

func TestStringIsParsedBackAsTheSameCommand(t *testing.T) {
	for _, c := range []Command{
		{Verb: Plan},
		{Verb: Plan, Env: "dev", SHA: sha40},
		{Verb: Plan, Env: "prod", SHA: sha40, Flags: plan.Flags{
			ForwardOnly: true, RestateModels: []string{"db.a", "db.b"}, Start: "2024-01-01", End: "2024-01-07",
		}},
		{Verb: Apply, Env: "prod"},
	} {
		got, err := Parse(c.String())
		require.NoError(t, err, c.String())
		assert.Equal(t, []Command{c}, got, c.String())
	}
	assert.Equal(t, "/dagctl plan dev --sha "+sha40, Command{Verb: Plan, Env: "dev", SHA: sha40}.String())
}
