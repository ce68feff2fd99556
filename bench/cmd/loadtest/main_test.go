package main

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A tiny run: both servers accept every signed payload (202), and the table has a row per server and level.
func TestTinyRunReportsBothServers(t *testing.T) {
	var out strings.Builder
	err := run(config{concurrency: []int{1, 4}, requests: 20, duration: 10 * time.Second, rounds: 2, warmup: 5}, &out)
	require.NoError(t, err)
	for _, row := range []string{"| 1 | floor | 40 |", "| 1 | intake | 40 |", "| 4 | floor | 40 |", "| 4 | intake | 40 |"} {
		assert.Contains(t, out.String(), row)
	}
}

// The intake refuses a payload signed with another secret, so a run against it fails loudly.
func TestWrongSignatureFailsTheRun(t *testing.T) {
	payloads, err := loadPayloads("")
	require.NoError(t, err)
	for i := range payloads {
		payloads[i].Signature = "sha256=" + strings.Repeat("0", 64)
	}
	dir := t.TempDir()
	target, closeStore, err := intake(dir)
	require.NoError(t, err)
	defer closeStore()
	defer target.close()
	r := load(target, payloads, 2, 4, 10*time.Second)
	assert.Equal(t, 4, r.failures)
	assert.ErrorContains(t, r.firstErr, "status 401")
}
