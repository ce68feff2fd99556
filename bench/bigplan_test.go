package bench

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/framework/sqlmesh/planner"
	"github.com/dagctl/dagctl-bot/internal/testutil"
)

// bigPlanModels is the size of the synthetic plan: 5,000 copies of the two models of a real captured
// non-breaking plan (a directly modified FULL model with a diff, and its indirectly modified VIEW child).
const bigPlanModels = 10_000

// bigPlanCapture is the real job output the synthetic plan is scaled up from.
var bigPlanCapture = filepath.Join(testutil.RepoRoot(), "internal", "framework", "sqlmesh", "planner", "testdata", "non_breaking.out")

var bigPlan struct {
	once sync.Once
	out  []byte
	err  error
}

// bigPlanOutput is a plan job's standard output for a bigPlanModels-model plan, printed by the real helper's
// own emit() (testdata/bigplan.py), so the result comes in `::dagctl-plan:: part I/N` lines as it would.
func bigPlanOutput(tb testing.TB) []byte {
	tb.Helper()
	python := testutil.Python(tb)
	bigPlan.once.Do(func() { bigPlan.out, bigPlan.err = generatePlanOutput(python, bigPlanCapture, bigPlanModels) })
	require.NoError(tb, bigPlan.err)
	return bigPlan.out
}

func generatePlanOutput(python, capture string, models int) ([]byte, error) {
	dir, err := os.MkdirTemp("", "dagctl-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	helper := filepath.Join(dir, "sqlmesh_plan.py")
	if err := os.WriteFile(helper, []byte(planner.HelperSource()), 0o644); err != nil {
		return nil, err
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(python, filepath.Join("testdata", "bigplan.py"), helper, capture, strconv.Itoa(models))
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, &genError{err: err, stderr: stderr.String()}
	}
	return stdout.Bytes(), nil
}

type genError struct {
	err    error
	stderr string
}

func (e *genError) Error() string {
	return "generating the big plan: " + e.err.Error() + ": " + e.stderr
}

// The generator must produce what the parser reads as a plan of exactly the asked size, in parts.
func TestGeneratedPlanParsesToTheAskedModels(t *testing.T) {
	out, err := generatePlanOutput(testutil.Python(t), bigPlanCapture, 200)
	require.NoError(t, err)
	require.True(t, bytes.Contains(out, []byte(planner.Marker+" part 1/")), "a result this long comes in parts")

	sum, err := planner.ParseResult(bytes.NewReader(out))
	require.NoError(t, err)
	require.Len(t, sum.DirectlyModified, 100)
	require.Len(t, sum.IndirectlyModified, 100)
	require.Len(t, sum.Backfills, 200)
	require.Equal(t, "dagctl_example.customer_totals_00042", sum.DirectlyModified[42].Model)
	require.Equal(t, []string{"dagctl_example.top_customers_00042"}, sum.DirectlyModified[42].Children)
	require.True(t, strings.Contains(sum.Explain, "dagctl_example__top_customers_00099__"), "the explain tree is replicated")
	require.False(t, strings.Contains(sum.Explain, "_00100"), "and no further")
}
