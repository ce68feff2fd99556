package server

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/dagctl/dagctl-bot/internal/image"
	"github.com/dagctl/dagctl-bot/internal/image/kubebuild"
	"github.com/dagctl/dagctl-bot/internal/repoconfig"
	"github.com/dagctl/dagctl-bot/internal/serverconfig"
)

// namedBuilder is a builder told apart by its name; the table only asks which one is chosen.
type namedBuilder string

func (namedBuilder) Build(context.Context, image.Request) (image.Result, error) {
	return image.Result{}, nil
}

func TestChooseImageBuilder(t *testing.T) {
	layers, dockerfile := namedBuilder("layers"), namedBuilder("dockerfile")
	onKubernetes := imageBuilders{kubernetes: true, layers: layers, dockerfile: dockerfile}
	local := imageBuilders{layers: layers}
	kubernetesWithoutBuilds := imageBuilders{kubernetes: true, layers: layers}
	img := func(b repoconfig.ImageBuilder) *repoconfig.DBTImage {
		return &repoconfig.DBTImage{Repository: "ghcr.io/acme/marts", Builder: b}
	}
	for _, tc := range []struct {
		name     string
		img      *repoconfig.DBTImage
		builders imageBuilders
		want     image.Builder
		err      string
	}{
		{"no image: nothing is built", nil, local, nil, ""},
		{"layers on the local executor", img(repoconfig.BuildLayers), local, layers, ""},
		{"layers on Kubernetes", img(repoconfig.BuildLayers), onKubernetes, layers, ""},
		{"dockerfile on Kubernetes", img(repoconfig.BuildDockerfile), onKubernetes, dockerfile, ""},
		{"dockerfile on the local executor", img(repoconfig.BuildDockerfile), local, nil,
			"image.builder: dockerfile needs the Kubernetes executor"},
		{"dockerfile on Kubernetes without the build settings", img(repoconfig.BuildDockerfile), kubernetesWithoutBuilds, nil,
			"image.builder: dockerfile is not set up on this bot: its operator sets DAGCTL_BUILD_GIT_IMAGE and DAGCTL_BUILD_PUSH_SECRET"},
		{"layers before the apply wired its builder", img(repoconfig.BuildLayers), imageBuilders{}, nil,
			"image.builder: layers has no builder on this server"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := chooseImageBuilder(tc.img, tc.builders)
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				assert.Nil(t, got)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestTheImageBuilderRefusalIsTheConfigsRule(t *testing.T) {
	assert.Empty(t, imageBuilders{}.refuse(repoconfig.BuildLayers))
	assert.Contains(t, imageBuilders{}.refuse(repoconfig.BuildDockerfile), "needs the Kubernetes executor")
	assert.Empty(t, imageBuilders{kubernetes: true, dockerfile: namedBuilder("dockerfile")}.refuse(repoconfig.BuildDockerfile))
}

func TestTheDockerfileBuilderIsMadeFromTheSettings(t *testing.T) {
	builds := serverconfig.Builds{Namespace: "dagctl-builds", BuildKitImage: image.DefaultBuildKitImage,
		GitImage: "alpine/git:2.49.1", PushSecret: "marts-push", Timeout: time.Hour}
	// A client that is never called: New talks to the cluster only when it builds.
	client := kubernetes.NewForConfigOrDie(&rest.Config{Host: "http://127.0.0.1:1"})

	b, err := newDockerfileBuilder(client, "prod-bot", builds, slog.Default())
	require.NoError(t, err)
	assert.IsType(t, &kubebuild.Builder{}, b)

	b, err = newDockerfileBuilder(nil, "prod-bot", builds, slog.Default())
	require.NoError(t, err)
	assert.Nil(t, b, "not on Kubernetes")

	b, err = newDockerfileBuilder(client, "prod-bot", serverconfig.Builds{Namespace: "dagctl-builds"}, slog.Default())
	require.NoError(t, err)
	assert.Nil(t, b, "not set up")

	_, err = newDockerfileBuilder(client, "prod bot", builds, slog.Default())
	assert.ErrorContains(t, err, "Dockerfile image builds: kubebuild: instance")
}
