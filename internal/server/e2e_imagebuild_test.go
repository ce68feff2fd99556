package server_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/dagctl/dagctl-bot/internal/forgetest/e2e"
	"github.com/dagctl/dagctl-bot/internal/repoconfig"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// A dbt project that asks for a Dockerfile build on a bot whose jobs run locally is told at plan time, at the
// line, rather than at its apply: the build is a Kubernetes Job.
func TestDBTADockerfileBuilderOnTheLocalExecutorIsAConfigErrorAtItsLine(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		w := newWorld(t, forge, worldOptions{baseFiles: dbtBase(t)})
		config := replaceOnce(t, dbtConfig(t, "1.1.0"), "    version: \"1.1.0\"\n",
			"    version: \"1.1.0\"\n    image:\n      repository: ghcr.io/acme/marts\n      builder: dockerfile\n")
		line := 0
		for i, l := range strings.Split(config, "\n") {
			if strings.Contains(l, "builder: dockerfile") {
				line = i + 1
			}
		}
		files := stgOrdersChanged(t)
		files[repoconfig.Path] = config
		w.PR(1, "dockerfile-image", "alice", files)
		w.send(w.PREvent(vcs.PROpened, 1))

		sticky := w.Sticky(1)
		assert.Contains(t, sticky, repoconfig.Path+":"+strconv.Itoa(line)+": projects[1].image.builder: dockerfile needs the Kubernetes executor")
		assert.Empty(t, w.Statuses(), "nothing is planned with a config the bot cannot use")
	})
}
