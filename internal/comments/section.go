package comments

import (
	"sort"
	"strings"

	"github.com/dagctl/dagctl-bot/internal/command"
	"github.com/dagctl/dagctl-bot/internal/plan"
)

// The parts of one section, shared by the sticky comment and the check-run output.

// renderSectionSummary writes what a reviewer needs first, in blocks that are never split: the facts, the
// counts and the error, then the next step, who planned and approved, and the note. errorLines caps the error
// shown (its end is kept); 0 shows all that fits.
func renderSectionSummary(d *doc, s Section, errorLines int) {
	var b strings.Builder
	line := func(l string) {
		if l != "" {
			b.WriteString(l + "\n\n")
		}
	}
	sum := s.Summary
	switch s.State {
	case StateQueued, StatePlanning:
		line("_The plan is running; this comment is updated when it finishes._")
	case StateStale:
		line("_A newer commit was pushed: this plan is for an older one and cannot be applied._")
		sum = nil
	case StateCancelled:
		line("_Cancelled before it finished._")
	}
	if sum != nil && sum.DBT != nil {
		if b.Len() > 0 {
			d.text(b.String())
			b.Reset()
		}
		renderDBTSummary(d, s, sum.DBT)
	} else if sum != nil {
		if sum.HasChanges() {
			line(strings.Join(headline(s, sum), " · "))
			line(countsTable(sum))
		} else {
			line(code(s.Environment, maxNameRunes) + " already matches this commit: nothing to apply.")
		}
	}
	if b.Len() > 0 {
		d.text(b.String())
		b.Reset()
	}
	if s.Error != "" {
		d.codeBlock(block{lang: "text", text: strings.TrimRight(s.Error, "\n"), logURL: s.LogURL, keepTail: true,
			maxLines: errorLines})
		d.text("\n")
	}
	if next := nextStep(s); next != "" {
		line("**Next:** " + next)
	}
	line(byLine(s))
	if s.Note != "" {
		line("> ℹ️ " + prose(s.Note, maxLineRunes))
	}
	if b.Len() > 0 {
		d.text(b.String())
	}
}

// headline lists the facts that matter most, most important first.
func headline(s Section, sum *plan.Summary) []string {
	var facts []string
	if n := len(sum.Uncategorized()); n > 0 {
		facts = append(facts, "❓ **"+formatCount(n)+" "+plural(n, "change")+" without a category**")
	}
	breaking := countCategory(sum.DirectlyModified, plan.Breaking)
	if breaking > 0 {
		f := "⚠️ **" + formatCount(breaking) + " breaking " + plural(breaking, "change") + "**"
		if n := countCategory(sum.IndirectlyModified, plan.IndirectBreaking); n > 0 {
			f += " (" + formatCount(n) + " downstream " + plural(n, "model") + " rebuilt)"
		}
		facts = append(facts, f)
	}
	if n := len(sum.Removed); n > 0 {
		facts = append(facts, "🗑️ **"+formatCount(n)+" "+plural(n, "model")+" removed**")
	}
	if n := len(restatedSet(sum)); n > 0 {
		facts = append(facts, "♻️ **"+formatCount(n)+" "+plural(n, "model")+" restated**")
	}
	if sum.CreatesEnvironment {
		env := sum.Environment
		if env == "" {
			env = s.Environment
		}
		f := "🆕 New environment " + code(env, maxNameRunes)
		if sum.CreateFrom != "" {
			f += " from " + code(sum.CreateFrom, maxNameRunes)
		}
		facts = append(facts, f)
	}
	if sum.ForwardOnly {
		facts = append(facts, "⏩ Forward-only: existing data is kept")
	}
	// A framework without categories (dbt) cannot tell breaking from non-breaking: claim nothing for it.
	if breaking == 0 && len(sum.Removed) == 0 && len(sum.Uncategorized()) == 0 && len(sum.DirectlyModified) > 0 && sum.Categorized() {
		facts = append(facts, "No breaking changes")
	}
	facts = append(facts, backfillFact(sum))
	return facts
}

var backfillWords = []struct {
	kind plan.BackfillKind
	word string
}{
	{plan.BackfillFullRefresh, "full refresh"},
	{plan.BackfillIntervals, "incremental"},
	{plan.BackfillPreview, "preview"},
	{plan.BackfillRecreateView, "view"},
}

