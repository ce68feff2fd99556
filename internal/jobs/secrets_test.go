package jobs

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dagctl/dagctl-bot/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// botSecrets are the bot's credentials as the operator would set them.
var botSecrets = map[string]string{
	"DAGCTL_GITHUB_PRIVATE_KEY":    "-----BEGIN RSA PRIVATE KEY-----\nMIIEbotprivatekeyline\n-----END RSA PRIVATE KEY-----",
	"DAGCTL_GITHUB_WEBHOOK_SECRET": "github-webhook-secret-value",
	"DAGCTL_GITLAB_TOKEN":          "glpat-bot-gitlab-token",
	"DAGCTL_GITLAB_WEBHOOK_SECRET": "gitlab-webhook-secret-value",
	"DAGCTL_DATABASE_URL":          "postgres://bot:database-password@db/dagctl",
}

// jobToken is the installation token the bot cloned with; the bot happens to have it in its environment.
const jobToken = "ghs_jobinstallationtoken"

// setBotEnvironment gives the test process (the bot) its secrets, an allowed variable, and the operator's
// DAGCTL_JOB_ENV, which (wrongly) allows some of the credentials too.
func setBotEnvironment(t *testing.T) {
	for name, value := range botSecrets {
		t.Setenv(name, value)
	}
	t.Setenv("GITHUB_TOKEN", jobToken)
	t.Setenv("WAREHOUSE_USER", "analyst")
	t.Setenv("NOT_ALLOWED", "operator-did-not-allow-this")
	t.Setenv("DAGCTL_JOB_ENV", "WAREHOUSE_USER,DAGCTL_GITHUB_PRIVATE_KEY,DAGCTL_GITLAB_TOKEN,DAGCTL_DATABASE_URL,GITHUB_TOKEN")
}

// jobEnvFromBot builds the job environment the way the bot does, for a repo config that asks for everything.
func jobEnvFromBot(t *testing.T, required map[string]string) map[string]string {
	t.Helper()
	passEnv := []string{"WAREHOUSE_USER", "NOT_ALLOWED", "GITHUB_TOKEN"}
	for name := range botSecrets {
		passEnv = append(passEnv, name)
	}
	env, refused := BuildEnv(EnvRequest{
		Bot:      EnvMap(os.Environ()),
		Allowed:  ParseNames(os.Getenv("DAGCTL_JOB_ENV")),
		PassEnv:  passEnv,
		Literal:  map[string]string{"FROM_REPO_CONFIG": "literal"},
		Required: required,
		Secrets:  []string{jobToken},
	})
	var names []string
	for _, r := range refused {
		names = append(names, r.Name)
	}
	require.ElementsMatch(t, []string{
		"DAGCTL_GITHUB_PRIVATE_KEY", "DAGCTL_GITHUB_WEBHOOK_SECRET", "DAGCTL_GITLAB_TOKEN",
		"DAGCTL_GITLAB_WEBHOOK_SECRET", "DAGCTL_DATABASE_URL", "GITHUB_TOKEN", "NOT_ALLOWED",
	}, names)
	return env
}

// requireNoSecret fails if any line shows a credential of the bot.
func requireNoSecret(t *testing.T, output string) {
	t.Helper()
	for name, value := range botSecrets {
		for _, part := range strings.Split(value, "\n") {
			assert.NotContains(t, output, part, name)
		}
	}
	assert.NotContains(t, output, jobToken)
	assert.NotContains(t, output, "operator-did-not-allow-this")
}

func TestJobsCannotSeeTheBotsCredentials(t *testing.T) {
	setBotEnvironment(t)
	env := jobEnvFromBot(t, nil)
	python := testutil.Python(t)
	l, _ := newTestLocal(t, 0)
	for name, command := range map[string][]string{
		"env": {"env"},
		"python": {python, "-c", `import os
for name, value in sorted(os.environ.items()):
    print(f"{name}={value}")
with open("/proc/self/environ", "rb") as f:
    print(f.read().replace(b"\0", b"\n").decode())`},
	} {
		t.Run(name, func(t *testing.T) {
			res, rec := runJob(t, l, Spec{RunID: "secrets-" + name, Source: Source{Dir: t.TempDir()}, Command: command, Env: env})

			require.True(t, res.Succeeded(), "%+v: %s", res, rec.joined())
			requireNoSecret(t, rec.joined())
			got := EnvMap(rec.texts("stdout"))
			assert.Equal(t, "analyst", got["WAREHOUSE_USER"], "an allowed, asked-for variable passes")
			assert.Equal(t, "literal", got["FROM_REPO_CONFIG"])
		})
	}
}

