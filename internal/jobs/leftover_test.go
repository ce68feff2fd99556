package jobs

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A bot killed with SIGKILL cannot stop its local jobs: their process groups live on. The next process's Attach
// stops what is left of the job before it says the job is gone, so that an apply is reported interrupted (and
// its lock released) only once nothing of it runs. The first executor stands for the dead process: it is never
// shut down, and the second one, on the same work directory, is the restarted bot's.
func TestLocalAttachStopsTheJobAKilledBotLeftRunning(t *testing.T) {
	dead, workDir := newTestLocal(t, 0)
	rec := newRecorder()
	h, err := dead.Start(context.Background(), shellJob(t.TempDir(), `trap '' TERM; sleep 1000 & echo $!; wait`), rec.sink)
	require.NoError(t, err)
	pid := childPid(t, rec)

	restarted, err := NewLocal(LocalOptions{WorkDir: workDir})
	require.NoError(t, err)
	_, err = restarted.Attach(context.Background(), h.ID(), nil)

	assert.ErrorIs(t, err, ErrGone)
	assert.True(t, processGone(t, pid), "the job's child outlived the attach that said it was gone")
	waitJob(t, h)
	requireScratchRemoved(t, workDir)
}

// An id with nothing left behind (the job ended, or never started) is simply gone.
func TestLocalAttachToAnUnknownJobIsGone(t *testing.T) {
	l, _ := newTestLocal(t, 0)
	_, err := l.Attach(context.Background(), "local-404-apply", nil)
	assert.ErrorIs(t, err, ErrGone)
	_, err = l.Attach(context.Background(), "../../etc/passwd", nil)
	assert.ErrorIs(t, err, ErrGone)
}
