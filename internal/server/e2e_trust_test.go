package server_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/forgetest"
	"github.com/dagctl/dagctl-bot/internal/forgetest/e2e"
	"github.com/dagctl/dagctl-bot/internal/repoconfig"
	"github.com/dagctl/dagctl-bot/internal/server"
	"github.com/dagctl/dagctl-bot/internal/serverconfig"
	"github.com/dagctl/dagctl-bot/internal/testutil"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// someSecret is a variable the operator lets jobs have (DAGCTL_JOB_ENV) but that the base branch's config does
// not pass: only a config on the default branch may hand it to a job.
const (
	someSecretName  = "SOME_SECRET"
	someSecretValue = "hunter2-the-warehouse-password"
)

// allowSomeSecret gives the bot SOME_SECRET and allows jobs to receive it.
func allowSomeSecret(_ *world, cfg *serverconfig.Config, opts *server.Options) {
	cfg.JobEnv = append(cfg.JobEnv, someSecretName)
	opts.Environ = append(opts.Environ, someSecretName+"="+someSecretValue)
}

// envProbe is a python model whose module prints, when sqlmesh loads the project, whether the job has
// SOME_SECRET. It never prints the value.
const envProbe = `import os
import sys
import typing as t
from datetime import datetime

import pandas as pd
from sqlmesh import ExecutionContext, model

print("env-probe: SOME_SECRET is " + ("SET" if os.environ.get("SOME_SECRET") else "UNSET"), file=sys.stderr, flush=True)


@model("dagctl_example.env_probe", kind="FULL", columns={"one": "int"})
def execute(context: ExecutionContext, start: datetime, end: datetime, execution_time: datetime, **kwargs: t.Any) -> pd.DataFrame:
    return pd.DataFrame([{"one": 1}])
`

// exampleConfig is the example's .dagctl/config.yaml, edited.
func exampleConfig(t *testing.T, edit func(string) string) string {
	t.Helper()
	data, err := os.ReadFile(exampleFile(".dagctl/config.yaml"))
	require.NoError(t, err)
	return edit(string(data))
}

func exampleFile(name string) string {
	return filepath.Join(testutil.RepoRoot(), "examples", "sqlmesh", filepath.FromSlash(name))
}

// replaceOnce replaces old, which must occur in s.
func replaceOnce(t *testing.T, s, old, new string) string {
	t.Helper()
	require.Contains(t, s, old)
	return strings.Replace(s, old, new, 1)
}

// hostileConfig is what a PR might try: unprotect prod and apply it by comment, add an environment, and pass a
// secret the base does not pass.
func hostileConfig(t *testing.T) string {
	return exampleConfig(t, func(s string) string {
		s = replaceOnce(t, s, "    protected: true\n    required_approvals: 1\n    plan_on_pr: true\n    apply_on: [merge]\n",
			"    protected: false\n    required_approvals: 0\n    plan_on_pr: true\n    apply_on: [comment]\n")
		s = replaceOnce(t, s, "\njob:\n", "  - name: staging\n    plan_on_pr: true\n    apply_on: [comment]\n\njob:\n")
		return replaceOnce(t, s, "    - EXAMPLE_DUCKDB_PATH\n", "    - EXAMPLE_DUCKDB_PATH\n    - "+someSecretName+"\n")
	})
}

// storedContext is what a stored plan remembers of its target (the bot's plan context, read as JSON).
type storedContext struct {
	Project repoconfig.Project     `json:"project"`
	Env     repoconfig.Environment `json:"env"`
	Job     repoconfig.Job         `json:"job"`
}

func plansOf(t *testing.T, w *world, pr int) map[string]storedContext {
	t.Helper()
	plans, err := w.srv.Store().ListPlansByPR(context.Background(), w.forge(), w.repoName(), pr)
	require.NoError(t, err)
	out := map[string]storedContext{}
	for _, p := range plans {
		var c storedContext
		require.NoError(t, json.Unmarshal(p.Context, &c), "plan %d", p.ID)
		out[p.Environment] = c
	}
	return out
}

// runLog is the full log behind a check run's details link.
func runLog(t *testing.T, w *world, check forgetest.Status) string {
	t.Helper()
	require.NotEmpty(t, check.DetailsURL, check.Name)
	return httpGet(t, check.DetailsURL, w)
}

