package db

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEnvironmentLocks(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s, path := openTemp(t, WithClock(clk.Now))
	p12 := mustCreatePlan(t, s, newPlan(12, "prod", "a"))
	p13 := mustCreatePlan(t, s, newPlan(13, "prod", "b"))
	alice := LockOwner{PlanID: p12.ID, PR: 12, User: "alice"}
	bob := LockOwner{PlanID: p13.ID, PR: 13, User: "bob"}

	_, ok, err := s.Holder(ctx, "github", "acme/warehouse", "prod")
	require.NoError(t, err)
	assert.False(t, ok)

	held, acquired, err := s.TryLock(ctx, "github", "acme/warehouse", "prod", alice)
	require.NoError(t, err)
	assert.True(t, acquired)
	want := Lock{Forge: "github", Repo: "acme/warehouse", Environment: "prod", Owner: alice, AcquiredAt: clk.Now()}
	assert.Equal(t, want, held)

	held, acquired, err = s.TryLock(ctx, "github", "ACME/warehouse", "prod", bob)
	require.NoError(t, err)
	assert.False(t, acquired)
	assert.Equal(t, want, held, "the loser learns who holds the lock")

	held, acquired, err = s.TryLock(ctx, "github", "acme/warehouse", "prod", alice)
	require.NoError(t, err)
	assert.True(t, acquired, "the owner may take its lock again (a replayed event)")
	assert.Equal(t, want, held)

	_, acquired, err = s.TryLock(ctx, "github", "acme/warehouse", "dev", bob)
	require.NoError(t, err)
	assert.True(t, acquired, "environments lock separately")
	_, acquired, err = s.TryLock(ctx, "github", "acme/warehouse", "staging", alice)
	require.NoError(t, err)
	assert.True(t, acquired)

	s = reopen(t, s, path, WithClock(clk.Now))
	got, ok, err := s.Holder(ctx, "github", "acme/warehouse", "prod")
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, want, got, "locks survive a restart")

	assert.ErrorIs(t, s.Unlock(ctx, "github", "acme/warehouse", "prod", bob), ErrNotLockOwner)
	mine, err := s.LocksHeldByPR(ctx, "github", "acme/warehouse", 12)
	require.NoError(t, err)
	assert.Equal(t, []string{"prod", "staging"}, lockEnvs(mine))
	all, err := s.ListLocks(ctx, "github", "acme/warehouse")
	require.NoError(t, err)
	assert.Equal(t, []string{"dev", "prod", "staging"}, lockEnvs(all))

	require.NoError(t, s.Unlock(ctx, "github", "acme/warehouse", "prod", alice))
	require.NoError(t, s.Unlock(ctx, "github", "acme/warehouse", "prod", alice), "releasing twice is harmless")
	_, acquired, err = s.TryLock(ctx, "github", "acme/warehouse", "prod", bob)
	require.NoError(t, err)
	assert.True(t, acquired)

	removed, ok, err := s.ForceUnlock(ctx, "github", "acme/warehouse", "prod")
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, bob, removed.Owner)
	_, ok, err = s.ForceUnlock(ctx, "github", "acme/warehouse", "prod")
	require.NoError(t, err)
	assert.False(t, ok)
	_, ok, err = s.Holder(ctx, "github", "acme/warehouse", "prod")
	require.NoError(t, err)
	assert.False(t, ok)

	_, _, err = s.TryLock(ctx, "github", "acme/warehouse", "x", LockOwner{PlanID: 4242})
	assert.Error(t, err, "the owner must be a stored plan")
}

func TestLockContentionHasExactlyOneWinner(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	const contenders = 24
	owners := make([]LockOwner, contenders)
	for i := range owners {
		p := mustCreatePlan(t, s, newPlan(100+i, "prod", "sha"))
		owners[i] = LockOwner{PlanID: p.ID, PR: p.PR, User: "u"}
	}

	var wg sync.WaitGroup
	won := make([]bool, contenders)
	holders := make([]Lock, contenders)
	errs := make([]error, contenders)
	start := make(chan struct{})
	for i := range owners {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			holders[i], won[i], errs[i] = s.TryLock(ctx, "github", "acme/warehouse", "prod", owners[i])
		}(i)
	}
	close(start)
	wg.Wait()

	winner := -1
	for i := range owners {
		require.NoError(t, errs[i])
		if won[i] {
			require.Equal(t, -1, winner, "two winners")
			winner = i
		}
	}
	require.NotEqual(t, -1, winner, "no winner")
	for i := range owners {
		assert.Equal(t, owners[winner], holders[i].Owner, "everyone sees the same holder")
	}
}

func lockEnvs(ls []Lock) []string {
	var out []string
	for _, l := range ls {
		out = append(out, l.Environment)
	}
	return out
}
