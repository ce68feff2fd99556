package server

import (
	"context"
	"fmt"
	"os"

	"github.com/gorilla/mux"
	"k8s.io/client-go/kubernetes"

	"github.com/dagctl/dagctl-bot/internal/jobs/kube"
)

// newKubeExecutor connects to the cluster (in-cluster, else the kubeconfig) and starts the Job watcher.
func newKubeExecutor(s *Server) (*kube.Executor, error) {
	cfg, err := kube.ConfigFromEnv(os.Getenv)
	if err != nil {
		return nil, err
	}
	cfg.Namespace = s.cfg.Kubernetes.Namespace
	if cfg.Image == "" {
		cfg.Image = s.cfg.Kubernetes.Image
	}
	if cfg.PublicURL == "" {
		cfg.PublicURL = s.cfg.PublicURL
	}
	if len(cfg.TokenKey) == 0 {
		cfg.TokenKey = s.logKey // persisted in the store, so tokens survive restarts
	}
	cfg.Logger = s.log
	rc, err := kube.RESTConfig()
	if err != nil {
		return nil, fmt.Errorf("kubernetes credentials: %w", err)
	}
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	return kube.New(context.Background(), client, cfg)
}

// mountExecutor serves the endpoints the Kubernetes Jobs report to.
func (s *Server) mountExecutor(r *mux.Router) {
	if k, ok := s.executor.(*kube.Executor); ok {
		r.PathPrefix("/jobs/").Handler(k.Handler())
	}
}
