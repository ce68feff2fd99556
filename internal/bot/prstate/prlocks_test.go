package prstate

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// A bot that runs for months sees many PRs: a PR's lock lives only while someone holds it or waits for it,
// so the map empties when the work is done, and it still serialises work on one PR.
func TestPRLocksAreForgottenWhenNobodyHoldsOrWaits(t *testing.T) {
	var l PRLocks
	repo := vcs.Repo{Forge: "github", Owner: "acme", Name: "warehouse"}
	for pr := 1; pr <= 100; pr++ {
		l.Lock(repo, pr)()
	}
	assert.Zero(t, l.entries(), "released locks are forgotten")

	// Many goroutines on a few PRs: each PR's section is never entered by two at once.
	inside := map[int]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 0; i < 400; i++ {
		wg.Add(1)
		go func(pr int) {
			defer wg.Done()
			unlock := l.Lock(repo, pr)
			mu.Lock()
			inside[pr]++
			assert.Equal(t, 1, inside[pr], "two holders of PR %d's lock", pr)
			mu.Unlock()
			mu.Lock()
			inside[pr]--
			mu.Unlock()
			unlock()
		}(i % 4)
	}
	wg.Wait()
	assert.Zero(t, l.entries(), "no lock is left once every holder and waiter is done")
}