// helperEnv makes the test binary act as a bot whose initial environment holds credentials (see TestMain).
const helperEnv = "DAGCTL_JOBS_TEST_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "bot" {
		os.Exit(runHelperBot())
	}
	os.Exit(m.Run())
}

// runHelperBot runs one job that tries to read the bot's environment from /proc, and prints what it got.
func runHelperBot() int {
	l, err := NewLocal(LocalOptions{})
	if err != nil {
		fmt.Println("helper:", err)
		return 2
	}
	env, _ := BuildEnv(EnvRequest{Bot: EnvMap(os.Environ())})
	h, err := l.Start(context.Background(), Spec{
		RunID:  "proc-environ",
		Source: Source{Dir: os.TempDir()},
		Command: []string{"sh", "-c", `
			echo "bot pid $PPID"
			tr '\0' '\n' < /proc/$PPID/environ
			tr '\0' '\n' < /proc/$PPID/task/$PPID/environ
			head -c 100000 /proc/$PPID/mem
			tr '\0' '\n' < /proc/self/environ`},
		Env: env,
	}, func(l Line) { fmt.Printf("%s: %s\n", l.Stream, l.Text) })
	if err != nil {
		fmt.Println("helper:", err)
		return 2
	}
	res, err := h.Wait(context.Background())
	if err != nil {
		fmt.Println("helper:", err)
		return 2
	}
	fmt.Printf("helper: job ended %+v\n", res)
	return 0
}

func TestJobsCannotReadTheBotsStartupEnvironmentFromProc(t *testing.T) {
	// The secrets must be in the environment the bot process starts with, which /proc/<pid>/environ shows
	// whatever the process does later: so the bot is this test binary, started again.
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), helperEnv+"=bot", "DAGCTL_WORKDIR="+filepath.Join(t.TempDir(), "work"),
		"GITHUB_TOKEN="+jobToken)
	for name, value := range botSecrets {
		cmd.Env = append(cmd.Env, name+"="+value)
	}

	out, err := cmd.CombinedOutput()

	require.NoError(t, err, "%s", out)
	output := string(out)
	require.Contains(t, output, "helper: job ended")
	require.Contains(t, output, "stdout: TZ=UTC", "the job ran and could read its own environment")
	require.Contains(t, output, "/environ: Permission denied", "the job tried to read the bot's")
	requireNoSecret(t, output)
}

func TestSQLMeshPlanCannotSeeTheBotsCredentials(t *testing.T) {
	setBotEnvironment(t)
	sqlmesh := testutil.SQLMesh(t)
	repo := newGitRepo(t)
	copyDir(t, filepath.Join("testdata", "sqlmesh_env_probe"), filepath.Join(repo, "warehouse"))
	sha := commitFiles(t, repo, map[string]string{"README.md": "a data repo\n"}, "a sqlmesh project")
	// What a planner sets so that sqlmesh runs without a terminal.
	env := jobEnvFromBot(t, map[string]string{"TERM": "dumb", "NO_COLOR": "1", "PYTHONUNBUFFERED": "1"})
	l, workDir := newTestLocal(t, 0)

	res, rec := runJob(t, l, Spec{
		RunID:   "sqlmesh-plan",
		Kind:    KindPlan,
		Source:  Source{CloneURL: repo, SHA: sha, Token: jobToken},
		Subdir:  "warehouse",
		Command: []string{sqlmesh, "plan", "dev", "--explain", "--no-prompts"},
		Env:     env,
	})

	require.True(t, res.Succeeded(), "%+v: %s", res, rec.joined())
	probed := map[string]string{}
	for _, line := range rec.texts("stdout") {
		if kv, ok := strings.CutPrefix(line, "ENV_PROBE "); ok {
			name, value, _ := strings.Cut(kv, "=")
			probed[name] = value
		}
	}
	require.NotEmpty(t, probed, "the Python model's module code ran: %s", rec.joined())
	assert.Equal(t, "analyst", probed["WAREHOUSE_USER"])
	assert.Equal(t, "dumb", probed["TERM"])
	assert.Equal(t, "UTC", probed["TZ"])
	for name := range probed {
		assert.False(t, strings.HasPrefix(name, "DAGCTL_"), "the job sees %s", name)
	}
	requireNoSecret(t, rec.joined())
	assert.Contains(t, rec.joined(), "probe__dev.env_probe", "the plan itself ran")
	requireScratchRemoved(t, workDir)
}
