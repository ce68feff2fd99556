package kube

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// One real control plane for the package: etcd and kube-apiserver through envtest, and kube-controller-manager
// with the Job, garbage-collector and TTL controllers, so that Jobs create Pods, finish, and take their Pods and
// Secrets with them. There is no kubelet: the tests play the node (see node_test.go).
var (
	testEnv    *envtest.Environment
	restConfig *rest.Config
	testClient kubernetes.Interface
	assetsDir  string
)

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	assetsDir = os.Getenv("KUBEBUILDER_ASSETS")
	for _, bin := range []string{"etcd", "kube-apiserver", "kube-controller-manager"} {
		if _, err := os.Stat(filepath.Join(assetsDir, bin)); assetsDir == "" || err != nil {
			fmt.Fprintf(os.Stderr, "FAIL: %s not found in KUBEBUILDER_ASSETS=%q: run `make k8s-bins` "+
				"(it builds the control plane into ~/.cache/dagctl-bot) and run the tests through `make test`, "+
				"or set KUBEBUILDER_ASSETS to its bin directory\n", bin, assetsDir)
			return 1
		}
	}
	testEnv = &envtest.Environment{BinaryAssetsDirectory: assetsDir}
	cfg, err := testEnv.Start()
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: starting the control plane: %v\n", err)
		return 1
	}
	defer func() { _ = testEnv.Stop() }()
	restConfig = cfg
	testClient = kubernetes.NewForConfigOrDie(cfg)

	stopControllers, err := startControllerManager()
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: starting kube-controller-manager: %v\n", err)
		return 1
	}
	defer stopControllers()
	return m.Run()
}

func startControllerManager() (stop func(), err error) {
	user, err := testEnv.AddUser(envtest.User{Name: "kube-controller-manager", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return nil, err
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "kcm-")
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(path, kubeconfig, 0o600); err != nil {
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(dir, "kcm.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(filepath.Join(assetsDir, "kube-controller-manager"),
		"--kubeconfig="+path,
		"--leader-elect=false",
		"--bind-address=127.0.0.1",
		"--secure-port=0",
		"--controllers=job-controller,garbage-collector-controller,ttl-after-finished-controller",
		"--concurrent-gc-syncs=5",
	)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop = func() {
		_ = cmd.Process.Kill()
		<-exited
		logFile.Close()
		_ = os.RemoveAll(dir)
	}
	if err := waitForJobController(exited, logFile.Name()); err != nil {
		stop()
		return nil, err
	}
	return stop, nil
}

// waitForJobController runs a throwaway Job until the controller manager has created its Pod.
func waitForJobController(exited <-chan struct{}, logPath string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kcm-ready"}}
	if _, err := testClient.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		return err
	}
	job := probeJob()
	if _, err := testClient.BatchV1().Jobs(ns.Name).Create(ctx, job, metav1.CreateOptions{}); err != nil {
		return err
	}
	for {
		pods, err := testClient.CoreV1().Pods(ns.Name).List(ctx, metav1.ListOptions{})
		if err == nil && len(pods.Items) > 0 {
			return nil
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(logPath)
			return fmt.Errorf("kube-controller-manager exited:\n%s", log)
		case <-ctx.Done():
			log, _ := os.ReadFile(logPath)
			return fmt.Errorf("no pod from the job controller: %w\n%s", ctx.Err(), log)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
