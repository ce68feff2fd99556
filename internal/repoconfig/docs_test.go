package repoconfig

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The example in docs/config.md must stay valid.
func TestDocsExampleParses(t *testing.T) {
	doc := readDoc(t)
	start := strings.Index(doc, "```yaml\n# full example")
	require.NotEqual(t, -1, start, "docs/config.md lost its full example")
	body := doc[start+len("```yaml\n"):]
	body = body[:strings.Index(body, "```")]
	_, err := Parse(Path, []byte(body))
	require.NoError(t, err)
}

func readDoc(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "config.md"))
	require.NoError(t, err)
	return string(b)
}

// Every key the parser accepts has a row in docs/config.md.
func TestDocsListEveryKey(t *testing.T) {
	doc := readDoc(t)
	for _, keys := range [][]string{configKeys, projectKeys, environmentKeys, jobKeys, dbtImageKeys, dbtPREnvironmentKeys} {
		for _, k := range keys {
			require.Contains(t, doc, "| `"+k+"` |", "docs/config.md does not document %q", k)
		}
	}
}
