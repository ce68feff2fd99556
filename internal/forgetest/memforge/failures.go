package memforge

import "sync"

// failures are calls made to fail on purpose: a forge answering 502 (a transient error) or 404 now and then.
type failures struct {
	mu      sync.Mutex
	pending map[string][]error // by method, in order
	failed  map[string]int
}

// FailNext makes the next n calls of the named method of vcs.Forge ("Tree", "Compare", "CloneToken", "CommitAuthors",
// "ReadFile") fail with
// err, before they do anything.
func (f *Forge) FailNext(method string, n int, err error) {
	f.fail.mu.Lock()
	defer f.fail.mu.Unlock()
	if f.fail.pending == nil {
		f.fail.pending, f.fail.failed = map[string][]error{}, map[string]int{}
	}
	for range n {
		f.fail.pending[method] = append(f.fail.pending[method], err)
	}
}

// Failed is how many calls of the method failed by FailNext.
func (f *Forge) Failed(method string) int {
	f.fail.mu.Lock()
	defer f.fail.mu.Unlock()
	return f.fail.failed[method]
}

// injected takes the method's next injected failure, if any.
func (f *Forge) injected(method string) error {
	f.fail.mu.Lock()
	defer f.fail.mu.Unlock()
	next := f.fail.pending[method]
	if len(next) == 0 {
		return nil
	}
	f.fail.pending[method] = next[1:]
	f.fail.failed[method]++
	return next[0]
}

// Heal drops the failures FailNext still holds: the forge answers again.
func (f *Forge) Heal() {
	f.fail.mu.Lock()
	defer f.fail.mu.Unlock()
	clear(f.fail.pending)
}
