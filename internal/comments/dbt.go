package comments

import (
	"strings"

	"github.com/dagctl/dagctl-bot/internal/plan"
)

// The dbt view of a section (Summary.DBT set): the same sticky comment and checks as sqlmesh's, but what a
// dbt reviewer needs instead of categories and backfills: whether this is a deploy at all, the scope (both
// rules' when they disagree, and which decides), the changed files by type, the changed nodes with their
// reasons (removed ones flagged), the downstream, and the exact commands the apply runs. dbt has no
// categories, so nothing here says "breaking" or "uncategorized".

// notADeploy is what an informational dbt plan says, wherever its state is shown.
const notADeploy = "not a deploy: bump the version to deploy"

func dbtOf(s Section) *plan.DBT {
	if s.Summary == nil || s.State == StateStale {
		return nil
	}
	return s.Summary.DBT
}

// informational reports whether a planned dbt section is no deploy (merging or applying it runs nothing). Such
// a plan ends as no-changes (plan.Summary.HasChanges); a stored one may say planned. A PR build is not
// informational: it built the PR's schema.
func informational(s Section) bool {
	d := dbtOf(s)
	return d != nil && d.PRBuild == nil && !d.Deploy && (s.State == StatePlanned || s.State == StateNoChanges)
}

// prBuildOf is the section's PR build (pr_environment), nil for any other section.
func prBuildOf(s Section) *plan.PRBuild {
	if d := dbtOf(s); d != nil {
		return d.PRBuild
	}
	return nil
}

// prBuilt reports whether the section is a PR build that ran to its end without a failure.
func prBuilt(s Section) bool {
	return prBuildOf(s) != nil && (s.State == StateNoChanges || s.State == StatePlanned)
}

// prBuildTitle is a PR build's check title: what it built and how it went.
func prBuildTitle(s Section) string {
	b := prBuildOf(s)
	built, passed, failed, skipped := b.Counts()
	if s.State == StatePlanFailed {
		return oneLine("PR build failed: "+formatCount(failed)+" of "+formatCount(built)+" "+plural(built, "node")+
			" failed, "+formatCount(skipped)+" skipped", maxLineRunes)
	}
	if built == 0 {
		return oneLine("PR build: nothing to build into "+b.Schema, maxLineRunes)
	}
	return oneLine("PR build passed: "+formatCount(passed)+" "+plural(passed, "node")+" into "+b.Schema, maxLineRunes)
}

// prBuildLines are a PR build's facts, most important first.
func prBuildLines(b *plan.PRBuild) []string {
	built, passed, failed, skipped := b.Counts()
	head := "🏗️ **PR build** into " + code(b.Schema, maxNameRunes)
	if b.Target != "" {
		head += " (target " + code(b.Target, maxNameRunes) + ")"
	}
	how := "built `state:modified+`, the rest deferred to production"
	if !b.Deferred {
		how = "no production state to defer to, so every node was built"
	}
	lines := []string{head + " · " + how,
		formatCount(built) + " " + plural(built, "node") + " built · " + formatCount(passed) + " passed · " +
			formatCount(failed) + " failed · " + formatCount(skipped) + " skipped"}
	if n := len(b.Outside); n > 0 {
		lines = append(lines, "⚠️ "+formatCount(n)+" "+plural(n, "node")+" left out, as writing outside the PR's schema (below).")
	}
	return append(lines, "_The schema is dropped when the PR is closed or merged. Nothing of this PR is deployed from it._")
}

// renderPRBuildDetails writes the nodes the PR build ran, failures first, and those it left out.
func renderPRBuildDetails(d *doc, b *plan.PRBuild) {
	if len(b.Nodes) > 0 {
		var failed, rest []plan.BuiltNode
		for _, n := range b.Nodes {
			if n.Failed() {
				failed = append(failed, n)
			} else {
				rest = append(rest, n)
			}
		}
		d.details("<b>Built nodes (" + formatCount(len(b.Nodes)) + ")</b>")
		d.table("| Node | Type | Status |\n|---|---|---|\n")
		for _, n := range append(failed, rest...) {
			status := text(n.Status, maxNameRunes)
			if n.Failed() {
				status = "❌ **" + status + "**"
			}
			d.text("| " + cellCode(n.UniqueID, maxNameRunes) + " | " + text(n.ResourceType, maxNameRunes) + " | " + status + " |\n")
		}
		d.close()
		d.close()
	}
	if len(b.Outside) > 0 {
		d.details("<b>Left out (" + formatCount(len(b.Outside)) + ")</b> · outside the PR's schema")
		for _, n := range b.Outside {
			d.text("- " + code(n.UniqueID, maxNameRunes) + " — " + text(n.Message, maxLineRunes) + "\n")
		}
		d.close()
	}
}

