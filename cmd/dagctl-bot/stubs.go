package main

import (
	"context"
	"fmt"
	"io"
	"os"
)

func runServe(ctx context.Context, args []string, stderr io.Writer) int {
	fmt.Fprintln(stderr, "serve: not wired yet")
	return 1
}

func runJobRun(ctx context.Context, args []string) int {
	fmt.Fprintln(os.Stderr, "job-run: not wired yet")
	return 1
}
