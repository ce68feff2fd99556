package kube

import (
	"os"
	"testing"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/dagctl/dagctl-bot/internal/jobs/kube/kubetest"
)

// One real control plane for the package (kubetest): there is no kubelet, the tests play the node (startNode).
var (
	restConfig *rest.Config
	testClient kubernetes.Interface
	assetsDir  string
)

func TestMain(m *testing.M) {
	os.Exit(kubetest.Main(m, func(env *kubetest.Env) {
		restConfig, testClient, assetsDir = env.Config, env.Client, env.AssetsDir
	}))
}