func backfillFact(sum *plan.Summary) string {
	if len(sum.Backfills) == 0 {
		return "No backfill"
	}
	byKind := map[plan.BackfillKind]int{}
	for _, b := range sum.Backfills {
		byKind[b.Kind]++
	}
	var kinds []string
	for _, w := range backfillWords {
		if n := byKind[w.kind]; n > 0 {
			kinds = append(kinds, formatCount(n)+" "+w.word)
			delete(byKind, w.kind)
		}
	}
	var other []string // kinds this version does not know, shown as they are
	for k, n := range byKind {
		other = append(other, formatCount(n)+" "+text(string(k), maxNameRunes))
	}
	sort.Strings(other)
	kinds = append(kinds, other...)
	f := "**Backfill: " + formatCount(len(sum.Backfills)) + " " + plural(len(sum.Backfills), "model") + "** (" +
		strings.Join(kinds, ", ") + ")"
	if sum.Start != "" || sum.End != "" {
		f += " · " + text(orDash(sum.Start), maxNameRunes) + " → " + text(orDash(sum.End), maxNameRunes)
	}
	return f
}

func orDash(s string) string {
	if s == "" {
		return "…"
	}
	return s
}

func countsTable(sum *plan.Summary) string {
	return "| Added | Removed | Directly modified | Indirectly modified | Backfill |\n" +
		"|---:|---:|---:|---:|---:|\n" +
		"| " + formatCount(len(sum.Added)) + " | " + formatCount(len(sum.Removed)) + " | " +
		formatCount(len(sum.DirectlyModified)) + " | " + formatCount(len(sum.IndirectlyModified)) + " | " +
		formatCount(len(sum.Backfills)) + " |"
}

// nextStep says what a user does next, naming the command.
func nextStep(s Section) string {
	applyCmd := code(command.Prefix+" "+string(command.Apply)+" "+s.Environment, maxNameRunes)
	planCmd := code(command.Prefix+" "+string(command.Plan)+" "+s.Environment, maxNameRunes)
	switch s.State {
	case StatePlanned:
		if informational(s) {
			return notADeploy + " (the project's " + code("version", 20) + " in " + code(".dagctl/config.yaml", 40) +
				"), then push."
		}
		if s.Summary != nil {
			if un := s.Summary.Uncategorized(); len(un) > 0 {
				tool := "The tool"
				if s.Summary.Tool != "" {
					tool = text(s.Summary.Tool, maxNameRunes)
				}
				return tool + " could not tell whether " + modelList(un, childrenMax) + " " +
					pluralVerb(len(un)) + " breaking, so this plan cannot be applied. Categorize the " +
					plural(len(un), "change") + " (sqlmesh's " + code("plan.auto_categorize_changes", 40) +
					" setting) and push, or comment " + code(command.Prefix+" "+string(command.Plan)+" "+
					s.Environment+" --forward-only", maxNameRunes) + "."
			}
		}
		var how string
		switch {
		case s.ApplyByComment && s.ApplyOnMerge:
			how = "comment " + applyCmd + " to apply now, or merge the PR"
		case s.ApplyByComment:
			how = "comment " + applyCmd + " to apply"
		case s.ApplyOnMerge:
			how = "merge the PR to apply"
		}
		if !s.Approval.Satisfied() {
			needs := make([]string, len(s.Approval.Missing))
			for i, m := range s.Approval.Missing {
				needs[i] = prose(m, maxLineRunes)
			}
			if how == "" {
				return "needs " + strings.Join(needs, "; ") + "."
			}
			return "needs " + strings.Join(needs, "; ") + ", then " + how + "."
		}
		if how == "" {
			return ""
		}
		return how + "."
	case StateNoChanges:
		if informational(s) {
			return notADeploy + " (the project's " + code("version", 20) + " in " + code(".dagctl/config.yaml", 40) +
				"), then push."
		}
	case StatePlanFailed:
		return "fix the error and push, or comment " + planCmd + " to try again."
	case StateApplyFailed:
		if s.ApplyByComment {
			return "the log shows what was applied; comment " + applyCmd + " to try again."
		}
		return "the log shows what was applied."
	case StateCancelled:
		return "comment " + planCmd + " to plan again."
	}
	return ""
}

