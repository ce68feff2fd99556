package image

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/dagctl/dagctl-bot/internal/forgetest/githubfake"
	"github.com/dagctl/dagctl-bot/internal/forgetest/gitlabfake"
)

func settings() DockerfileSettings {
	return DockerfileSettings{
		Namespace:      "dagctl-builds",
		GitImage:       "alpine/git:2.49.1",
		RegistrySecret: "marts-push",
		Labels:         map[string]string{"dagctl.dev/instance": "prod-bot"},
	}
}

func build() Request {
	return Request{
		Source: Source{
			CloneURL: "https://github.com/acme/data.git", Commit: commit, Subdir: "dbt/marts",
			TokenUser: "x-access-token", TokenSecret: "dagctl-clone-41",
		},
		Repository: "ghcr.io/acme/marts",
		Tag:        "1.4.0-3f2c1a9e0b4d",
		Labels:     Labels(commit, "1.4.0", "https://github.com/acme/data"),
	}
}

func container(t *testing.T, cs []corev1.Container, name string) corev1.Container {
	t.Helper()
	for _, c := range cs {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no container %s", name)
	return corev1.Container{}
}

func TestADockerfileBuildIsARootlessBuildKitJob(t *testing.T) {
	job, err := DockerfileJob(settings(), build())
	require.NoError(t, err)

	assert.Equal(t, "dagctl-builds", job.Namespace)
	assert.Regexp(t, `^dagctl-image-[0-9a-f]{16}$`, job.Name)
	assert.Equal(t, "prod-bot", job.Labels["dagctl.dev/instance"])
	assert.Equal(t, "ghcr.io/acme/marts:1.4.0-3f2c1a9e0b4d", job.Annotations["dagctl.dev/image"])
	assert.Equal(t, int32(0), *job.Spec.BackoffLimit)
	assert.Equal(t, int64(1800), *job.Spec.ActiveDeadlineSeconds)
	assert.Nil(t, job.Spec.TTLSecondsAfterFinished)

	pod := job.Spec.Template.Spec
	assert.Equal(t, corev1.RestartPolicyNever, pod.RestartPolicy)
	assert.False(t, *pod.AutomountServiceAccountToken, "the PR's Dockerfile gets no API credentials")
	assert.Equal(t, int64(1000), *pod.SecurityContext.RunAsUser)
	assert.True(t, *pod.SecurityContext.RunAsNonRoot)

	bk := container(t, pod.Containers, "buildkit")
	assert.Equal(t, "moby/buildkit:v0.32.2-rootless", bk.Image)
	assert.Equal(t, []string{"buildctl-daemonless.sh"}, bk.Command)
	assert.Equal(t, []string{
		"build",
		"--frontend", "dockerfile.v0",
		"--local", "context=/workspace/src/dbt/marts",
		"--local", "dockerfile=/workspace/src/dbt/marts",
		"--opt", "filename=Dockerfile",
		"--opt", "label:org.opencontainers.image.revision=" + commit,
		"--opt", "label:org.opencontainers.image.source=https://github.com/acme/data",
		"--opt", "label:org.opencontainers.image.version=1.4.0",
		"--output", "type=image,name=ghcr.io/acme/marts:1.4.0-3f2c1a9e0b4d,push=true",
		"--metadata-file", "/dev/termination-log",
	}, bk.Args)
	assert.Equal(t, []corev1.EnvVar{
		{Name: "BUILDKITD_FLAGS", Value: "--oci-worker-no-process-sandbox"},
		{Name: "DOCKER_CONFIG", Value: "/home/user/.docker"},
	}, bk.Env)
	assert.Empty(t, bk.EnvFrom)
	sc := bk.SecurityContext
	assert.Equal(t, int64(1000), *sc.RunAsUser)
	assert.Equal(t, int64(1000), *sc.RunAsGroup)
	assert.False(t, *sc.Privileged)
	assert.Equal(t, corev1.SeccompProfileTypeUnconfined, sc.SeccompProfile.Type)
	assert.Equal(t, corev1.AppArmorProfileTypeUnconfined, sc.AppArmorProfile.Type)
	assert.Nil(t, sc.Capabilities, "no capability added")
	assert.Equal(t, corev1.TerminationMessageFallbackToLogsOnError, bk.TerminationMessagePolicy, "the metadata, or the log's tail of a failed build")
	assert.ElementsMatch(t, []corev1.VolumeMount{
		{Name: "workspace", MountPath: "/workspace", ReadOnly: true},
		{Name: "buildkitd", MountPath: "/home/user/.local/share/buildkit"},
		{Name: "docker-config", MountPath: "/home/user/.docker", ReadOnly: true},
	}, bk.VolumeMounts, "no clone token in the build")

	co := container(t, pod.InitContainers, "checkout")
	assert.Equal(t, "alpine/git:2.49.1", co.Image)
	assert.Equal(t, []string{"sh", "-c", checkoutScript}, co.Command)
	assert.ElementsMatch(t, []corev1.VolumeMount{
		{Name: "workspace", MountPath: "/workspace"},
		{Name: "clone-token", MountPath: "/var/run/dagctl/clone", ReadOnly: true},
	}, co.VolumeMounts, "no push credentials in the checkout")
	assert.False(t, *co.SecurityContext.AllowPrivilegeEscalation)
	assert.Equal(t, corev1.SeccompProfileTypeRuntimeDefault, co.SecurityContext.SeccompProfile.Type)
	assert.True(t, *co.SecurityContext.ReadOnlyRootFilesystem)

	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
	}
	require.Len(t, volumes, 4)
	docker := volumes["docker-config"].Secret
	require.NotNil(t, docker)
	assert.Equal(t, "marts-push", docker.SecretName)
	assert.Equal(t, []corev1.KeyToPath{{Key: ".dockerconfigjson", Path: "config.json"}}, docker.Items)
	token := volumes["clone-token"].Secret
	require.NotNil(t, token)
	assert.Equal(t, "dagctl-clone-41", token.SecretName)
	assert.NotNil(t, volumes["workspace"].EmptyDir)
	assert.NotNil(t, volumes["buildkitd"].EmptyDir)

	for _, c := range append(pod.InitContainers, pod.Containers...) {
		for _, e := range c.Env {
			assert.Nil(t, e.ValueFrom, "%s: %s: credentials are files, never variables", c.Name, e.Name)
		}
	}
}

