package server_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/forgetest"
	"github.com/dagctl/dagctl-bot/internal/forgetest/e2e"
	"github.com/dagctl/dagctl-bot/internal/repoconfig"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// gateConfig has prod only (fewer sqlmesh runs), applied by comment or on merge after one approval: the
// example's prodByComment without dev.
var gateConfig = strings.Replace(prodByComment, "  - name: dev\n    apply_on: [comment]\n", "", 1)

// looseConfig is what an attacker writes on a branch of their own: prod unprotected, applied by comment.
const looseConfig = `version: 1
projects:
  - path: .
    framework: sqlmesh
environments:
  - name: prod
    protected: false
    apply_on: [comment]
job:
  pass_env: [EXAMPLE_DUCKDB_PATH]
`

// viewModel is a small new model, cheap to plan and apply.
func viewModel(name string) map[string]string {
	return map[string]string{"models/" + name + ".sql": "MODEL (name dagctl_example." + name + ", kind VIEW);\nSELECT 1 AS one\n"}
}

func gateWorld(t *testing.T, forge e2e.Kind) *world {
	return newWorld(t, forge, worldOptions{seedProd: true, baseFiles: map[string]string{repoconfig.Path: gateConfig}})
}

// A writer pushes a branch whose config unprotects prod and opens a PR into it: the rules still come from the
// default branch, and a PR into a branch that does not deploy never applies a protected environment.
func TestAPRIntoABranchWithLooseRulesCannotApplyProd(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		w := gateWorld(t, forge)
		w.SetPermission("mallory", vcs.PermissionWrite)
		loose := w.Commit("loose", map[string]string{repoconfig.Path: looseConfig}, "my own rules")
		w.Branch("attack", "loose")
		head := w.Commit("attack", viewModel("unreviewed"), "an unreviewed change")
		w.SetPR(forgetest.PR{Number: 1, Title: "Change attack", Author: "mallory", HeadRef: "attack", HeadSHA: head, BaseRef: "loose", BaseSHA: loose})
		w.send(w.PREvent(vcs.PROpened, 1))

		assert.True(t, plansOf(t, w, 1)["prod"].Env.Protected, "protection comes from the default branch")
		conclusion, _ := approvalCheck(t, w, "prod", head)
		w.assertState(vcs.StatusBlocked, conclusion)

		w.comment(1, "mallory", "/dagctl apply prod")
		assert.Contains(t, w.LastComment(1), "not a deploy branch")
		assert.Contains(t, w.LastComment(1), "`loose`")
		assert.Zero(t, applyRuns(t, w), "nothing was applied")

		// Even approved by someone else, a stacked PR is not applied to prod: it is told why, not an error.
		w.review(1, head, "bob", vcs.ReviewApproved)
		w.comment(1, "bob", "/dagctl apply prod")
		assert.Contains(t, w.LastComment(1), "not a deploy branch")
		assert.Zero(t, applyRuns(t, w))
	})
}

// An approval covers the plan it followed: a later plan of the same commit with other flags (a restatement from
// 2000) needs its own review, while a re-run of the approved scope keeps it.
func TestAnApprovalDoesNotCoverALaterPlanWithOtherFlags(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		w := gateWorld(t, forge)
		head := w.PR(1, "x", "alice", viewModel("gate_a"))
		w.send(w.PREvent(vcs.PROpened, 1))
		w.review(1, head, "bob", vcs.ReviewApproved)
		conclusion, _ := approvalCheck(t, w, "prod", head)
		require.Equal(t, vcs.StatusSuccess, conclusion)

		w.comment(1, "alice", "/dagctl plan prod --restate-model dagctl_example.orders --start 2024-01-01")
		check, _ := w.Status("dagctl/approval: prod", head)
		w.assertState(vcs.StatusBlocked, check.State, "the restatement was not reviewed")
		if w.Can(forgetest.StatusOutput) { // why an approval does not count is the status's output alone
			assert.Contains(t, check.Summary, "Approvals apply to plan")
			assert.Contains(t, check.Summary, "--restate-model dagctl_example.orders")
			assert.Contains(t, check.Summary, "bob approved before plan")
		}

		w.comment(1, "bob", "/dagctl apply prod")
		assert.Contains(t, w.LastComment(1), "is not approved")
		assert.Zero(t, applyRuns(t, w))

		// Planning the approved scope again: bob's approval of the first plan covers it.
		w.comment(1, "alice", "/dagctl plan prod")
		check, _ = w.Status("dagctl/approval: prod", head)
		assert.Equal(t, vcs.StatusSuccess, check.State, check.Summary)
		if w.Can(forgetest.StatusOutput) {
			assert.Contains(t, check.Summary, "same scope")
		}
	})
}

// `/dagctl apply` of a PR that does not contain the deploy branch's head would undo what was merged since.
func TestApplyingAPRBehindItsDeployBranchIsRefused(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		w := gateWorld(t, forge)
		head := w.PR(1, "x", "alice", viewModel("gate_a"))
		w.send(w.PREvent(vcs.PROpened, 1))
		w.review(1, head, "bob", vcs.ReviewApproved)
		w.Commit("main", viewModel("merged_meanwhile"), "merged since the PR branched")

		w.comment(1, "bob", "/dagctl apply prod")
		assert.Contains(t, w.LastComment(1), "behind `main`")
		assert.Contains(t, w.LastComment(1), "Update the branch, then apply the new plan")
		assert.Zero(t, applyRuns(t, w))
	})
}