// dbtSummaryLines are the facts of a dbt plan, most important first.
func dbtSummaryLines(s Section, d *plan.DBT) []string {
	var lines []string
	version := "version " + code(orDash(d.Version), maxNameRunes)
	if !d.Deploy {
		was := "as at the base commit"
		if d.Version == "" {
			was = "the project has none yet"
		}
		lines = append(lines, "ℹ️ **Not a deploy** · "+version+", "+was+": merging this PR runs nothing.")
	}
	var facts []string
	switch {
	case d.Deploy && d.PreviousVersion == "":
		facts = append(facts, "🆕 **First deploy** · "+version)
	case d.Deploy:
		facts = append(facts, "🚀 **Deploy** "+code(d.PreviousVersion, maxNameRunes)+" → "+code(d.Version, maxNameRunes))
	}
	if d.Deploy {
		facts = append(facts, "**Scope: "+code(string(d.Scope), maxNameRunes)+"**")
	} else if d.FileScope != "" && d.FileScope != plan.ScopeNone {
		facts = append(facts, "A deploy of these changes would be "+code(string(wouldBe(d)), maxNameRunes))
	}
	if n := len(d.Removed()); n > 0 {
		facts = append(facts, "🗑️ **"+formatCount(n)+" "+plural(n, "node")+" removed**")
	}
	if n := len(d.Nodes) - len(d.Removed()); n > 0 {
		facts = append(facts, formatCount(n)+" "+plural(n, "node")+" changed")
	}
	if n := len(d.Downstream); n > 0 {
		facts = append(facts, formatCount(n)+" downstream")
	}
	if len(facts) > 0 {
		lines = append(lines, strings.Join(facts, " · "))
	}
	if d.Disagree() {
		lines = append(lines, "| Rule | Scope |\n|---|---|\n"+
			"| "+ruleCell("dbt's manifest diff", d.DecidedBy == "manifest")+" | "+cellCode(string(d.ManifestScope), maxNameRunes)+" |\n"+
			"| "+ruleCell("changed files", d.DecidedBy == "files")+" | "+cellCode(string(d.FileScope), maxNameRunes)+" |")
	}
	if d.Deploy && d.ScopeReason != "" {
		lines = append(lines, "_Why this scope: "+prose(d.ScopeReason, maxLineRunes)+"._")
	}
	if d.Deploy {
		lines = append(lines, applyRunsLine(d))
	}
	return lines
}

// wouldBe is the scope a deploy of an informational plan's changes would have, by the rule that decides.
func wouldBe(d *plan.DBT) plan.Scope {
	if d.DecidedBy == "manifest" && d.ManifestScope != "" {
		return d.ManifestScope
	}
	return d.FileScope
}

func ruleCell(name string, decides bool) string {
	if decides {
		return "**" + name + "** (decides)"
	}
	return name
}

func applyRunsLine(d *plan.DBT) string {
	image := ""
	if d.ImageRepository != "" {
		image = "builds the image (" + cellCode(d.ImageRepository, maxNameRunes) + ")"
	}
	switch {
	case d.Scope == plan.ScopeBuildOnly && image != "":
		return "**Apply:** " + image + "; no dbt command runs."
	case d.Scope == plan.ScopeBuildOnly:
		return "**Apply:** no image repository configured: nothing to build, and no dbt command runs."
	case d.Scope == plan.ScopeNone || len(d.Commands) == 0:
		return "**Apply:** nothing to run: no file of the project changed since the last deploy."
	case image != "":
		return "**Apply:** " + image + ", then runs:"
	}
	return "**Apply:** no image repository configured: runs in the checkout:"
}

// renderDBTSummary writes the facts and, for a deploy that runs dbt, the commands.
func renderDBTSummary(d *doc, s Section, dbt *plan.DBT) {
	var b strings.Builder
	if dbt.PRBuild != nil {
		for _, l := range prBuildLines(dbt.PRBuild) {
			b.WriteString(l + "\n\n")
		}
		d.text(b.String())
		return
	}
	for _, l := range dbtSummaryLines(s, dbt) {
		b.WriteString(l + "\n\n")
	}
	d.text(b.String())
	if dbt.Deploy && len(dbt.Commands) > 0 && dbt.Scope != plan.ScopeBuildOnly && dbt.Scope != plan.ScopeNone {
		d.codeBlock(block{lang: "sh", text: strings.Join(dbt.Commands, "\n"), logURL: s.LogURL})
		d.text("\n")
	}
}

// renderDBTDetails writes the changed nodes, the downstream and the changed files.
func renderDBTDetails(d *doc, s Section, dbt *plan.DBT) {
	if dbt.PRBuild != nil {
		renderPRBuildDetails(d, dbt.PRBuild)
	}
	if len(dbt.Nodes) > 0 {
		title := "Changed nodes (" + formatCount(len(dbt.Nodes)) + ")"
		if len(dbt.Nodes) > openListMax {
			d.details("<b>" + title + "</b>")
		} else {
			d.open("**"+title+"**\n\n", "\n", "**Changed nodes (continued)**\n\n", "")
		}
		for _, n := range orderedNodes(dbt.Nodes) {
			d.text(nodeLine(n))
		}
		d.close()
	}
	if len(dbt.Downstream) > 0 {
		d.details("<b>Downstream (" + formatCount(len(dbt.Downstream)) + ")</b> · built with the changed nodes")
		for _, id := range dbt.Downstream {
			d.text("- " + code(id, maxNameRunes) + "\n")
		}
		d.close()
	}
	if len(dbt.Files) > 0 {
		title := "Changed files (" + formatCount(len(dbt.Files)) + ": " + htmlText(fileCounts(dbt.Files), maxLineRunes) + ")"
		d.details("<b>" + title + "</b>")
		d.table("| File | Type | Change |\n|---|---|---|\n")
		for _, f := range dbt.Files {
			d.text("| " + cellCode(f.Path, maxNameRunes) + " | " + text(string(f.Type), maxNameRunes) + " | " +
				text(f.Change, maxNameRunes) + " |\n")
		}
		d.close()
		d.close()
	}
}