func TestDockerfileJobVariants(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(*DockerfileSettings, *Request)
		check func(t *testing.T, job *batchv1.Job)
	}{
		{"a Dockerfile of its own in a subdirectory", func(_ *DockerfileSettings, b *Request) {
			b.Dockerfile = "docker/./Dockerfile.dbt"
		}, func(t *testing.T, job *batchv1.Job) {
			args := job.Spec.Template.Spec.Containers[0].Args
			assert.Contains(t, args, "context=/workspace/src/dbt/marts")
			assert.Contains(t, args, "dockerfile=/workspace/src/dbt/marts/docker")
			assert.Contains(t, args, "filename=Dockerfile.dbt")
		}},
		{"a project at the repository's root", func(_ *DockerfileSettings, b *Request) {
			b.Source.Subdir = ""
		}, func(t *testing.T, job *batchv1.Job) {
			args := job.Spec.Template.Spec.Containers[0].Args
			assert.Contains(t, args, "context=/workspace/src")
			assert.Contains(t, args, "dockerfile=/workspace/src")
		}},
		{"a public repository: no token", func(_ *DockerfileSettings, b *Request) {
			b.Source.TokenUser, b.Source.TokenSecret = "", ""
		}, func(t *testing.T, job *batchv1.Job) {
			pod := job.Spec.Template.Spec
			assert.Len(t, pod.Volumes, 3)
			assert.Len(t, pod.InitContainers[0].VolumeMounts, 1)
		}},
		{"the operator's settings", func(s *DockerfileSettings, _ *Request) {
			s.BuildKitImage = "registry.internal/buildkit@sha256:" + strings.Repeat("a", 64)
			s.Timeout = 90 * time.Second
			s.TTLAfterFinished = time.Hour
			s.RuntimeClassName = "gvisor"
			s.NodeSelector = map[string]string{"pool": "builds"}
			s.Tolerations = []corev1.Toleration{{Key: "builds", Operator: corev1.TolerationOpExists}}
			s.ServiceAccountName = "builder"
			s.Resources = corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("4Gi")}}
		}, func(t *testing.T, job *batchv1.Job) {
			pod := job.Spec.Template.Spec
			assert.Equal(t, "registry.internal/buildkit@sha256:"+strings.Repeat("a", 64), pod.Containers[0].Image)
			assert.Equal(t, int64(90), *job.Spec.ActiveDeadlineSeconds)
			assert.Equal(t, int32(3600), *job.Spec.TTLSecondsAfterFinished)
			assert.Equal(t, "gvisor", *pod.RuntimeClassName)
			assert.Equal(t, "builds", pod.NodeSelector["pool"])
			assert.Len(t, pod.Tolerations, 1)
			assert.Equal(t, "builder", pod.ServiceAccountName)
			assert.Equal(t, "4Gi", pod.Containers[0].Resources.Limits.Memory().String())
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, b := settings(), build()
			tc.edit(&s, &b)
			job, err := DockerfileJob(s, b)
			require.NoError(t, err)
			tc.check(t, job)
		})
	}
}

