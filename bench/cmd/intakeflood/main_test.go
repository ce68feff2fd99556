package main

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A tiny run: more slow senders than the large budget admits, and every real delivery is still acknowledged
// and stored (run fails otherwise); both phases are reported.
func TestTinyFloodAcknowledgesEveryRealDelivery(t *testing.T) {
	var out strings.Builder
	err := run(config{slow: 6, size: 25 << 20, chunk: 16 << 10, interval: 100 * time.Millisecond, senders: 2,
		pause: 20 * time.Millisecond, idle: 300 * time.Millisecond, duration: time.Second}, &out)
	require.NoError(t, err, out.String())
	assert.Contains(t, out.String(), "| idle |")
	assert.Contains(t, out.String(), "| flood |")
	assert.Contains(t, out.String(), "6 connections")
}
