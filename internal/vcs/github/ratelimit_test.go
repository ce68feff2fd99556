package github_test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/forgetest/githubfake"
	"github.com/dagctl/dagctl-bot/internal/retry"
	"github.com/dagctl/dagctl-bot/internal/vcs"
	"github.com/dagctl/dagctl-bot/internal/vcs/github"
)

const commentsPath = "/repos/acme/warehouse/issues/1/comments"

// requestGaps are the fake-clock intervals between consecutive requests.
func requestGaps(reqs []githubfake.Request) []time.Duration {
	var gaps []time.Duration
	for i := 1; i < len(reqs); i++ {
		gaps = append(gaps, reqs[i].Time.Sub(reqs[i-1].Time))
	}
	return gaps
}

func statuses(reqs []githubfake.Request) []int {
	var out []int
	for _, r := range reqs {
		out = append(out, r.Status)
	}
	return out
}

func TestSecondaryRateLimitHonoursRetryAfter(t *testing.T) {
	e := newEnv(t)
	e.openPR()
	e.fake.FailNext("POST", commentsPath, 2, githubfake.SecondaryRateLimit(30*time.Second))

	id, err := e.inst.CreateComment(e.ctx, e.repo, 1, "hello")
	require.NoError(t, err)
	assert.NotZero(t, id)

	posts := e.fake.RequestsMatching("POST", commentsPath)
	assert.Equal(t, []int{403, 403, 201}, statuses(posts))
	assert.Equal(t, []time.Duration{30 * time.Second, 30 * time.Second}, requestGaps(posts))
	assert.Equal(t, []time.Duration{30 * time.Second, 30 * time.Second}, e.recordedWaits())
	assert.Len(t, e.fr.Comments(1), 1, "the comment was written once")
}

func TestSecondaryRateLimitWithoutRetryAfterBacksOffFromAMinute(t *testing.T) {
	e := newEnv(t)
	e.openPR()
	e.fake.FailNext("POST", commentsPath, 3, githubfake.SecondaryRateLimit(0))

	_, err := e.inst.CreateComment(e.ctx, e.repo, 1, "hello")
	require.NoError(t, err)
	assert.Equal(t, []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute}, e.recordedWaits())
	assert.Equal(t, []int{403, 403, 403, 201}, statuses(e.fake.RequestsMatching("POST", commentsPath)))
}

func TestPrimaryRateLimitWaitsUntilReset(t *testing.T) {
	for _, status := range []int{http.StatusTooManyRequests, http.StatusForbidden} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			e := newEnv(t)
			e.openPR()
			e.fake.FailNext("GET", "/repos/acme/warehouse/pulls/1", 1, githubfake.PrimaryRateLimit(status, 90*time.Second))

			pr, err := e.inst.PullRequest(e.ctx, e.repo, 1)
			require.NoError(t, err)
			assert.Equal(t, 1, pr.Number)
			// Until x-ratelimit-reset, plus a second against clock skew.
			assert.Equal(t, []time.Duration{91 * time.Second}, e.recordedWaits())
			gets := e.fake.RequestsMatching("GET", "/repos/acme/warehouse/pulls/1")
			assert.Equal(t, []int{status, 200}, statuses(gets))
		})
	}
}

func TestPermissionErrorIsNotRetried(t *testing.T) {
	e := newEnv(t)
	e.openPR()
	e.fake.FailNext("POST", commentsPath, 1, githubfake.PermissionDenied())

	_, err := e.inst.CreateComment(e.ctx, e.repo, 1, "hello")
	require.ErrorIs(t, err, vcs.ErrPermission)
	assert.NotErrorIs(t, err, vcs.ErrRateLimited)
	assert.Contains(t, err.Error(), "Resource not accessible by integration")
	assert.Len(t, e.fake.RequestsMatching("POST", commentsPath), 1)
	assert.Empty(t, e.recordedWaits())
}