func pluralVerb(n int) string {
	if n == 1 {
		return "is"
	}
	return "are"
}

// modelList names up to max models as code, then how many more.
func modelList(models []string, limit int) string {
	var names []string
	for i, m := range models {
		if i == limit {
			names = append(names, "and "+formatCount(len(models)-limit)+" more")
			break
		}
		names = append(names, code(m, maxNameRunes))
	}
	return strings.Join(names, ", ")
}

// byLine names who planned and approved, and links the log.
func byLine(s Section) string {
	var parts []string
	if s.TriggeredBy != "" {
		verb := "Planned by "
		if s.State == StateQueued || s.State == StatePlanning {
			verb = "Started by "
		}
		parts = append(parts, verb+text(s.TriggeredBy, maxUserRunes))
	}
	if len(s.Approval.ApprovedBy) > 0 {
		users := make([]string, len(s.Approval.ApprovedBy))
		for i, u := range s.Approval.ApprovedBy {
			users[i] = text(u, maxUserRunes)
		}
		parts = append(parts, "approved by "+strings.Join(users, ", "))
	}
	if safeURL(s.LogURL) != "" {
		parts = append(parts, link("full log", s.LogURL))
	}
	if len(parts) == 0 {
		return ""
	}
	l := strings.Join(parts, " · ")
	return strings.ToUpper(l[:1]) + l[1:]
}

// renderSectionDetails writes the model lists, the backfill table, the diffs and the explanation.
// shownDiffs (may be nil) remembers diffs already shown, so that the same change planned for several
// environments is shown once.
func renderSectionDetails(d *doc, s Section, shownDiffs map[string]string) {
	sum := s.Summary
	if dbt := dbtOf(s); dbt != nil {
		renderDBTDetails(d, s, dbt)
		renderDiffs(d, s, shownDiffs)
		return
	}
	if sum == nil || s.State == StateStale || !sum.HasChanges() {
		return
	}
	renderGroups(d, sum)
	renderBackfills(d, sum)
	renderDiffs(d, s, shownDiffs)
	if sum.Explain != "" {
		tool := sum.Tool
		if tool == "" {
			tool = "the tool"
		}
		d.details("What apply does (" + htmlText(tool, maxNameRunes) + " explain)")
		d.codeBlock(block{lang: "text", text: strings.TrimRight(sum.Explain, "\n"), logURL: s.LogURL})
		d.close()
	}
}

// severity orders direct changes: those needing attention first.
func severity(c plan.Category) int {
	switch c {
	case plan.Uncategorized, "":
		return 0
	case plan.Breaking:
		return 1
	case plan.ForwardOnly:
		return 2
	case plan.NonBreaking:
		return 3
	case plan.Metadata:
		return 4
	}
	return 5
}

func renderGroups(d *doc, sum *plan.Summary) {
	direct := append([]plan.Change(nil), sum.DirectlyModified...)
	sort.SliceStable(direct, func(i, j int) bool { return severity(direct[i].Category) < severity(direct[j].Category) })
	// sqlmesh gives added and removed models a category too (new snapshots count as breaking); it says nothing a
	// reviewer needs, so those groups show none.
	groups := []struct {
		title    string
		changes  []plan.Change
		direct   bool
		category bool
	}{
		{"Directly modified", direct, true, true},
		{"Removed", sum.Removed, false, false},
		{"Added", sum.Added, false, false},
		{"Indirectly modified", sum.IndirectlyModified, false, true},
		{"Metadata updated", sum.MetadataUpdated, false, true},
	}
	for _, g := range groups {
		if len(g.changes) == 0 {
			continue
		}
		title := g.title + " (" + formatCount(len(g.changes)) + ")"
		if len(g.changes) > openListMax {
			d.details("<b>" + title + "</b>")
		} else {
			d.open("**"+title+"**\n\n", "\n", "**"+g.title+" (continued)**\n\n", "")
		}
		for _, c := range g.changes {
			if !g.category {
				c.Category = ""
			}
			d.text(changeLine(c, g.direct))
		}
		d.close()
	}
}

