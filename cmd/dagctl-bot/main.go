// Command dagctl-bot is the pull-request bot for SQLMesh and dbt.
//
//	dagctl-bot serve                      run the bot (webhooks, jobs, reporting)
//	dagctl-bot plan --repo DIR [--env E]  plan a working tree and print the PR comment it would get
//	dagctl-bot apply --repo DIR --env E   apply a working tree to an environment
//	dagctl-bot job-run -- CMD...          run a job inside a Kubernetes pod (used by the kubernetes executor)
//	dagctl-bot deliveries list|retry      list or retry the intake queue's deliveries (dead ones after an outage)
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `dagctl-bot: a pull-request bot for SQLMesh and dbt

Usage:
  dagctl-bot serve [flags]                     run the bot (see -help for its settings)
  dagctl-bot plan --repo DIR [--env ENV]       plan a working tree; prints the PR comment it would get
  dagctl-bot apply --repo DIR --env ENV        apply a working tree to an environment
  dagctl-bot job-run [flags] -- COMMAND...     run a job inside a Kubernetes pod (the kubernetes executor)
  dagctl-bot deliveries list [--dead]          deliveries not done yet, or the dead ones
  dagctl-bot deliveries retry ID|--all-dead    put dead deliveries back in the queue (safe while the bot runs)
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return runServe(ctx, args[1:], stderr)
	case "plan":
		return runPlanCommand(ctx, args[1:], stdout, stderr)
	case "apply":
		return runApplyCommand(ctx, args[1:], stdout, stderr)
	case "job-run":
		return runJobRun(ctx, args[1:])
	case "deliveries":
		return runDeliveries(ctx, args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "unknown command %q\n\n%s", args[0], usage)
	return 2
}
