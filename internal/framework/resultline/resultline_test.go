package resultline_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/dagctl/dagctl-bot/internal/framework/resultline"
)

func TestLast(t *testing.T) {
	for _, c := range []struct {
		name, output, want, err string
	}{
		{"one line among the tool's", "tool says hi\n::r:: {\"a\":1}\nbye\n", `{"a":1}`, ""},
		{"the last result wins", "::r:: 1\n::r:: 2\n", "2", ""},
		{"parts are joined", "::r:: part 1/2 {\"a\":\n::r:: part 2/2 1}\n", `{"a":1}`, ""},
		{"a later complete result after a broken run", "::r:: part 2/2 x\n::r:: 3\n", "3", ""},
		{"a part without the ones before it", "::r:: part 2/2 x\n", "", "part 2/2 without the parts before it"},
		{"parts out of order", "::r:: part 1/3 a\n::r:: part 3/3 c\n", "", "out of order (expected 2/3)"},
		{"an incomplete run", "::r:: 1\n::r:: part 1/2 a\n", "", "incomplete: got 1 of 2 parts"},
		{"a malformed header", "::r:: part x/2 a\n", "", `malformed ::r:: part header "x/2"`},
		{"another marker is not ours", "::other:: 1\n", "", resultline.ErrNone.Error()},
		{"no output", "", "", resultline.ErrNone.Error()},
	} {
		got, err := resultline.Last(strings.NewReader(c.output), "::r::", "tool")
		if c.err != "" {
			assert.ErrorContains(t, err, c.err, c.name)
			continue
		}
		assert.NoError(t, err, c.name)
		assert.Equal(t, c.want, got, c.name)
	}
}
