package jobs

import (
	"context"
	"fmt"
	"io"
)

// Checkout puts exactly the commit src.SHA from src.CloneURL into dir (empty or missing), as the local
// executor does. The Kubernetes executor's init container calls it inside the job's Pod.
func Checkout(ctx context.Context, dir string, src Source) error {
	if !validSHA(src.SHA) {
		return fmt.Errorf("not a full commit id: %q", src.SHA)
	}
	return checkout(ctx, dir, src)
}

// WriteInputs checks a job's inputs (CheckInputs) and writes them into dir as read-only files; the Kubernetes
// executor's init container calls it with the inputs it fetched from the bot. It leaves dir's own mode alone
// (an emptyDir's root is not the container user's to chmod; the job container mounts it read-only).
func WriteInputs(dir string, inputs map[string][]byte) error {
	if err := CheckInputs(inputs); err != nil {
		return err
	}
	return writeInputs(dir, inputs)
}

// ValidSHA reports whether s is a full, lower-case commit id, as a job's commits must be.
func ValidSHA(s string) bool { return validSHA(s) }

// ReadLines reads r line by line, as the local executor reads a job's output (long lines cut, invalid UTF-8
// replaced), and calls emit for each line until EOF or an error.
func ReadLines(r io.Reader, emit func(string)) error { return readLines(r, emit) }
