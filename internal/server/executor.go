package server

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

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
	// The setting wins, except that its built-in default ("default") does not hide the namespace a bot running
	// in a cluster finds for itself.
	if ns := s.cfg.Kubernetes.Namespace; ns != "default" || cfg.Namespace == "" {
		cfg.Namespace = ns
	}
	if cfg.Image == "" {
		cfg.Image = s.cfg.Kubernetes.Image
	}
	// Which Secrets jobs may mount are server settings (flags too), not the executor's own environment.
	cfg.JobSecrets = s.cfg.Kubernetes.JobSecrets
	cfg.JobSecretsSelector = s.cfg.Kubernetes.JobSecretsSelector
	cfg.BotSecrets = s.cfg.Kubernetes.BotSecrets
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
	s.kubeClient, s.kubeInstance = client, cfg.Instance // Dockerfile image builds run in the same cluster
	return kube.New(context.Background(), client, cfg)
}

// mountExecutor serves the endpoints the Kubernetes Jobs report to.
func (s *Server) mountExecutor(r *mux.Router) {
	if k, ok := s.executor.(*kube.Executor); ok {
		r.PathPrefix("/jobs/").Handler(k.Handler())
	}
}

// orphanSweep is how often the bot deletes Kubernetes Jobs that no unfinished run owns.
const orphanSweep = 10 * time.Minute

// cleanOrphans deletes this bot's Jobs that no unfinished run knows: left behind by a crash between creating a
// Job and storing it, or by runs that ended while the bot was down. It runs after recovery, then now and then.
func (s *Server) cleanOrphans(ctx context.Context) {
	k, ok := s.executor.(*kube.Executor)
	if !ok {
		return
	}
	sweep := func() {
		runs, err := s.store.ListUnfinishedRuns(ctx)
		if err != nil {
			s.log.Warn("listing unfinished runs for the orphan sweep", "err", err)
			return
		}
		unfinished := map[int64]bool{}
		for _, r := range runs {
			unfinished[r.ID] = true
		}
		deleted, err := k.CleanOrphans(ctx, func(runID string) bool { return keepJob(runID, unfinished) })
		if err != nil {
			s.log.Warn("deleting orphaned Jobs", "err", err)
		} else if len(deleted) > 0 {
			s.log.Info("deleted orphaned Jobs", "runs", deleted)
		}
	}
	sweep()
	go func() {
		t := time.NewTicker(orphanSweep)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				sweep()
			}
		}
	}()
}

// keepJob says whether the sweep keeps a Job, by its run id: a plan's ("<run>") or an apply's step
// ("<run>-verify", "<run>-apply") while the run is unfinished, which a restarted bot follows; a closed PR's
// cleanup ("invalidate-<plan>") always, as it is tied to no run.
func keepJob(jobRunID string, unfinished map[int64]bool) bool {
	if strings.HasPrefix(jobRunID, "invalidate-") {
		return true
	}
	run, step, stepped := strings.Cut(jobRunID, "-")
	if stepped && step != "verify" && step != "apply" {
		return false
	}
	id, err := strconv.ParseInt(run, 10, 64)
	return err == nil && unfinished[id]
}