// fileTypeOrder is how changed files are counted in the title: what decides the scope first.
var fileTypeOrder = []plan.FileType{plan.FileModel, plan.FileMacro, plan.FileProperties, plan.FileSeed,
	plan.FileSnapshot, plan.FileTest, plan.FileAnalysis, plan.FileDocs, plan.FileProject, plan.FilePackages,
	plan.FileInfra, plan.FileOther}

func fileCounts(files []plan.FileChange) string {
	byType := map[plan.FileType]int{}
	for _, f := range files {
		byType[f.Type]++
	}
	var parts []string
	for _, t := range fileTypeOrder {
		if n := byType[t]; n > 0 {
			parts = append(parts, formatCount(n)+" "+string(t))
			delete(byType, t)
		}
	}
	for t, n := range byType { // a type this version does not know: still counted
		parts = append(parts, formatCount(n)+" "+string(t))
	}
	return strings.Join(parts, ", ")
}

// orderedNodes puts removed nodes first: they need a reviewer's eye (state:modified never selects them).
func orderedNodes(nodes []plan.Node) []plan.Node {
	var removed, rest []plan.Node
	for _, n := range nodes {
		if isRemoved(n) {
			removed = append(removed, n)
		} else {
			rest = append(rest, n)
		}
	}
	return append(removed, rest...)
}

func isRemoved(n plan.Node) bool {
	for _, r := range n.Reasons {
		if r == plan.ReasonRemoved {
			return true
		}
	}
	return false
}

func nodeLine(n plan.Node) string {
	var b strings.Builder
	b.WriteString("- ")
	id := n.UniqueID
	if id == "" {
		id = n.Name
	}
	if isRemoved(n) {
		b.WriteString("🗑️ ")
	}
	b.WriteString(code(id, maxNameRunes))
	var attrs []string
	if n.ResourceType != "" {
		attrs = append(attrs, text(n.ResourceType, maxNameRunes))
	}
	var reasons []string
	for _, r := range n.Reasons {
		if r == plan.ReasonRemoved {
			reasons = append(reasons, "**removed**")
		} else {
			reasons = append(reasons, text(string(r), maxNameRunes))
		}
	}
	if len(reasons) > 0 {
		attrs = append(attrs, strings.Join(reasons, ", "))
	}
	if len(attrs) > 0 {
		b.WriteString(" — " + strings.Join(attrs, " · "))
	}
	if n.Path != "" {
		b.WriteString(" (" + code(n.Path, maxNameRunes) + ")")
	}
	b.WriteString("\n")
	return b.String()
}

// dbtTitleFacts are the check title's facts of a dbt plan.
func dbtTitleFacts(d *plan.DBT) string {
	var facts []string
	if d.Deploy {
		facts = append(facts, string(d.Scope))
	}
	if n := len(d.Removed()); n > 0 {
		facts = append(facts, formatCount(n)+" removed")
	}
	if n := len(d.Nodes) - len(d.Removed()); n > 0 {
		facts = append(facts, formatCount(n)+" "+plural(n, "node")+" changed")
	}
	if n := len(d.Downstream); n > 0 {
		facts = append(facts, formatCount(n)+" downstream")
	}
	if len(facts) == 0 {
		return ""
	}
	return ": " + oneLine(strings.Join(facts, ", "), maxNameRunes)
}

// dbtChangesCell sums a dbt plan up for the overview table.
func dbtChangesCell(d *plan.DBT) string {
	if b := d.PRBuild; b != nil {
		built, passed, failed, _ := b.Counts()
		cell := "PR build " + cellCode(b.Schema, maxNameRunes) + " · " + formatCount(passed) + " of " + formatCount(built) + " passed"
		if failed > 0 {
			cell += " · " + formatCount(failed) + " failed"
		}
		return cell
	}
	if !d.Deploy {
		return "not a deploy"
	}
	parts := []string{"scope " + cellCode(string(d.Scope), maxNameRunes)}
	if n := len(d.Removed()); n > 0 {
		parts = append(parts, formatCount(n)+" removed")
	}
	if n := len(d.Nodes) - len(d.Removed()); n > 0 {
		parts = append(parts, formatCount(n)+" "+plural(n, "node")+" changed")
	}
	return strings.Join(parts, " · ")
}
