// Package kubetest is a real Kubernetes control plane for tests, and a node that runs the Pods of the bot's Jobs
// as local processes. It is test support: only _test files import it.
//
// The control plane is etcd and kube-apiserver through envtest, and kube-controller-manager with the Job,
// garbage-collector and TTL controllers, so that Jobs create Pods, finish, and take their Pods and Secrets with
// them. There is no kubelet: the tests play the node (see Node).
package kubetest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Env is a running control plane.
type Env struct {
	Config    *rest.Config
	Client    kubernetes.Interface
	AssetsDir string // KUBEBUILDER_ASSETS: the binaries (and helm, for the chart's tests)

	env            *envtest.Environment
	stopController func()
}

// Main starts the control plane, calls ready with it, runs the tests and stops it; it returns the exit code, for
// TestMain to pass to os.Exit. The control plane's binaries come from KUBEBUILDER_ASSETS; without them it fails
// (never skips), saying how to build them.
func Main(m *testing.M, ready func(*Env)) int {
	env, err := Start()
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		return 1
	}
	defer env.Stop()
	ready(env)
	return m.Run()
}

// Start starts a control plane from the binaries in KUBEBUILDER_ASSETS.
func Start() (*Env, error) {
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	for _, bin := range []string{"etcd", "kube-apiserver", "kube-controller-manager"} {
		if _, err := os.Stat(filepath.Join(assets, bin)); assets == "" || err != nil {
			return nil, fmt.Errorf("%s not found in KUBEBUILDER_ASSETS=%q: run `make k8s-bins` "+
				"(it builds the control plane into ~/.cache/dagctl-bot) and run the tests through `make test`, "+
				"or set KUBEBUILDER_ASSETS to its bin directory", bin, assets)
		}
	}
	e := &Env{AssetsDir: assets, env: &envtest.Environment{BinaryAssetsDirectory: assets}}
	cfg, err := e.env.Start()
	if err != nil {
		return nil, fmt.Errorf("starting the control plane: %w", err)
	}
	e.Config = cfg
	e.Client = kubernetes.NewForConfigOrDie(cfg)
	if e.stopController, err = e.startControllerManager(); err != nil {
		_ = e.env.Stop()
		return nil, fmt.Errorf("starting kube-controller-manager: %w", err)
	}
	return e, nil
}

// Stop stops the controller manager and the control plane.
func (e *Env) Stop() {
	e.stopController()
	_ = e.env.Stop()
}

// Namespace creates a namespace of its own for a test.
func (e *Env) Namespace(t testing.TB) string {
	t.Helper()
	ns, err := e.Client.CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "t-"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	return ns.Name
}

func (e *Env) startControllerManager() (stop func(), err error) {
	user, err := e.env.AddUser(envtest.User{Name: "kube-controller-manager", Groups: []string{"system:masters"}}, nil)
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
	cmd := exec.Command(filepath.Join(e.AssetsDir, "kube-controller-manager"),
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
	if err := e.waitForJobController(exited, logFile.Name()); err != nil {
		stop()
		return nil, err
	}
	return stop, nil
}

// waitForJobController runs a throwaway Job until the controller manager has created its Pod.
func (e *Env) waitForJobController(exited <-chan struct{}, logPath string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kcm-ready"}}
	if _, err := e.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		return err
	}
	probe := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "probe"},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers:    []corev1.Container{{Name: "probe", Image: "busybox"}},
		}}},
	}
	if _, err := e.Client.BatchV1().Jobs(ns.Name).Create(ctx, probe, metav1.CreateOptions{}); err != nil {
		return err
	}
	for {
		pods, err := e.Client.CoreV1().Pods(ns.Name).List(ctx, metav1.ListOptions{})
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