func changeLine(c plan.Change, direct bool) string {
	cat := c.Category
	if direct && cat == "" {
		cat = plan.Uncategorized
	}
	var b strings.Builder
	b.WriteString("- ")
	switch cat {
	case plan.Breaking:
		b.WriteString("⚠️ ")
	case plan.Uncategorized:
		b.WriteString("❓ ")
	}
	b.WriteString(code(c.Model, maxNameRunes))
	var attrs []string
	switch cat {
	case "", plan.NoCategory:
	case plan.Breaking, plan.Uncategorized:
		attrs = append(attrs, "**"+cat.Label()+"**")
	default:
		attrs = append(attrs, text(cat.Label(), maxNameRunes))
	}
	if c.Kind != "" {
		attrs = append(attrs, text(c.Kind, maxNameRunes))
	}
	if len(attrs) > 0 {
		b.WriteString(" — " + strings.Join(attrs, " · "))
	}
	if len(c.Children) > 0 {
		b.WriteString(" → " + formatCount(len(c.Children)) + " downstream: " + modelList(c.Children, childrenMax))
	}
	b.WriteString("\n")
	return b.String()
}

var backfillLabels = map[plan.BackfillKind]string{
	plan.BackfillIntervals:    "Intervals",
	plan.BackfillFullRefresh:  "Full refresh",
	plan.BackfillRecreateView: "Recreate view (no data)",
	plan.BackfillPreview:      "Preview (dev only)",
}

func renderBackfills(d *doc, sum *plan.Summary) {
	if len(sum.Backfills) == 0 {
		return
	}
	restated := restatedSet(sum)
	d.details("<b>Backfill (" + formatCount(len(sum.Backfills)) + " " + plural(len(sum.Backfills), "model") + ")</b>")
	d.table("| Model | Backfill | Intervals |\n|---|---|---|\n")
	for _, bf := range sum.Backfills {
		what, ok := backfillLabels[bf.Kind]
		if !ok {
			what = text(string(bf.Kind), maxNameRunes)
		}
		if restated[bf.Model] {
			what += " · ♻️ **restatement**"
		}
		d.text("| " + cellCode(bf.Model, maxNameRunes) + " | " + what + " | " + intervalsCell(bf.Intervals) + " |\n")
	}
	d.close()
	d.close()
}

func intervalsCell(intervals []plan.Interval) string {
	if len(intervals) == 0 {
		return "—"
	}
	var parts []string
	for i, iv := range intervals {
		if i == intervalsMax {
			parts = append(parts, "+"+formatCount(len(intervals)-intervalsMax)+" more")
			break
		}
		parts = append(parts, text(iv.Start, maxNameRunes)+" → "+text(iv.End, maxNameRunes))
	}
	return strings.Join(parts, ", ")
}

func renderDiffs(d *doc, s Section, shownDiffs map[string]string) {
	sum := s.Summary
	var withDiff []plan.Change
	for _, c := range sum.DirectlyModified {
		if strings.TrimSpace(c.Diff) != "" {
			withDiff = append(withDiff, c)
		}
	}
	if len(withDiff) == 0 {
		return
	}
	sort.SliceStable(withDiff, func(i, j int) bool {
		return severity(withDiff[i].Category) < severity(withDiff[j].Category)
	})
	grouped := len(withDiff) >= diffGroupMin
	if grouped {
		d.details("<b>Diffs (" + formatCount(len(withDiff)) + " models)</b>")
	}
	for _, c := range withDiff {
		key := s.Project + "\x00" + c.Model + "\x00" + c.Diff
		if where, ok := shownDiffs[key]; ok {
			d.text("- " + code(c.Model, maxNameRunes) + ": same diff as in " + code(where, maxNameRunes) + "\n\n")
			continue
		}
		if shownDiffs != nil {
			shownDiffs[key] = s.name()
		}
		cat := c.Category
		if cat == "" {
			cat = plan.Uncategorized
		}
		title := "Diff of " + htmlCode(c.Model, maxNameRunes)
		if cat != plan.NoCategory {
			title += " · " + htmlText(cat.Label(), maxNameRunes)
		}
		d.details(title)
		d.codeBlock(block{lang: "diff", text: strings.TrimRight(c.Diff, "\n"), logURL: s.LogURL})
		d.close()
	}
	if grouped {
		d.close()
	}
}
