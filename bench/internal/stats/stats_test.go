package stats

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestPercentilesAreNearestRank(t *testing.T) {
	var d []time.Duration
	for i := 10; i >= 1; i-- { // unsorted on purpose
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	s := Summarize(d)
	assert.Equal(t, 10, s.N)
	assert.Equal(t, time.Millisecond, s.Min)
	assert.Equal(t, 5*time.Millisecond, s.P50)
	assert.Equal(t, 9*time.Millisecond, s.P90)
	assert.Equal(t, 10*time.Millisecond, s.P99)
	assert.Equal(t, 10*time.Millisecond, s.Max)
	assert.Equal(t, 10*time.Millisecond, d[0], "the input is not reordered")
}

func TestSmallSamples(t *testing.T) {
	assert.Equal(t, Summary{}, Summarize(nil))
	one := Summarize([]time.Duration{7})
	assert.Equal(t, time.Duration(7), one.P50)
	assert.Equal(t, time.Duration(7), one.P99)
	three := Summarize([]time.Duration{3, 1, 2})
	assert.Equal(t, time.Duration(2), three.P50)
	assert.Equal(t, time.Duration(3), three.P90)
}

func TestTableAndFormats(t *testing.T) {
	assert.Equal(t, "| a | b |\n| --- | --- |\n| 1 | 2 |\n", Table([]string{"a", "b"}, [][]string{{"1", "2"}}))
	assert.Equal(t, "1.50 ms", Ms(1500*time.Microsecond))
	assert.Equal(t, "15.0 ms", Ms(15*time.Millisecond))
	assert.Equal(t, "150 ms", Ms(150*time.Millisecond))
	assert.Equal(t, "-791 ms", Ms(-790570*time.Microsecond))
	assert.Equal(t, 2.0, Ratio(2, 1))
	assert.Equal(t, 0.0, Ratio(2, 0))
}
