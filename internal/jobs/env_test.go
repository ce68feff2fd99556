package jobs

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBuildEnvGivesOnlyTheBaseWhenNothingIsNamed(t *testing.T) {
	env, refused := BuildEnv(EnvRequest{
		Bot: map[string]string{"PATH": "/bot/bin:/usr/bin", "HOME": "/home/bot", "AWS_SECRET_ACCESS_KEY": "s3cr3t", "LANG": "de_DE.UTF-8"},
	})

	assert.Equal(t, map[string]string{"PATH": "/bot/bin:/usr/bin", "LANG": "C.UTF-8", "TZ": "UTC"}, env)
	assert.Empty(t, refused)
}

func TestBuildEnvSetsHomeWhenGivenAndHasAPathWhenTheBotHasNone(t *testing.T) {
	env, _ := BuildEnv(EnvRequest{Bot: map[string]string{}, Home: "/scratch/home"})

	assert.Equal(t, map[string]string{"PATH": defaultPath, "HOME": "/scratch/home", "LANG": "C.UTF-8", "TZ": "UTC"}, env)
}

func TestBuildEnvPassesWhatTheRepoAsksForAndTheOperatorAllows(t *testing.T) {
	env, refused := BuildEnv(EnvRequest{
		Bot:     map[string]string{"PATH": "/usr/bin", "WAREHOUSE_USER": "analyst", "WAREHOUSE_PASSWORD": "pw-1234", "UNRELATED": "x"},
		Allowed: []string{"WAREHOUSE_USER", "WAREHOUSE_PASSWORD", "NOT_SET_IN_BOT"},
		PassEnv: []string{"WAREHOUSE_USER", "NOT_SET_IN_BOT", "UNRELATED"},
	})

	assert.Equal(t, "analyst", env["WAREHOUSE_USER"])
	assert.NotContains(t, env, "WAREHOUSE_PASSWORD", "allowed but not asked for")
	assert.NotContains(t, env, "NOT_SET_IN_BOT")
	assert.NotContains(t, env, "UNRELATED")
	assert.Equal(t, []Refused{{Name: "UNRELATED", Reason: RefusedNotAllowed}}, refused)
}

func TestBuildEnvNeverPassesTheBotsCredentialsEvenWhenAllowedAndAskedFor(t *testing.T) {
	credentials := []string{
		"DAGCTL_GITHUB_PRIVATE_KEY", "DAGCTL_GITHUB_WEBHOOK_SECRET", "DAGCTL_GITLAB_TOKEN",
		"DAGCTL_GITLAB_WEBHOOK_SECRET", "DAGCTL_GITHUB_APP_ID", "dagctl_github_private_key",
	}
	bot := map[string]string{"PATH": "/usr/bin"}
	for _, name := range credentials {
		bot[name] = "value-of-" + name
	}

	env, refused := BuildEnv(EnvRequest{Bot: bot, Allowed: credentials, PassEnv: credentials})

	for _, name := range credentials {
		assert.NotContains(t, env, name)
		assert.Contains(t, refused, Refused{Name: name, Reason: RefusedBotCredential})
	}
	assert.Len(t, refused, len(credentials))
}

func TestBuildEnvRefusesACredentialTheBotDoesNotHaveRightNow(t *testing.T) {
	_, refused := BuildEnv(EnvRequest{
		Bot:     map[string]string{},
		Allowed: []string{"DAGCTL_GITLAB_TOKEN"},
		PassEnv: []string{"DAGCTL_GITLAB_TOKEN"},
	})

	assert.Equal(t, []Refused{{Name: "DAGCTL_GITLAB_TOKEN", Reason: RefusedBotCredential}}, refused)
}

func TestBuildEnvKeepsTheBotsOwnSettingsFromJobs(t *testing.T) {
	env, refused := BuildEnv(EnvRequest{
		Bot:     map[string]string{"DAGCTL_DATABASE_URL": "postgres://bot:pw@db/bot", "DAGCTL_JOB_ENV": "X"},
		Allowed: []string{"DAGCTL_DATABASE_URL", "DAGCTL_JOB_ENV"},
		PassEnv: []string{"DAGCTL_DATABASE_URL", "DAGCTL_JOB_ENV"},
	})

	assert.NotContains(t, env, "DAGCTL_DATABASE_URL")
	assert.NotContains(t, env, "DAGCTL_JOB_ENV")
	assert.Equal(t, []Refused{
		{Name: "DAGCTL_DATABASE_URL", Reason: RefusedBotSetting},
		{Name: "DAGCTL_JOB_ENV", Reason: RefusedBotSetting},
	}, refused)
}

