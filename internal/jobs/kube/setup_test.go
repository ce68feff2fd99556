package kube

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/jobs"
)

// Setup steps run in the job's container before the command, through `dagctl-bot job-run`, as on the local
// executor: logged, in the checkout, with the job's environment; the first that fails ends the job.
func TestSetupStepsRunInThePodBeforeTheCommand(t *testing.T) {
	ns := newNamespace(t)
	b := newBot(t)
	startNode(t, ns)
	repo := newGitRepo(t)
	e := b.startExecutor(t, testClient, testConfig(ns, b.server.URL))

	spec := planSpec(repo, "run-setup", "sh", "-c", `echo "command sees $(cat from-setup)"`)
	spec.Setup = [][]string{{"sh", "-c", `echo "setup in $(basename "$PWD") with FOO=$FOO" > from-setup`}, {"true"}}
	var out lineSink
	h, err := e.Start(context.Background(), spec, out.sink)
	require.NoError(t, err)
	res := wait(t, h)
	require.True(t, res.Succeeded(), "%+v\n%s", res, strings.Join(out.texts(), "\n"))
	assert.Contains(t, out.lines, jobs.Line{Stream: "stderr", Text: `dagctl: setup 1/2: sh -c echo "setup in $(basename "$PWD") with FOO=$FOO" > from-setup`})
	assert.Contains(t, out.lines, jobs.Line{Stream: "stderr", Text: "dagctl: setup 2/2: true"})
	assert.True(t, out.has("command sees setup in project with FOO=bar"), "%q", out.texts())

	spec = planSpec(repo, "run-setup-fails", "sh", "-c", "echo command ran")
	spec.Setup = [][]string{{"sh", "-c", "exit 4"}}
	var failed lineSink
	h, err = e.Start(context.Background(), spec, failed.sink)
	require.NoError(t, err)
	res = wait(t, h)
	assert.Equal(t, jobs.Result{ExitCode: 4, Reason: "setup step 1 failed", Duration: res.Duration}, res)
	assert.False(t, failed.has("command ran"), "nothing runs after a failed step")
	assert.Contains(t, failed.lines, jobs.Line{Stream: "stderr", Text: "dagctl: setup step 1 (sh) failed (exit code 4); the job stops here"})
}
