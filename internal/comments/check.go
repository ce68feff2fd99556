package comments

import (
	"strings"

	"github.com/dagctl/dagctl-bot/internal/plan"
)

// Check-run conclusions, spelled as GitHub spells them; the forge adapters map them to their own (GitLab commit
// statuses have no neutral or action_required).
const (
	ConclusionSuccess        = "success"
	ConclusionNeutral        = "neutral"
	ConclusionFailure        = "failure"
	ConclusionCancelled      = "cancelled"
	ConclusionActionRequired = "action_required"
)

// Conclusion is how the check run of a section ends, or "" while it is still queued or in progress.
//
//   - action_required: the plan has changes sqlmesh could not categorise; someone has to decide.
//   - neutral: nothing to apply, or the plan was superseded by a newer commit.
//   - success: a plan with changes, ready to be approved and applied; or an apply that finished.
func Conclusion(s Section) string {
	if prBuilt(s) {
		return ConclusionSuccess // the PR's build passed: its check is what branch protection waits for
	}
	switch s.State {
	case StatePlanned:
		if s.Summary != nil && len(s.Summary.Uncategorized()) > 0 {
			return ConclusionActionRequired
		}
		if informational(s) {
			return ConclusionNeutral // nothing to apply: merging runs nothing
		}
		return ConclusionSuccess
	case StateApplied:
		return ConclusionSuccess
	case StateNoChanges, StateStale:
		return ConclusionNeutral
	case StatePlanFailed, StateApplyFailed:
		return ConclusionFailure
	case StateCancelled:
		return ConclusionCancelled
	}
	return ""
}

// CheckOutput renders the check-run output of one section: a one-line title, a summary (state, facts, counts,
// next step, model lists, backfill table, error) and a text (diffs and the tool's explanation). summary and
// text are each at most CheckOutputLimit bytes; what does not fit is cut with a pointer to the full log.
func CheckOutput(s Section) (title, summary, text string) {
	title = checkTitle(s)

	sd := &doc{}
	sd.open("", "", "", s.LogURL)
	renderSectionSummary(sd, s, 0)
	if dbt := dbtOf(s); dbt != nil {
		renderDBTDetails(sd, s, dbt)
	} else if sum := s.Summary; sum != nil && s.State != StateStale && sum.HasChanges() {
		renderGroups(sd, sum)
		renderBackfills(sd, sum)
	}
	sd.close()
	summary = checkPage(sd)

	td := &doc{}
	td.open("", "", "", s.LogURL)
	if sum := s.Summary; sum != nil && s.State != StateStale && sum.HasChanges() {
		renderDiffs(td, s, nil)
		if sum.Explain != "" {
			td.text("**What apply does**\n\n")
			td.codeBlock(block{lang: "text", text: strings.TrimRight(sum.Explain, "\n"), logURL: s.LogURL})
		}
	}
	td.close()
	text = checkPage(td)
	return title, summary, text
}

func checkPage(d *doc) string {
	parts := paginate(d, pageOptions{
		limit:    CheckOutputLimit,
		size:     byteCount,
		maxParts: 1,
		header:   func(int) string { return "" },
		truncated: func(logURL string) string {
			return "\n> ✂️ **Truncated:** the rest is in the " + link("full log", logURL) + ".\n"
		},
	})
	return strings.TrimSpace(parts[0])
}

// checkTitle is the check run's one-line title: plain text, not markdown.
func checkTitle(s Section) string {
	if prBuildOf(s) != nil && (prBuilt(s) || s.State == StatePlanFailed) {
		return prBuildTitle(s)
	}
	switch s.State {
	case StateQueued:
		return "Queued"
	case StatePlanning:
		return "Planning…"
	case StateNoChanges:
		if informational(s) {
			return "Not a deploy: bump the version to deploy"
		}
		return "No changes"
	case StatePlanFailed:
		return "Plan failed"
	case StateCancelled:
		return "Cancelled"
	case StateStale:
		return "Outdated: a newer commit was pushed"
	case StateApplying:
		return "Applying…"
	case StateApplyFailed:
		return "Apply failed"
	case StateApplied:
		return "Applied" + titleFacts(s)
	case StatePlanned:
		switch {
		case informational(s):
			return "Not a deploy: bump the version to deploy"
		case s.Summary != nil && len(s.Summary.Uncategorized()) > 0:
			return "Action required" + titleFacts(s)
		case !s.Approval.Satisfied():
			return "Waiting for approval" + titleFacts(s)
		}
		return "Ready" + titleFacts(s)
	}
	return oneLine(string(s.State), maxNameRunes)
}

func titleFacts(s Section) string {
	sum := s.Summary
	if sum == nil {
		return ""
	}
	if sum.DBT != nil {
		return dbtTitleFacts(sum.DBT)
	}
	var facts []string
	if n := len(sum.Uncategorized()); n > 0 {
		facts = append(facts, formatCount(n)+" uncategorized")
	}
	if n := countCategory(sum.DirectlyModified, plan.Breaking); n > 0 {
		facts = append(facts, formatCount(n)+" breaking")
	}
	if n := len(sum.Removed); n > 0 {
		facts = append(facts, formatCount(n)+" removed")
	}
	if n := modelCount(sum); n > 0 {
		facts = append(facts, formatCount(n)+" "+plural(n, "model")+" changed")
	}
	if n := len(sum.Backfills); n > 0 {
		facts = append(facts, formatCount(n)+" to backfill")
	}
	if len(facts) == 0 {
		return ""
	}
	return ": " + strings.Join(facts, ", ")
}
