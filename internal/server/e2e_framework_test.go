package server_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/forgetest/e2e"
	"github.com/dagctl/dagctl-bot/internal/repoconfig"
	"github.com/dagctl/dagctl-bot/internal/server"
	"github.com/dagctl/dagctl-bot/internal/serverconfig"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// setupStep copies a model into the project before the plan: its effect shows in the plan as a model that is
// in no commit.
const setupStep = "cp extra/from_setup.sql models/from_setup.sql"

// fromSetupModel is the model the setup step puts in place; outside models/, sqlmesh never loads it itself.
const fromSetupModel = `MODEL (
  name dagctl_example.from_setup,
  kind FULL
);

SELECT 1 AS one
`

// setupBase is main with job.setup in its config (the trusted side) and the file the step copies.
func setupBase(t *testing.T) (files map[string]string, stepLine int) {
	t.Helper()
	config := exampleConfig(t, func(s string) string {
		return replaceOnce(t, s, "\njob:\n", "\njob:\n  setup:\n    - "+setupStep+"\n")
	})
	for i, line := range strings.Split(config, "\n") {
		if strings.Contains(line, setupStep) {
			stepLine = i + 1
		}
	}
	require.NotZero(t, stepLine)
	return map[string]string{repoconfig.Path: config, "extra/from_setup.sql": fromSetupModel}, stepLine
}

func TestASetupStepTheOperatorAllowsRunsBeforeThePlan(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		base, _ := setupBase(t)
		w := newWorld(t, forge, worldOptions{baseFiles: base, configure: func(_ *world, cfg *serverconfig.Config, _ *server.Options) {
			allow, err := repoconfig.ParseSetupAllowlist("cp extra/from_setup.sql")
			require.NoError(t, err)
			cfg.JobSetup = allow
		}})
		head := w.PR(1, "more-columns", "alice", nonBreaking)
		w.send(w.PREvent(vcs.PROpened, 1))

		dev, ok := w.Status("dagctl/plan: dev", head)
		require.True(t, ok, "checks: %v", w.Statuses())
		assert.Equal(t, vcs.StatusSuccess, dev.State, dev.Summary)
		assert.Contains(t, w.shownText(dev, 1), "dagctl_example.from_setup", "the step's model is planned")
		assert.Contains(t, w.shownText(dev, 1), "dagctl_example.customer_totals", "and so is the PR's change")
		assert.Contains(t, runLog(t, w, dev), "dagctl: setup 1/1: "+setupStep)
		assert.Contains(t, w.Sticky(1), "dagctl_example.from_setup")
	})
}

func TestASetupStepTheOperatorDoesNotAllowIsAConfigErrorAtItsLine(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		base, line := setupBase(t)
		w := newWorld(t, forge, worldOptions{baseFiles: base})
		w.PR(1, "more-columns", "alice", nonBreaking)
		w.send(w.PREvent(vcs.PROpened, 1))

		sticky := w.Sticky(1)
		assert.Contains(t, sticky, repoconfig.Path+":"+strconv.Itoa(line)+": job.setup[0]")
		assert.Contains(t, sticky, "this bot runs no setup steps (its operator allows them with DAGCTL_JOB_SETUP)")
		assert.Contains(t, sticky, "on the default branch")
		assert.Empty(t, w.Statuses(), "nothing is planned with a config the bot cannot use")
	})
}

// The project's framework is the real dbt, beside the sqlmesh example: dbt takes no plan flags, so a flag is
// refused at command time for the project that does not take it, and nothing is planned.
func TestAPlanFlagTheProjectsFrameworkDoesNotTakeIsAUsageReply(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		w := newWorld(t, forge, worldOptions{baseFiles: dbtBase(t)})
		files := stgOrdersChanged(t)
		files[repoconfig.Path] = dbtConfig(t, "1.1.0")
		head := w.PR(1, "lower-status", "alice", files)

		w.comment(1, "bob", "/dagctl plan dev --restate-model dagctl_example.orders")
		reply := w.LastComment(1)
		assert.Contains(t, reply, "project `marts` is a dbt project: `--restate-model` is not for dbt (it takes no plan flags)")
		assert.Contains(t, reply, "/dagctl plan [env]", "the reply shows the usage")
		for _, project := range []string{"marts", "warehouse"} {
			_, planned := w.Status("dagctl/plan: "+project+"/dev", head)
			assert.False(t, planned, "nothing was planned for %s", project)
		}

		// Without the flag the project plans through its framework, and its changes, without categories, need
		// no categorising.
		w.comment(1, "bob", "/dagctl plan dev")
		dev, ok := w.Status("dagctl/plan: marts/dev", head)
		require.True(t, ok, "checks: %v", w.Statuses())
		assert.Equal(t, vcs.StatusSuccess, dev.State, dev.Summary)
		assert.Contains(t, w.shownText(dev, 1), "model.dagctl_example.stg_orders")
		assert.NotContains(t, strings.ToLower(w.Sticky(1)), "uncategori")
	})
}