func TestAPRCannotLoosenItsOwnRulesOrReachSecrets(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		w := newWorld(t, forge, worldOptions{configure: allowSomeSecret})
		head := w.PR(1, "hostile", "mallory", map[string]string{
			repoconfig.Path:       hostileConfig(t),
			"models/env_probe.py": envProbe,
		})
		w.SetPermission("mallory", vcs.PermissionWrite)
		w.send(w.PREvent(vcs.PROpened, 1))

		// The job's environment is the base's: SOME_SECRET does not reach the PR's code.
		prod, ok := w.Status("dagctl/plan: prod", head)
		require.True(t, ok, "checks: %v", w.Statuses())
		assert.Equal(t, vcs.StatusSuccess, prod.State)
		assert.Contains(t, w.shownText(prod, 1), "dagctl_example.env_probe", "the head's model is planned")
		for _, env := range []string{"prod", "dev"} {
			check, ok := w.Status("dagctl/plan: "+env, head)
			require.True(t, ok, env)
			log := runLog(t, w, check)
			assert.Contains(t, log, "env-probe: SOME_SECRET is UNSET", env)
			assert.NotContains(t, log, "env-probe: SOME_SECRET is SET", env)
			assert.NotContains(t, log, someSecretValue, env)
		}

		// Protection is the base's: prod stays protected and applied on merge only.
		plans := plansOf(t, w, 1)
		require.Contains(t, plans, "prod")
		assert.True(t, plans["prod"].Env.Protected)
		assert.Equal(t, 1, plans["prod"].Env.RequiredApprovals)
		assert.Equal(t, []repoconfig.ApplyTrigger{repoconfig.ApplyOnMerge}, plans["prod"].Env.ApplyOn)
		assert.Equal(t, []string{"EXAMPLE_DUCKDB_PATH"}, plans["prod"].Job.PassEnv)
		sticky := w.Sticky(1)
		assert.Contains(t, sticky, "merge the PR to apply")
		assert.NotContains(t, sticky, "/dagctl apply prod", "prod is not applied by comment")

		// The environment the PR adds does not exist yet.
		assert.NotContains(t, plans, "staging")
		_, planned := w.Status("dagctl/plan: staging", head)
		assert.False(t, planned)
		assert.NotContains(t, sticky, "staging")
		w.comment(1, "bob", "/dagctl plan staging")
		assert.Contains(t, w.LastComment(1), "environment `staging` is not configured")
		_, planned = w.Status("dagctl/plan: staging", head)
		assert.False(t, planned)

		// Nothing of the secret reached the PR either.
		for _, c := range w.Statuses() {
			assert.NotContains(t, c.Summary+c.Text, someSecretValue, c.Name)
		}
		for _, c := range w.Comments(1) {
			assert.NotContains(t, c.Body, someSecretValue)
		}

		// Once the base passes SOME_SECRET (merged after review), jobs get it: the probe does see what it is given.
		w.Base = w.Commit("main", map[string]string{repoconfig.Path: exampleConfig(t, func(s string) string {
			return replaceOnce(t, s, "    - EXAMPLE_DUCKDB_PATH\n", "    - EXAMPLE_DUCKDB_PATH\n    - "+someSecretName+"\n")
		})}, "pass SOME_SECRET to jobs")
		head2 := w.PR(2, "probe", "alice", map[string]string{"models/env_probe.py": envProbe})
		w.send(w.PREvent(vcs.PROpened, 2))
		check, ok := w.Status("dagctl/plan: prod", head2)
		require.True(t, ok)
		log := runLog(t, w, check)
		assert.Contains(t, log, "env-probe: SOME_SECRET is SET")
	})
}