func TestRateLimitGivesUpAfterBoundedTries(t *testing.T) {
	e := newEnv(t)
	e.openPR()
	e.fake.FailNext("POST", commentsPath, 100, githubfake.SecondaryRateLimit(0))

	_, err := e.inst.CreateComment(e.ctx, e.repo, 1, "hello")
	require.ErrorIs(t, err, vcs.ErrRateLimited)
	assert.NotErrorIs(t, err, vcs.ErrPermission)
	assert.Len(t, e.fake.RequestsMatching("POST", commentsPath), 1+github.DefaultMaxRetries)
	assert.Equal(t, []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute}, e.recordedWaits())
	assert.Empty(t, e.fr.Comments(1))
	var limited *vcs.RateLimited
	require.ErrorAs(t, err, &limited)
	assert.WithinDuration(t, e.fake.Now().Add(16*time.Minute), limited.Reset, 0, "the wait the transport would have made next")
}

func TestRateLimitTooFarAwayIsNotWaitedFor(t *testing.T) {
	e := newEnv(t)
	e.openPR()
	e.fake.FailNext("GET", "/repos/acme/warehouse/pulls/1", 1, githubfake.PrimaryRateLimit(http.StatusForbidden, 50*time.Minute))

	_, err := e.inst.PullRequest(e.ctx, e.repo, 1)
	require.ErrorIs(t, err, vcs.ErrRateLimited, "the caller retries the work later instead of blocking a worker")
	assert.Empty(t, e.recordedWaits())
	var limited *vcs.RateLimited
	require.ErrorAs(t, err, &limited, "the reset reaches the caller's retry policy")
	assert.WithinDuration(t, e.fake.Now().Add(50*time.Minute+time.Second), limited.Reset, time.Second)
	assert.Len(t, e.fake.RequestsMatching("GET", "/repos/acme/warehouse/pulls/1"), 1)
}

func TestTokenRequestIsRetriedOnRateLimit(t *testing.T) {
	e := newEnv(t)
	e.openPR()
	e.fake.FailNext("POST", "/app/installations/*/access_tokens", 1, githubfake.SecondaryRateLimit(5*time.Second))

	_, err := e.inst.PullRequest(e.ctx, e.repo, 1)
	require.NoError(t, err)
	assert.Equal(t, []time.Duration{5 * time.Second}, e.recordedWaits())
	assert.Equal(t, 2, e.tokenRequests())
}

func TestWritesAreSerialisedPerInstallation(t *testing.T) {
	e := newEnv(t)
	e.openPR()
	_, err := e.inst.Comments(e.ctx, e.repo, 1) // mint the token first
	require.NoError(t, err)
	e.fake.SetLatency(20 * time.Millisecond)

	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for i := range 6 {
		wg.Go(func() {
			_, err := e.inst.CreateComment(e.ctx, e.repo, 1, fmt.Sprintf("comment %d", i))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	assert.Len(t, e.fr.Comments(1), 6)
	assert.Equal(t, 1, e.fake.MaxConcurrentWrites(), "content-creating requests one at a time")
}

func TestWritesAreSpaced(t *testing.T) {
	e := newEnv(t, func(c *github.Config) { c.MinWriteInterval = 0 }) // the default: one second
	e.openPR()

	for i := range 3 {
		_, err := e.inst.CreateComment(e.ctx, e.repo, 1, fmt.Sprintf("comment %d", i))
		require.NoError(t, err)
	}
	_, err := e.inst.Comments(e.ctx, e.repo, 1)
	require.NoError(t, err)

	posts := e.fake.RequestsMatching("POST", commentsPath)
	assert.Equal(t, []time.Duration{github.DefaultMinWriteInterval, github.DefaultMinWriteInterval}, requestGaps(posts))
	assert.Equal(t, []time.Duration{time.Second, time.Second}, e.recordedWaits(), "reads are not spaced")
}

// A 422 (a deleted PR's comment, a check run on a commit that is gone, a body GitHub refuses) will answer the
// same however often it is sent: it is vcs.ErrInvalid, which the retry policy stops on.
func TestUnprocessableIsInvalidAndNotRetried(t *testing.T) {
	e := newEnv(t)
	e.openPR()
	e.fake.FailNext("POST", commentsPath, 1, githubfake.Failure{Status: http.StatusUnprocessableEntity, Message: "Validation Failed"})
	_, err := e.inst.CreateComment(e.ctx, e.repo, 1, "hello")
	require.ErrorIs(t, err, vcs.ErrInvalid)
	assert.True(t, retry.IsPermanent(err))
	assert.Len(t, e.fake.RequestsMatching("POST", commentsPath), 1)
}
