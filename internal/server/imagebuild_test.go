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

func TestTheApplyIsGivenTheBuildersThisServerHas(t *testing.T) {
	layers, dockerfile, stand := namedBuilder("layers"), namedBuilder("dockerfile"), namedBuilder("a test's")
	for _, tc := range []struct {
		name     string
		builders imageBuilders
		given    map[repoconfig.ImageBuilder]image.Builder
		want     map[repoconfig.ImageBuilder]image.Builder
	}{
		{"the local executor: layers alone", imageBuilders{layers: layers}, nil,
			map[repoconfig.ImageBuilder]image.Builder{repoconfig.BuildLayers: layers}},
		{"Kubernetes with the build settings: both", imageBuilders{kubernetes: true, layers: layers, dockerfile: dockerfile}, nil,
			map[repoconfig.ImageBuilder]image.Builder{repoconfig.BuildLayers: layers, repoconfig.BuildDockerfile: dockerfile}},
		{"Kubernetes without the build settings: no dockerfile builder", imageBuilders{kubernetes: true, layers: layers}, nil,
			map[repoconfig.ImageBuilder]image.Builder{repoconfig.BuildLayers: layers}},
		{"a test's builder replaces the server's", imageBuilders{layers: layers},
			map[repoconfig.ImageBuilder]image.Builder{repoconfig.BuildLayers: stand},
			map[repoconfig.ImageBuilder]image.Builder{repoconfig.BuildLayers: stand}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, tc.builders.byKind(tc.given))
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