func TestProjectsComeFromTheHead(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		w := newWorld(t, forge, worldOptions{})
		// The PR moves the project into warehouse/ and says so in its config.
		files := map[string]string{}
		for name, content := range testutil.ExampleFiles(t) {
			if name == repoconfig.Path {
				continue
			}
			files[name] = forgetest.DeleteFile
			files["warehouse/"+name] = content
		}
		files[repoconfig.Path] = exampleConfig(t, func(s string) string {
			return replaceOnce(t, s, "  - path: .\n", "  - path: warehouse\n")
		})
		head := w.PR(1, "move", "alice", files)
		w.send(w.PREvent(vcs.PROpened, 1))

		for _, env := range []string{"prod", "dev"} {
			check, ok := w.Status("dagctl/plan: "+env, head)
			require.True(t, ok, "checks: %v", w.Statuses())
			assert.Equal(t, vcs.StatusSuccess, check.State, "%s: %s\n%s", env, check.Title, check.Summary)
			assert.Contains(t, w.shownText(check, 1), "dagctl_example.top_customers", env)
		}
		plans := plansOf(t, w, 1)
		assert.Equal(t, "warehouse", plans["prod"].Project.Path)
	})
}

func TestNoChangesIsNeutral(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		w := newWorld(t, forge, worldOptions{seedProd: true})
		head := w.PR(1, "docs", "alice", map[string]string{"README.md": "# The warehouse\n"})
		w.send(w.PREvent(vcs.PROpened, 1))
		for _, env := range []string{"prod", "dev"} {
			check, ok := w.Status("dagctl/plan: "+env, head)
			require.True(t, ok, "checks: %v", w.Statuses())
			assert.True(t, check.State.Final(), env)
			w.assertState(vcs.StatusNeutral, check.State, "%s: %s", env, check.Title)
		}
		assert.Contains(t, w.Sticky(1), "No changes")
	})
}

func TestSQLErrorFailsTheCheckWithTheError(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		w := newWorld(t, forge, worldOptions{})
		data, err := os.ReadFile(exampleFile("models/customer_totals.sql"))
		require.NoError(t, err)
		broken := replaceOnce(t, string(data), "  SUM(amount) AS total_amount\n", "  SUM(amount AS total_amount\n")
		head := w.PR(1, "typo", "alice", map[string]string{"models/customer_totals.sql": broken})
		w.send(w.PREvent(vcs.PROpened, 1))

		sticky := w.Sticky(1)
		for _, env := range []string{"prod", "dev"} {
			check, ok := w.Status("dagctl/plan: "+env, head)
			require.True(t, ok, "checks: %v", w.Statuses())
			assert.Equal(t, vcs.StatusFailure, check.State, env)
			output := w.shownText(check, 1)
			assert.Contains(t, output, "Failed to load model from file 'models/customer_totals.sql'", env)
			assert.Contains(t, output, "Expecting ). Line 10", env)
		}
		assert.Contains(t, sticky, "Failed to load model from file 'models/customer_totals.sql'")
		assert.Contains(t, sticky, "Expecting ). Line 10")
		plans, err := w.srv.Store().ListPlansByPR(context.Background(), w.forge(), w.repoName(), 1)
		require.NoError(t, err)
		for _, p := range plans {
			assert.Equal(t, "failed", string(p.Status), p.Environment)
		}
	})
}

func TestUncategorizedChangesNeedAction(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		w := newWorld(t, forge, worldOptions{seedProd: true})
		sqlmeshConfig, err := os.ReadFile(exampleFile("config.yaml"))
		require.NoError(t, err)
		orders, err := os.ReadFile(exampleFile("models/orders.sql"))
		require.NoError(t, err)
		head := w.PR(1, "manual-categories", "alice", map[string]string{
			// With automatic categorisation off, sqlmesh leaves a SQL change for a person to categorise.
			"config.yaml": replaceOnce(t, string(sqlmeshConfig), "linter:", "plan:\n  auto_categorize_changes:\n    sql: 'off'\n\nlinter:"),
			"models/orders.sql": replaceOnce(t, string(orders), "order_date BETWEEN @start_ds AND @end_ds",
				"order_date BETWEEN @start_ds AND @end_ds AND amount > 0"),
		})
		w.send(w.PREvent(vcs.PROpened, 1))

		check, ok := w.Status("dagctl/plan: prod", head)
		require.True(t, ok, "checks: %v", w.Statuses())
		w.assertState(vcs.StatusBlocked, check.State, "%s\n%s", check.Title, check.Summary)
		assert.Contains(t, w.shownText(check, 1), "dagctl_example.orders")
		plans, err := w.srv.Store().ListPlansByPR(context.Background(), w.forge(), w.repoName(), 1)
		require.NoError(t, err)
		var prod *db.Plan
		for i := range plans {
			if plans[i].Environment == "prod" {
				prod = &plans[i]
			}
		}
		require.NotNil(t, prod)
		require.NotNil(t, prod.Summary)
		assert.Equal(t, []string{"dagctl_example.orders"}, prod.Summary.Uncategorized())
		assert.Contains(t, w.Sticky(1), "dagctl_example.orders")
	})
}

