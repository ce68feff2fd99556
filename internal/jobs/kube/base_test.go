package kube

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dagctl/dagctl-bot/internal/jobs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
)

// The init container checks the base commit out beside the head's with the same URL and token, into a volume
// the job container mounts read-only; the token reaches neither the job's environment nor a checkout.
func TestAJobGetsTheBaseCommitBesideTheHead(t *testing.T) {
	ns := newNamespace(t)
	b := newBot(t)
	startNode(t, ns)
	repo := newGitRepo(t)
	e := b.startExecutor(t, testClient, testConfig(ns, b.server.URL))
	out := t.TempDir() // outside the Pod's volumes: the node leaves the path alone

	spec := planSpec(repo, "run-base", "sh", "-c", `
		echo "head: $(cat model.sql)"
		echo "base: $(cat "$DAGCTL_BASE_DIR/model.sql")"
		echo "base dir: $DAGCTL_BASE_DIR" | sed "s#$(cd ../.. && pwd)#POD#"
		env > "$OUT/env"
		cp -r ../.git "$OUT/head-git" && cp -r "$DAGCTL_BASE_DIR/../.git" "$OUT/base-git"`)
	spec.Source.BaseSHA = repo.Later
	spec.Env["OUT"] = out
	spec.Env[jobs.EnvBaseDir] = "/not/the/specs/to/choose"
	var lines lineSink
	h, err := e.Start(context.Background(), spec, lines.sink)
	require.NoError(t, err)
	res := wait(t, h)

	require.True(t, res.Succeeded(), "%+v\n%s", res, strings.Join(lines.texts(), "\n"))
	assert.True(t, lines.has("head: select 1 as pr_head"), "%q", lines.texts())
	assert.True(t, lines.has("base: select 2 as later"), "%q", lines.texts())
	assert.True(t, lines.has("base dir: POD/base/project"), "the executor's %s: %q", jobs.EnvBaseDir, lines.texts())

	pod := getJob(t, ns, "run-base").Spec.Template.Spec
	mountOf := func(c corev1.Container) corev1.VolumeMount {
		for _, m := range c.VolumeMounts {
			if m.Name == "base" {
				return m
			}
		}
		t.Fatalf("container %s does not mount the base", c.Name)
		return corev1.VolumeMount{}
	}
	assert.False(t, mountOf(pod.InitContainers[0]).ReadOnly, "the checkout writes it")
	assert.True(t, mountOf(pod.Containers[0]).ReadOnly, "the job only reads it")
	assert.Equal(t, baseMount, mountOf(pod.Containers[0]).MountPath)

	configs := 0
	require.NoError(t, filepath.WalkDir(out, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		assert.NotContains(t, string(b), repo.Token, path)
		if d.Name() == "config" {
			configs++
			assert.Contains(t, string(b), repo.URL, "%s is a checkout's git config", path)
		}
		return nil
	}))
	assert.Equal(t, 2, configs, "both checkouts' git config were read")
}

func TestAJobsBaseMustBeAFullSHA(t *testing.T) {
	e := &Executor{cfg: testConfig("ns", "http://bot")}
	spec := planSpec(gitRepo{URL: "http://git/repo.git", SHA: strings.Repeat("ab", 20)}, "run-bad-base", "true")
	spec.Source.BaseSHA = "main"
	_, err := e.buildJob(spec)
	assert.ErrorContains(t, err, "base must be a full lower-case commit SHA")
}
