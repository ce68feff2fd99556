package server

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"

	"k8s.io/client-go/kubernetes"

	"github.com/dagctl/dagctl-bot/internal/bot/jobrun"
	"github.com/dagctl/dagctl-bot/internal/image"
	"github.com/dagctl/dagctl-bot/internal/image/kubebuild"
	"github.com/dagctl/dagctl-bot/internal/repoconfig"
	"github.com/dagctl/dagctl-bot/internal/serverconfig"
)

// imageBuilders are the deploy-image builders this server has, one per repoconfig.ImageBuilder
// (docs/dbt.md#images). The apply is given them by kind (byKind).
type imageBuilders struct {
	// kubernetes: jobs run on the Kubernetes executor, where a Dockerfile build's Job can run.
	kubernetes bool
	// layers is `builder: layers` (image.LayerBuilder, the bot's keychain).
	layers image.Builder
	// dockerfile is `builder: dockerfile` (kubebuild.Builder); nil without the Kubernetes executor or without
	// DAGCTL_BUILD_GIT_IMAGE and DAGCTL_BUILD_PUSH_SECRET.
	dockerfile image.Builder
}

// refuse says why a project's image.builder cannot build on this server, or "" when it can: the config's
// rule (repoconfig.Rules.RefuseImageBuilder), so that the PR is told at plan time, at the line.
func (b imageBuilders) refuse(kind repoconfig.ImageBuilder) string {
	if kind != repoconfig.BuildDockerfile {
		return ""
	}
	switch {
	case !b.kubernetes:
		return "needs the Kubernetes executor (DAGCTL_EXECUTOR=kubernetes): the build runs as a Kubernetes Job; use builder: layers"
	case b.dockerfile == nil:
		return fmt.Sprintf("is not set up on this bot: its operator sets %s and %s", serverconfig.EnvBuildGitImage, serverconfig.EnvBuildPushSecret)
	}
	return ""
}

// byKind are the builders the apply is given (apply.Sequence.Images): those this server has, then the
// options' in their place (tests). A builder it lacks is refused at plan time (refuse) and, should a plan
// made before get to apply, fails the apply saying so, before anything runs.
func (b imageBuilders) byKind(given map[repoconfig.ImageBuilder]image.Builder) map[repoconfig.ImageBuilder]image.Builder {
	out := map[repoconfig.ImageBuilder]image.Builder{}
	if b.layers != nil {
		out[repoconfig.BuildLayers] = b.layers
	}
	if b.dockerfile != nil {
		out[repoconfig.BuildDockerfile] = b.dockerfile
	}
	maps.Copy(out, given)
	return out
}

// newDockerfileBuilder is `builder: dockerfile`'s builder from the settings, on the Kubernetes executor's
// cluster; nil when the settings do not set it up.
func newDockerfileBuilder(client kubernetes.Interface, instance string, cfg serverconfig.Builds, log *slog.Logger) (image.Builder, error) {
	if client == nil || !cfg.Enabled() {
		return nil, nil
	}
	b, err := kubebuild.New(client, kubebuild.Settings{
		DockerfileSettings: image.DockerfileSettings{
			Namespace:      cfg.Namespace,
			BuildKitImage:  cfg.BuildKitImage,
			GitImage:       cfg.GitImage,
			RegistrySecret: cfg.PushSecret,
			Timeout:        cfg.Timeout,
		},
		Instance: instance,
		// A bot shutting down leaves the build running: the next apply of the same image and commit follows it,
		// or takes its result (kubebuild finds a build by image and commit).
		Detach: func(cause error) bool { return errors.Is(cause, jobrun.ErrShutdown) },
		Logger: log,
	})
	if err != nil {
		return nil, fmt.Errorf("Dockerfile image builds: %w", err)
	}
	return b, nil
}
