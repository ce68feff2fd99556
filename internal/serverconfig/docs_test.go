package serverconfig

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// Every setting has a row in docs/config.md naming its variable and flag.
func TestDocsListEverySetting(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "config.md"))
	require.NoError(t, err)
	for _, s := range settings() {
		require.Contains(t, string(b), "| `"+s.env+"` | `-"+s.flag+"` |", "docs/config.md does not document %s", s.env)
	}
}