func TestTheJobNameIsOnePerImageAndCommit(t *testing.T) {
	a, err := DockerfileJob(settings(), build())
	require.NoError(t, err)
	again, err := DockerfileJob(settings(), build())
	require.NoError(t, err)
	assert.Equal(t, a.Name, again.Name)
	other := build()
	other.Tag = "1.5.0-3f2c1a9e0b4d"
	b, err := DockerfileJob(settings(), other)
	require.NoError(t, err)
	assert.NotEqual(t, a.Name, b.Name)
}

func TestADockerfileJobIsRefused(t *testing.T) {
	for _, tc := range []struct {
		edit func(*DockerfileSettings, *Request)
		want string
	}{
		{func(s *DockerfileSettings, _ *Request) { s.GitImage = "" }, "need an image with git"},
		{func(s *DockerfileSettings, _ *Request) { s.RegistrySecret = "" }, "need the registry credentials' Secret"},
		{func(_ *DockerfileSettings, b *Request) { b.Source.CloneURL = "--upload-pack=touch /tmp/x" }, "is not http(s)"},
		{func(_ *DockerfileSettings, b *Request) { b.Source.CloneURL = "ext::sh -c id" }, "is not http(s)"},
		{func(_ *DockerfileSettings, b *Request) { b.Source.Commit = "3f2c1a9" }, "is not a full commit SHA"},
		{func(_ *DockerfileSettings, b *Request) { b.Source.Commit = "main" }, "is not a full commit SHA"},
		{func(_ *DockerfileSettings, b *Request) { b.Source.TokenSecret = "" }, "needs both its user and its Secret"},
		{func(_ *DockerfileSettings, b *Request) { b.Source.Subdir = "../other" }, `project directory "../other" leaves the repository`},
		{func(_ *DockerfileSettings, b *Request) { b.Dockerfile = "../../Dockerfile" }, "leaves the repository"},
		{func(_ *DockerfileSettings, b *Request) { b.Dockerfile = "/etc/Dockerfile" }, "is not a relative path"},
		{func(_ *DockerfileSettings, b *Request) { b.Dockerfile = "." }, "names the project's directory"},
		{func(_ *DockerfileSettings, b *Request) { b.Repository = "ghcr.io/acme/marts:latest" }, `repository "ghcr.io/acme/marts:latest"`},
		{func(_ *DockerfileSettings, b *Request) { b.Repository = "acme/marts" }, "requires the registry to be explicitly defined"},
		{func(_ *DockerfileSettings, b *Request) { b.Tag = "1.4,push=false" }, "is not a valid tag"},
		{func(_ *DockerfileSettings, b *Request) { b.Labels = map[string]string{"a=b": "c"} }, `label "a=b" is not a label key`},
	} {
		s, b := settings(), build()
		tc.edit(&s, &b)
		_, err := DockerfileJob(s, b)
		assert.ErrorContains(t, err, tc.want)
	}
}

