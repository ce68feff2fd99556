package jobs

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func readAll(t *testing.T, input string) []string {
	t.Helper()
	var lines []string
	require.NoError(t, readLines(strings.NewReader(input), func(s string) { lines = append(lines, s) }))
	return lines
}

func TestReadLinesSplitsOnNewlinesAndKeepsAnUnterminatedLastLine(t *testing.T) {
	assert.Equal(t, []string{"one", "", "two", "three"}, readAll(t, "one\n\ntwo\r\nthree"))
	assert.Empty(t, readAll(t, ""))
}

func TestReadLinesCutsOverlongLinesAndGoesOn(t *testing.T) {
	long := strings.Repeat("x", 3*MaxLineBytes+10)

	lines := readAll(t, "before\n"+long+"\nafter\n")

	require.Len(t, lines, 3)
	assert.Equal(t, "before", lines[0])
	assert.Equal(t, strings.Repeat("x", MaxLineBytes)+cutNote, lines[1])
	assert.Equal(t, "after", lines[2])
}

func TestReadLinesCutsAnOverlongUnterminatedLastLine(t *testing.T) {
	lines := readAll(t, strings.Repeat("y", MaxLineBytes+1))

	assert.Equal(t, []string{strings.Repeat("y", MaxLineBytes) + cutNote}, lines)
}

func TestReadLinesReplacesInvalidUTF8(t *testing.T) {
	assert.Equal(t, []string{"caf\uFFFD ok", "ünïcode"}, readAll(t, "caf\xe9 ok\nünïcode\n"))
}
