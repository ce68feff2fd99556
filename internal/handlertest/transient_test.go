package handlertest_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/testutil"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// A forge's transient error inside background work (a plan job, an apply), after the delivery that started it
// was done, is waited out on the retry policy, on the forge's clock; an error retrying cannot fix still ends
// the work at once.

var badGateway = errors.New("memforge: 502 Bad Gateway")

func notFound(what string) error { return fmt.Errorf("memforge: %s: %w", what, vcs.ErrNotFound) }

func TestAPlanWhoseTokenRequestFailsTransientlyIsReady(t *testing.T) {
	w := newWorld(t)
	w.forge.FailNext("CloneToken", 3, badGateway)
	pr := w.openPR(1, "more-columns", "alice", testutil.NonBreakingChange)

	assert.Equal(t, 3, w.forge.Failed("CloneToken"))
	for _, env := range []string{"dev", "prod"} {
		st, ok := w.forge.StatusNamed(w.repo, "dagctl/plan: "+env, pr.HeadSHA)
		require.True(t, ok, env)
		assert.Equal(t, vcs.StatusSuccess, st.State, "%s: %s", env, describe(st.Status))
	}
}

func TestAPlanWhoseTokenRequestIsRefusedFailsAtOnce(t *testing.T) {
	w := newWorld(t)
	w.forge.FailNext("CloneToken", 1, notFound("installation"))
	pr := w.openPR(1, "more-columns", "alice", testutil.NonBreakingChange)

	assert.Equal(t, 1, w.forge.Failed("CloneToken"))
	failed := 0
	for _, env := range []string{"dev", "prod"} {
		st, ok := w.forge.StatusNamed(w.repo, "dagctl/plan: "+env, pr.HeadSHA)
		require.True(t, ok, env)
		if st.State == vcs.StatusFailure {
			failed++
			assert.Contains(t, describe(st.Status), "Could not get a token to fetch the code")
		}
	}
	assert.Equal(t, 1, failed, "the plan whose token was refused failed, the other not")
}

func TestAnApplyWhoseTokenRequestFailsTransientlyApplies(t *testing.T) {
	w := newWorld(t)
	pr := w.openPR(1, "more-columns", "alice", testutil.NonBreakingChange)
	w.forge.FailNext("CloneToken", 2, badGateway)
	w.comment(pr, "bob", "/dagctl apply dev")

	assert.Equal(t, 2, w.forge.Failed("CloneToken"))
	st, ok := w.forge.StatusNamed(w.repo, "dagctl/apply: dev", pr.HeadSHA)
	require.True(t, ok)
	assert.Equal(t, vcs.StatusSuccess, st.State, "%s", describe(st.Status))
}

// describe is a status's description, title and summary, for messages.
func describe(st vcs.Status) string {
	out := st.Description
	if st.Output != nil {
		out += " | " + st.Output.Title + " | " + st.Output.Summary
	}
	return out
}

// The content check of a protected environment's apply on merge reads the forge's trees under the lock: a 502
// there is waited out (an environment applied only on merge has no way back from a failed apply).
func TestAMergeWhoseContentCheckFailsTransientlyApplies(t *testing.T) {
	w := newWorld(t)
	pr := w.openPR(1, "more-columns", "alice", testutil.NonBreakingChange)
	w.review(pr, "bob", vcs.ReviewApproved)
	w.forge.FailNext("Tree", 3, badGateway)
	_, sha := w.mergePR(pr, "alice")
	w.bot.Wait()
	w.drainWrites()

	assert.Equal(t, 3, w.forge.Failed("Tree"))
	st, ok := w.forge.StatusNamed(w.repo, "dagctl/apply: prod", sha)
	require.True(t, ok)
	assert.Equal(t, vcs.StatusSuccess, st.State, "%s", describe(st.Status))
	assert.Equal(t, 1, w.appliesStarted("prod"))
}

func TestAMergeWhoseContentCheckIsRefusedFailsAtOnce(t *testing.T) {
	w := newWorld(t)
	pr := w.openPR(1, "more-columns", "alice", testutil.NonBreakingChange)
	w.review(pr, "bob", vcs.ReviewApproved)
	w.forge.FailNext("Tree", 1, notFound("tree"))
	_, sha := w.mergePR(pr, "alice")
	w.bot.Wait()
	w.drainWrites()

	assert.Equal(t, 1, w.forge.Failed("Tree"))
	st, ok := w.forge.StatusNamed(w.repo, "dagctl/apply: prod", sha)
	require.True(t, ok)
	assert.Equal(t, vcs.StatusFailure, st.State)
	assert.Contains(t, describe(st.Status), "Could not compare the content with the last apply")
	assert.Zero(t, w.appliesStarted("prod"))
}
