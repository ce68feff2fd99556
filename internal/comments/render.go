package comments

import (
	"fmt"
	"strings"

	"github.com/dagctl/dagctl-bot/internal/plan"
)

// Layout choices, for a reviewer who reads the comment in ten seconds: the state and the facts that matter
// (breaking changes, removals, restatements, backfill size) come first, in one line per environment; model
// lists follow, collapsed when long; diffs, the backfill table and the tool's explanation are collapsed.
const (
	openListMax  = 10 // a change group with more models than this is collapsed
	childrenMax  = 5  // downstream models named next to a direct change; all are under "Indirectly modified"
	intervalsMax = 3  // intervals shown per backfilled model
	diffGroupMin = 6  // from this many diffs on, they go into one more collapsed block
	// commentErrorLines is how much of an error the sticky comment shows: its end, where tools put the cause.
	commentErrorLines = 40
	shortSHALen       = 7
)

// Comment renders the sticky comment of a pull request as one or more bodies of at most limit characters
// (Unicode code points) each: GitHubCommentLimit or GitLabNoteLimit, or less to keep a margin. The first body
// starts with Marker, body n with PartMarker(n). Long output is split between blocks, never inside a code
// block or a <details> block (they are closed and reopened); a code block bigger than a whole body is cut
// with a pointer to the full log, and so is everything past MaxParts bodies. limit must be at least
// MinCommentLimit.
func Comment(v View, limit int) []string { return comment(v, limit, MaxParts) }

func comment(v View, limit, maxParts int) []string {
	if limit < MinCommentLimit {
		panic(fmt.Sprintf("comments: limit %d is below MinCommentLimit (%d)", limit, MinCommentLimit))
	}
	d := &doc{}
	renderView(d, v)
	sha := code(shortSHA(v.HeadSHA), 40)
	return paginate(d, pageOptions{
		limit:    limit,
		size:     runeCount,
		maxParts: maxParts,
		header: func(part int) string {
			if part == 1 {
				return Marker + "\n"
			}
			return PartMarker(part) + "\n**dagctl** · " + sha + " · continued (part " + fmt.Sprint(part) + ")\n\n"
		},
		continued: "\n_Continued in the next comment._\n",
		truncated: func(logURL string) string {
			return "\n> ✂️ **Truncated:** this plan is too big to show in full here. The rest is in the " +
				link("full log", logURL) + ".\n"
		},
	})
}

func shortSHA(sha string) string {
	if len(sha) > shortSHALen {
		return sha[:shortSHALen]
	}
	return sha
}

func renderView(d *doc, v View) {
	title := "**dagctl**"
	if v.HeadSHA != "" {
		title += " · " + code(shortSHA(v.HeadSHA), 40)
	}
	d.text(title + "\n\n")
	for _, n := range v.Notes {
		d.text("> ℹ️ " + prose(n, maxLineRunes) + "\n\n")
	}
	if len(v.Sections) == 0 {
		if len(v.Notes) == 0 {
			d.text("_Nothing to plan in this pull request._\n")
		}
		return
	}
	if len(v.Sections) > 1 {
		renderOverview(d, v.Sections)
	}
	shownDiffs := map[string]string{} // project + model + diff → the section that shows it
	for _, s := range v.Sections {
		d.open("### "+code(s.name(), maxNameRunes)+" · "+s.stateLabel()+"\n\n", "",
			"### "+code(s.name(), maxNameRunes)+" (continued)\n\n", s.LogURL)
		renderSectionSummary(d, s, commentErrorLines)
		renderSectionDetails(d, s, shownDiffs)
		d.close()
	}
}

func renderOverview(d *doc, sections []Section) {
	d.table("| Environment | Status | Changes | Backfill | Log |\n|---|---|---|---|---|\n")
	for _, s := range sections {
		logCell := "—"
		if safeURL(s.LogURL) != "" {
			logCell = link("log", s.LogURL)
		}
		d.text("| " + cellCode(s.name(), maxNameRunes) + " | " + s.stateLabel() + " | " + changesCell(s.Summary) +
			" | " + backfillCell(s.Summary) + " | " + logCell + " |\n")
	}
	d.close()
	d.text("\n")
}

// stateLabel is the emoji and words for a section's state.
func (s Section) stateLabel() string {
	switch {
	case prBuilt(s):
		return "✅ Built"
	case prBuildOf(s) != nil && s.State == StatePlanFailed:
		return "❌ PR build failed"
	}
	switch s.State {
	case StateQueued:
		return "🕒 Queued"
	case StatePlanning:
		return "⏳ Planning…"
	case StatePlanned:
		switch {
		case informational(s):
			return "ℹ️ Not a deploy"
		case s.Summary != nil && len(s.Summary.Uncategorized()) > 0:
			return "❓ Action required"
		case !s.Approval.Satisfied():
			return "✋ Waiting for approval"
		case s.ApplyByComment || s.ApplyOnMerge:
			return "🟢 Ready to apply"
		}
		return "📋 Planned"
	case StateNoChanges:
		if informational(s) {
			return "ℹ️ Not a deploy"
		}
		return "✅ No changes"
	case StatePlanFailed:
		return "❌ Plan failed"
	case StateCancelled:
		return "🚫 Cancelled"
	case StateStale:
		return "💤 Outdated"
	case StateApplying:
		return "🚀 Applying…"
	case StateApplied:
		return "✅ Applied"
	case StateApplyFailed:
		return "❌ Apply failed"
	}
	return text(string(s.State), maxNameRunes)
}

// changesCell sums a plan up in a few words for the overview table.
func changesCell(sum *plan.Summary) string {
	if sum == nil {
		return "—"
	}
	if sum.DBT != nil {
		return dbtChangesCell(sum.DBT)
	}
	if !sum.HasChanges() {
		return "none"
	}
	var parts []string
	if n := len(sum.Uncategorized()); n > 0 {
		parts = append(parts, "❓ "+formatCount(n)+" uncategorized")
	}
	if n := countCategory(sum.DirectlyModified, plan.Breaking); n > 0 {
		parts = append(parts, "⚠️ "+formatCount(n)+" breaking")
	}
	if n := len(sum.Removed); n > 0 {
		parts = append(parts, formatCount(n)+" removed")
	}
	if n := modelCount(sum); n > 0 {
		parts = append(parts, formatCount(n)+" "+plural(n, "model")+" changed")
	}
	if sum.CreatesEnvironment {
		parts = append(parts, "new environment")
	}
	if len(parts) == 0 {
		return "data only"
	}
	return strings.Join(parts, " · ")
}

func backfillCell(sum *plan.Summary) string {
	if sum == nil || len(sum.Backfills) == 0 {
		return "—"
	}
	cell := formatCount(len(sum.Backfills)) + " " + plural(len(sum.Backfills), "model")
	if n := len(restatedSet(sum)); n > 0 {
		cell += " (" + formatCount(n) + " restated)"
	}
	return cell
}

func modelCount(sum *plan.Summary) int {
	return len(sum.Added) + len(sum.Removed) + len(sum.DirectlyModified) + len(sum.IndirectlyModified) +
		len(sum.MetadataUpdated)
}

func countCategory(changes []plan.Change, c plan.Category) int {
	n := 0
	for _, ch := range changes {
		if ch.Category == c {
			n++
		}
	}
	return n
}

func restatedSet(sum *plan.Summary) map[string]bool {
	set := map[string]bool{}
	for _, m := range sum.Restated {
		set[m] = true
	}
	for _, b := range sum.Backfills {
		if b.Restatement {
			set[b.Model] = true
		}
	}
	return set
}