func TestResultFromMetadata(t *testing.T) {
	digest := "sha256:" + strings.Repeat("b", 64)
	got, err := ResultFromMetadata(build(), `{"containerimage.config.digest":"sha256:`+strings.Repeat("c", 64)+
		`","containerimage.digest":"`+digest+`","image.name":"ghcr.io/acme/marts:1.4.0-3f2c1a9e0b4d"}`)
	require.NoError(t, err)
	assert.Equal(t, Result{
		Reference: "ghcr.io/acme/marts@" + digest,
		Digest:    digest,
		Tagged:    "ghcr.io/acme/marts:1.4.0-3f2c1a9e0b4d",
	}, got)
	for _, bad := range []struct{ in, want string }{
		{`{}`, "has no containerimage.digest"},
		{`{"containerimage.digest":"sha256:abc"}`, "the build's digest"},
		{`error: failed to solve: process "/bin/sh -c pip install" did not complete`, "the build's metadata"},
	} {
		_, err := DigestFromMetadata(bad.in)
		assert.ErrorContains(t, err, bad.want, bad.in)
	}
}

// TestTheCheckoutScriptFetchesExactlyTheCommit runs the init container's own command and environment with
// the real git, against gitlabfake's git smart HTTP: the token is read from its file, and a wrong one fails
// without being printed.
func TestTheCheckoutScriptFetchesExactlyTheCommit(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	fake := gitlabfake.New(t)
	token := fake.AddToken("bot")
	repo := githubfake.NewGitRepo(t, "main")
	first := repo.Commit("main", map[string]string{"dbt/marts/Dockerfile": "FROM python:3.12\n"}, "first")
	repo.Commit("main", map[string]string{"dbt/marts/Dockerfile": "FROM python:3.13\n"}, "second")
	project := fake.AddProject("acme", "data", repo.Dir, "main")
	project.SetMember("bot", gitlabfake.Developer)

	run := func(t *testing.T, secret string) (string, string, error) {
		b := build()
		b.Source = Source{CloneURL: project.CloneURL(), Commit: first, Subdir: "dbt/marts",
			TokenUser: gitlabfake.CloneUser, TokenSecret: "clone"}
		job, err := DockerfileJob(settings(), b)
		require.NoError(t, err)
		co := job.Spec.Template.Spec.InitContainers[0]

		dir := t.TempDir()
		tokenFile := filepath.Join(dir, "token")
		require.NoError(t, os.WriteFile(tokenFile, []byte(secret), 0o400)) // as a Secret's file: no newline
		checkout := filepath.Join(dir, "src")
		moved := map[string]string{"CHECKOUT": checkout, "TOKEN_FILE": tokenFile, "HOME": dir}
		env := []string{"PATH=" + os.Getenv("PATH"), "GIT_CONFIG_NOSYSTEM=1"}
		for _, e := range co.Env {
			v := e.Value
			if m, ok := moved[e.Name]; ok {
				v = m // the pod's paths, here
			}
			env = append(env, e.Name+"="+v)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, co.Command[0], co.Command[1:]...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		return checkout, string(out), err
	}

	t.Run("the right token", func(t *testing.T) {
		checkout, out, err := run(t, token)
		require.NoError(t, err, out)
		content, err := os.ReadFile(filepath.Join(checkout, "dbt/marts/Dockerfile"))
		require.NoError(t, err)
		assert.Equal(t, "FROM python:3.12\n", string(content), "the commit asked for, not the branch's head")
	})
	t.Run("a wrong token", func(t *testing.T) {
		_, out, err := run(t, "wrong-token-value")
		require.Error(t, err)
		assert.Contains(t, out, "fatal:")
		assert.NotContains(t, out, "wrong-token-value")
	})
}
