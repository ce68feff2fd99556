package comments

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// go test ./internal/comments -update (or DAGCTL_UPDATE_GOLDEN=1) rewrites testdata/*.md.
var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func updating() bool { return *update || os.Getenv("DAGCTL_UPDATE_GOLDEN") == "1" }

func requireGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if updating() {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "missing golden file: run go test ./internal/comments -update")
	require.Equal(t, string(want), got, "%s differs: review the change, then rerun with -update", path)
}

// partSeparator joins the bodies of a multi-part comment in a golden file.
const partSeparator = "\n\n<!-- ───── next comment ───── -->\n\n"

func TestGoldenComments(t *testing.T) {
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			v := sc.view()
			parts := Comment(v, GitHubCommentLimit)
			require.Len(t, parts, 1)
			for _, p := range parts {
				requireWellFormed(t, p)
			}
			requireGolden(t, sc.name+".md", strings.Join(parts, partSeparator))

			var checks strings.Builder
			for _, s := range v.Sections {
				title, summary, text := CheckOutput(s)
				requireWellFormed(t, summary)
				requireWellFormed(t, text)
				checks.WriteString("# check: " + s.name() + "\n")
				checks.WriteString("conclusion: " + Conclusion(s) + "\n")
				checks.WriteString("title: " + title + "\n\n")
				checks.WriteString("## summary\n\n" + summary + "\n\n## text\n\n" + text + "\n\n")
			}
			if checks.Len() > 0 {
				requireGolden(t, sc.name+".check.md", checks.String())
			}
		})
	}
}

// Plans too big for one comment, split at the smallest limit: what continuation bodies look like, with a
// section, a <details> list and a table reopened in the next part.
func TestGoldenSplit(t *testing.T) {
	for name, v := range map[string]View{"split_min_limit": severalEnvironments(), "split_details": bigFirstPlan(70)} {
		t.Run(name, func(t *testing.T) {
			parts := Comment(v, MinCommentLimit)
			require.Greater(t, len(parts), 1)
			requireParts(t, parts, MinCommentLimit)
			requireGolden(t, name+".md", strings.Join(parts, partSeparator))
		})
	}
}