// Values a job is given, with characters that the base64 alphabets and the URL escapes treat differently.
const (
	leakyPassedValue  = "hunter2 the:warehouse@pass&word/ok?~~"
	leakyLiteralValue = "literal s3cret/with:chars?~>"
)

// leakProbe is a careless model: when sqlmesh loads it, it prints the values of LEAKY_PASSED (pass_env) and
// LEAKY_LITERAL (job.env) as they are, base64-encoded (standard and URL alphabet, padded and not) and
// URL-encoded (query, every byte, path segment), and then fails with all of that in its error, which the PR shows.
const leakProbe = `import base64
import os
import sys
import urllib.parse

forms = []
for name in ("LEAKY_PASSED", "LEAKY_LITERAL"):
    v = os.environ[name]
    b = v.encode()
    for form in (v, base64.b64encode(b).decode(), base64.b64encode(b).decode().rstrip("="),
                 base64.urlsafe_b64encode(b).decode(), base64.urlsafe_b64encode(b).decode().rstrip("="),
                 urllib.parse.quote_plus(v), urllib.parse.quote(v, safe=""), urllib.parse.quote(v, safe="$&+=:@")):
        print("leak-probe: " + name + " [" + form + "]", file=sys.stderr, flush=True)
        forms.append(form)
raise RuntimeError("leak-probe: " + " ".join(forms))
`

func TestWhatAJobIsGivenIsMaskedInItsLogAndOnThePR(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		w := newWorld(t, forge, worldOptions{
			baseFiles: map[string]string{repoconfig.Path: exampleConfig(t, func(s string) string {
				s = replaceOnce(t, s, "    - EXAMPLE_DUCKDB_PATH\n", "    - EXAMPLE_DUCKDB_PATH\n    - LEAKY_PASSED\n")
				return replaceOnce(t, s, "  env:\n", "  env:\n    LEAKY_LITERAL: \""+leakyLiteralValue+"\"\n")
			})},
			configure: func(_ *world, cfg *serverconfig.Config, opts *server.Options) {
				cfg.JobEnv = append(cfg.JobEnv, "LEAKY_PASSED")
				opts.Environ = append(opts.Environ, "LEAKY_PASSED="+leakyPassedValue)
			},
		})
		head := w.PR(1, "careless", "alice", map[string]string{"models/leak_probe.py": leakProbe})
		w.send(w.PREvent(vcs.PROpened, 1))

		var forms []string
		for _, v := range []string{leakyPassedValue, leakyLiteralValue} {
			b := []byte(v)
			forms = append(forms, v, base64.StdEncoding.EncodeToString(b), base64.RawStdEncoding.EncodeToString(b),
				base64.URLEncoding.EncodeToString(b), base64.RawURLEncoding.EncodeToString(b),
				url.QueryEscape(v), url.PathEscape(v))
		}
		check, ok := w.Status("dagctl/plan: prod", head)
		require.True(t, ok, "checks: %v", w.Statuses())
		assert.Equal(t, vcs.StatusFailure, check.State)
		log := runLog(t, w, check)
		for _, name := range []string{"LEAKY_PASSED", "LEAKY_LITERAL"} {
			assert.Equal(t, 8, strings.Count(log, "leak-probe: "+name+" [***]"), "every form of %s printed and masked:\n%s", name, log)
		}
		assert.Contains(t, w.shownText(check, 1), "leak-probe: *** ***", "the error is shown, masked")
		shown := []string{log, w.Sticky(1)}
		for _, c := range w.Statuses() {
			shown = append(shown, c.Title+c.Summary+c.Text)
		}
		for _, c := range w.Comments(1) {
			shown = append(shown, c.Body)
		}
		for _, text := range shown {
			for _, form := range forms {
				assert.NotContains(t, text, form)
			}
		}
	})
}