// A plan that reports no changes turns a protected environment's approval green without a review only when the
// forge's file list shows no file of the project changed.
func TestNoChangesIsTrustedOnlyWhenNoProjectFileChanged(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		w := gateWorld(t, forge)
		head := w.PR(1, "notes", "alice", map[string]string{"docs/notes.md": "not a model, but a file of the project\n"})
		w.send(w.PREvent(vcs.PROpened, 1))
		planCheck, _ := w.Status("dagctl/plan: prod", head)
		w.requireState(vcs.StatusNeutral, planCheck.State, "sqlmesh sees no changes")
		conclusion, _ := approvalCheck(t, w, "prod", head)
		w.assertState(vcs.StatusBlocked, conclusion, "the PR changes a file under the project: a review decides")

		empty := w.PR(2, "empty", "alice", map[string]string{})
		w.send(w.PREvent(vcs.PROpened, 2))
		conclusion, title := approvalCheck(t, w, "prod", empty)
		assert.Equal(t, vcs.StatusSuccess, conclusion, "no file changed")
		assert.Equal(t, "No changes: nothing to approve", title)
	})
}

var acceptRE = regexp.MustCompile("`/dagctl apply prod --accept ([0-9a-f]+)`")

// A merge carries whatever the deploy branch holds. Files that changed since prod's last apply and that the
// approved PR did not change (here a direct push to main) were reviewed by nobody: the apply is refused, naming
// them, until an admin who reviewed them accepts exactly that content.
func TestApplyOnMergeRefusesContentNoApprovedPlanCovered(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		w := gateWorld(t, forge)
		first := w.PR(1, "first", "alice", viewModel("gate_a"))
		w.send(w.PREvent(vcs.PROpened, 1))
		w.review(1, first, "bob", vcs.ReviewApproved)
		merge1 := w.merge(1)
		w.send(w.PREvent(vcs.PRMerged, 1))
		applied := latestCheck(t, w, "dagctl/apply: prod", merge1, "apply:")
		require.Equal(t, vcs.StatusSuccess, applied.State, applied.Summary)

		// Someone pushes straight to main: prod is not applied from a push.
		w.Commit("main", viewModel("pushed_unreviewed"), "a direct push")
		w.Base = w.Head("main")

		second := w.PR(2, "second", "alice", viewModel("gate_c"))
		w.send(w.PREvent(vcs.PROpened, 2))
		w.review(2, second, "bob", vcs.ReviewApproved)
		merge2 := w.merge(2)
		w.send(w.PREvent(vcs.PRMerged, 2))

		refused := latestCheck(t, w, "dagctl/apply: prod", merge2, "apply:")
		assert.Equal(t, vcs.StatusFailure, refused.State)
		assert.Contains(t, refused.Title, "no approved plan covered")
		assert.Contains(t, w.shownText(refused, 2), "models/pushed_unreviewed.sql", "the unreviewed file is named")
		if w.Can(forgetest.StatusOutput) {
			assert.NotContains(t, refused.Summary, "models/gate_c.sql", "the approved change is not")
		}
		told := lastCommentContaining(w, 2, "--accept")
		require.NotEmpty(t, told, "the PR is told how to resolve it")
		m := acceptRE.FindStringSubmatch(told)
		require.Len(t, m, 2, told)

		// Only an admin may accept it.
		w.comment(2, "bob", "/dagctl apply prod --accept "+m[1])
		assert.Contains(t, w.LastComment(2), "only admins")
		w.comment(2, "carol", "/dagctl apply prod --accept 0123456789abcdef")
		assert.Equal(t, vcs.StatusFailure, latestCheck(t, w, "dagctl/apply: prod", w.Head("main"), "apply:").State, "another content hash accepts nothing")

		w.comment(2, "carol", "/dagctl apply prod --accept "+m[1])
		accepted := latestCheck(t, w, "dagctl/apply: prod", w.Head("main"), "apply:")
		assert.Equal(t, vcs.StatusSuccess, accepted.State, accepted.Summary)
	})
}

// A reviewed PR with nothing to apply (docs) moves the record of what prod holds, so the next apply is not
// refused for files someone already approved.
func TestAReviewedMergeWithNothingToApplyIsNotHeldAgainstTheNext(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		w := gateWorld(t, forge)
		mergeApproved := func(n int, branch string, files map[string]string) string {
			w.Base = w.Head("main")
			head := w.PR(n, branch, "alice", files)
			w.send(w.PREvent(vcs.PROpened, n))
			w.review(n, head, "bob", vcs.ReviewApproved)
			merge := w.merge(n)
			w.send(w.PREvent(vcs.PRMerged, n))
			return merge
		}
		first := mergeApproved(1, "first", viewModel("gate_a"))
		require.Equal(t, vcs.StatusSuccess, latestCheck(t, w, "dagctl/apply: prod", first, "apply:").State)
		mergeApproved(2, "docs", map[string]string{"docs/notes.md": "reviewed, nothing to apply\n"})
		third := mergeApproved(3, "third", viewModel("gate_c"))
		applied := latestCheck(t, w, "dagctl/apply: prod", third, "apply:")
		assert.Equal(t, vcs.StatusSuccess, applied.State, applied.Summary)
	})
}
