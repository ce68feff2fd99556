package scope

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The PR writes dbt_project.yml and the bot reads it: no input may panic, hang or pass as a layout unsaid.
func FuzzReadLayout(f *testing.F) {
	for _, seed := range []string{"", "name: x\n", projectYML, "model-paths: [\"{{ var('m') }}\"]\n", "a: &a [*a]\n",
		"vars: &v {a: [*v]}\n", "model-paths: [a, [b]]\n", "- 1\n", "\xff\xfe", "target-path: {a: b}\n"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := ReadLayout("dbt_project.yml", data)
		var fe *FileError
		if err != nil && (!errors.As(err, &fe) || fe.File != "dbt_project.yml" || fe.Msg == "") {
			t.Fatalf("want a *FileError naming the file, got %T %v", err, err)
		}
		_ = vars(data)
	})
}

// Aliases can make a small file stand for a huge tree; the vars comparison must not expand it.
func TestVarsOfAnAliasBombDoNotExpand(t *testing.T) {
	var b strings.Builder
	b.WriteString("name: x\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 12; i++ {
		b.WriteString("a" + string(rune('a'+i)) + ": &a" + string(rune('a'+i)) + " [")
		prev := "a0"
		if i > 1 {
			prev = "a" + string(rune('a'+i-1))
		}
		b.WriteString(strings.Repeat("*"+prev+", ", 9) + "*" + prev + "]\n")
	}
	b.WriteString("vars: {v: *al}\n")
	assert.NotPanics(t, func() { _ = vars([]byte(b.String())) })
	_, err := ReadLayout("dbt_project.yml", []byte(strings.Repeat("#", MaxProjectFileSize+1)))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the limit is 1048576")
}
