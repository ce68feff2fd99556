package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"time"

	dagctl "github.com/dagctl/dagctl-bot"
	"github.com/dagctl/dagctl-bot/internal/jobs/kube"
	"github.com/dagctl/dagctl-bot/internal/server"
	"github.com/dagctl/dagctl-bot/internal/serverconfig"
)

// runServe implements `dagctl-bot serve`.
func runServe(ctx context.Context, args []string, stderr io.Writer) int {
	cfg, err := serverconfig.LoadWithOutput(args, os.Getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	slog.SetDefault(log)
	log.Info("starting dagctl-bot", "config", cfg)

	srv, err := server.New(ctx, cfg, server.Options{Log: log, Manifest: dagctl.AppManifest})
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	// Listening before Start: the webhooks Start asks the forge to redeliver wait in the listen queue until the
	// server serves them, instead of failing again.
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		log.Error("cannot listen", "listen", cfg.Listen, "err", err)
		return 1
	}
	if err := srv.Start(ctx); err != nil {
		_ = ln.Close()
		log.Error("cannot start", "err", err)
		return 1
	}
	httpServer := server.NewHTTPServer(cfg.Listen, srv.Handler(), server.DefaultHTTPLimits)
	errc := make(chan error, 1)
	go func() { errc <- httpServer.Serve(ln) }()
	log.Info("serving", "listen", cfg.Listen)

	code := 0
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err := <-errc:
		log.Error("http server stopped", "err", err)
		code = 1
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = httpServer.Shutdown(shutdown)
	if err := srv.Close(shutdown); err != nil {
		log.Warn("shutdown", "err", err)
	}
	return code
}

// runJobRun implements `dagctl-bot job-run`, the runner inside a Kubernetes job's pod.
func runJobRun(ctx context.Context, args []string) int {
	return kube.RunInPod(ctx, args, os.Environ())
}