func TestBuildEnvRefusesAnyVariableHoldingTheJobToken(t *testing.T) {
	const token = "ghs_installationtoken123"
	env, refused := BuildEnv(EnvRequest{
		Bot:      map[string]string{"GITHUB_TOKEN": token, "REMOTE": "https://x-access-token:" + token + "@github.com/o/r"},
		Allowed:  []string{"GITHUB_TOKEN", "REMOTE"},
		PassEnv:  []string{"GITHUB_TOKEN", "REMOTE"},
		Literal:  map[string]string{"FROM_REPO": token},
		Required: map[string]string{"FROM_PLANNER": "prefix-" + token},
		Secrets:  []string{"", token},
	})

	for _, name := range []string{"GITHUB_TOKEN", "REMOTE", "FROM_REPO", "FROM_PLANNER"} {
		assert.NotContains(t, env, name)
		assert.Contains(t, refused, Refused{Name: name, Reason: RefusedSecretValue})
	}
}

func TestBuildEnvLetsRepoLiteralsOverridePassedValuesAndTheCommandOverrideBoth(t *testing.T) {
	env, refused := BuildEnv(EnvRequest{
		Bot:      map[string]string{"TZ": "Europe/Berlin", "TARGET": "from-bot", "TERM": "xterm"},
		Allowed:  []string{"TZ", "TARGET", "TERM"},
		PassEnv:  []string{"TZ", "TARGET", "TERM"},
		Literal:  map[string]string{"TARGET": "from-repo", "TERM": "from-repo", "DAGCTL_PROFILE": "repo's own"},
		Required: map[string]string{"TERM": "dumb", "NO_COLOR": "1"},
	})

	assert.Equal(t, "Europe/Berlin", env["TZ"], "an allowed, asked-for variable replaces the base")
	assert.Equal(t, "from-repo", env["TARGET"])
	assert.Equal(t, "dumb", env["TERM"])
	assert.Equal(t, "1", env["NO_COLOR"])
	assert.Equal(t, "repo's own", env["DAGCTL_PROFILE"], "a literal is the repo's own value, not the bot's")
	assert.Empty(t, refused)
}

func TestBuildEnvRemovesANameRefusedFromALaterSource(t *testing.T) {
	env, refused := BuildEnv(EnvRequest{
		Bot:     map[string]string{"TARGET": "fine"},
		Allowed: []string{"TARGET"},
		PassEnv: []string{"TARGET"},
		Literal: map[string]string{"TARGET": "tok-12345"},
		Secrets: []string{"tok-12345"},
	})

	assert.NotContains(t, env, "TARGET")
	assert.Equal(t, []Refused{{Name: "TARGET", Reason: RefusedSecretValue}}, refused)
}

func TestParseNames(t *testing.T) {
	assert.Equal(t, []string{"A", "B_2", "C"}, ParseNames(" A, B_2,,A , C ,"))
	assert.Empty(t, ParseNames(""))
}

func TestEnvMapAndEnvList(t *testing.T) {
	m := EnvMap([]string{"A=1", "B=x=y", "A=2", "NOEQUALS", "=hidden", "EMPTY="})
	assert.Equal(t, map[string]string{"A": "2", "B": "x=y", "EMPTY": ""}, m)

	assert.Equal(t, []string{"A=2", "B=x=y", "EMPTY="}, EnvList(m))
	list := EnvList(nil)
	require.NotNil(t, list, "a nil environment would make exec inherit the bot's")
	assert.Empty(t, list)
}

func TestPassedValuesAreWhatTheJobGetsFromTheOperatorAndTheConfig(t *testing.T) {
	values := PassedValues(EnvRequest{
		Bot:      map[string]string{"PATH": "/usr/bin", "WAREHOUSE_PASSWORD": "pw-from-the-bot", "OTHER": "not-passed"},
		Allowed:  []string{"WAREHOUSE_PASSWORD", "OTHER"},
		PassEnv:  []string{"WAREHOUSE_PASSWORD", "NOT_SET_IN_BOT"},
		Literal:  map[string]string{"DSN": "postgres://ci@db/x", "OVERRIDDEN": "literal-value"},
		Required: map[string]string{"OVERRIDDEN": "required-value"},
		Home:     "/scratch/home",
	})

	assert.ElementsMatch(t, []string{"pw-from-the-bot", "postgres://ci@db/x"}, values,
		"not the base (PATH, HOME), not what was not passed, not the command's own variables")
}
