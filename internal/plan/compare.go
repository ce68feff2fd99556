package plan

import (
	"fmt"
	"sort"
	"strings"
)

// ScopeDifferences compares the plan a reviewer approved with the plan made again just before applying, and
// returns each difference in words; none means the apply does what was approved.
//
// Compared: which models are added, removed, directly or indirectly modified or metadata-only, with their
// categories; and the backfill scope — which models are backfilled, how (intervals, full refresh, recreate view,
// preview), restatements, and where each model's intervals start. Less work than approved is not a difference:
// an interrupted apply that is resumed has fewer intervals left (or none for a model), and that is what resuming
// means. The end of a model's intervals may move later: time passes between approval and apply, and the
// intervals that became due meanwhile are part of the same change (sqlmesh would compute them on its next run
// anyway). Diffs and the explanation are not compared: the models and categories already say whether the
// definitions changed.
func ScopeDifferences(approved, now Summary) []string {
	var out []string
	groups := []struct {
		name string
		a, b []Change
	}{
		{"added", approved.Added, now.Added},
		{"removed", approved.Removed, now.Removed},
		{"directly modified", approved.DirectlyModified, now.DirectlyModified},
		{"indirectly modified", approved.IndirectlyModified, now.IndirectlyModified},
		{"metadata-only", approved.MetadataUpdated, now.MetadataUpdated},
	}
	for _, g := range groups {
		a, b := byModel(g.a), byModel(g.b)
		for _, m := range sortedKeys(a, b) {
			ca, inA := a[m]
			cb, inB := b[m]
			switch {
			case inA && !inB:
				out = append(out, fmt.Sprintf("`%s` is no longer %s", m, g.name))
			case !inA && inB:
				if cb.Category == "" || cb.Category == NoCategory {
					out = append(out, fmt.Sprintf("`%s` is now %s", m, g.name))
				} else {
					out = append(out, fmt.Sprintf("`%s` is now %s (%s)", m, g.name, cb.Category.Label()))
				}
			case ca.Category != cb.Category:
				out = append(out, fmt.Sprintf("`%s` (%s) changed category: %s → %s", m, g.name, ca.Category.Label(), cb.Category.Label()))
			}
		}
	}
	a, b := backfillsByModel(approved.Backfills), backfillsByModel(now.Backfills)
	for _, m := range sortedKeys(a, b) {
		ba, inA := a[m]
		bb, inB := b[m]
		switch {
		case inA && !inB:
			// Already computed (a resumed apply): less work than approved.
		case !inA && inB:
			out = append(out, fmt.Sprintf("`%s` is now backfilled (%s%s)", m, bb.Kind, describeIntervals(bb.Intervals)))
		case ba.Kind != bb.Kind:
			out = append(out, fmt.Sprintf("`%s` backfill changed: %s → %s", m, ba.Kind, bb.Kind))
		case ba.Restatement != bb.Restatement:
			out = append(out, fmt.Sprintf("`%s` restatement changed: %t → %t", m, ba.Restatement, bb.Restatement))
		case firstStart(bb.Intervals) < firstStart(ba.Intervals):
			out = append(out, fmt.Sprintf("`%s` backfill now starts at %s, before the approved %s", m, firstStart(bb.Intervals), firstStart(ba.Intervals)))
		}
	}
	if approved.CreatesEnvironment != now.CreatesEnvironment {
		out = append(out, fmt.Sprintf("creating the environment: %t → %t", approved.CreatesEnvironment, now.CreatesEnvironment))
	}
	return append(out, dbtScopeDifferences(approved.DBT, now.DBT)...)
}

// dbtScopeDifferences compares two dbt views (nil: none): whether they deploy, their scope, the exact commands,
// the changed nodes with their reasons, and the downstream they add (a node no longer downstream is less work).
func dbtScopeDifferences(approved, now *DBT) []string {
	switch {
	case approved == nil && now == nil:
		return nil
	case approved == nil:
		return []string{"the plan is now a dbt plan"}
	case now == nil:
		return []string{"the plan is no longer a dbt plan"}
	}
	var out []string
	if approved.Deploy != now.Deploy {
		out = append(out, fmt.Sprintf("deploy: %t → %t", approved.Deploy, now.Deploy))
	}
	if approved.Scope != now.Scope {
		out = append(out, fmt.Sprintf("the scope changed: `%s` → `%s`", approved.Scope, now.Scope))
	}
	if strings.Join(approved.Commands, "\n") != strings.Join(now.Commands, "\n") {
		out = append(out, fmt.Sprintf("the commands changed: `%s` → `%s`", strings.Join(approved.Commands, "; "), strings.Join(now.Commands, "; ")))
	}
	a, b := nodesByID(approved.Nodes), nodesByID(now.Nodes)
	for _, id := range sortedKeys(a, b) {
		na, inA := a[id]
		nb, inB := b[id]
		switch {
		case inA && !inB:
			out = append(out, fmt.Sprintf("`%s` is no longer changed", id))
		case !inA && inB:
			out = append(out, fmt.Sprintf("`%s` is now changed (%s)", id, reasons(nb)))
		case reasons(na) != reasons(nb):
			out = append(out, fmt.Sprintf("`%s` changed for other reasons: %s → %s", id, reasons(na), reasons(nb)))
		}
	}
	downstream := map[string]bool{}
	for _, id := range approved.Downstream {
		downstream[id] = true
	}
	for _, id := range now.Downstream {
		if !downstream[id] {
			out = append(out, fmt.Sprintf("`%s` is now built downstream", id))
		}
	}
	return out
}

func nodesByID(ns []Node) map[string]Node {
	m := make(map[string]Node, len(ns))
	for _, n := range ns {
		m[n.UniqueID] = n
	}
	return m
}

func reasons(n Node) string {
	words := make([]string, len(n.Reasons))
	for i, r := range n.Reasons {
		words[i] = string(r)
	}
	sort.Strings(words)
	return strings.Join(words, ", ")
}

func byModel(cs []Change) map[string]Change {
	m := make(map[string]Change, len(cs))
	for _, c := range cs {
		m[c.Model] = c
	}
	return m
}

func backfillsByModel(bs []Backfill) map[string]Backfill {
	m := make(map[string]Backfill, len(bs))
	for _, b := range bs {
		m[b.Model] = b
	}
	return m
}

func sortedKeys[V any](a, b map[string]V) []string {
	seen := map[string]bool{}
	var keys []string
	for _, m := range []map[string]V{a, b} {
		for k := range m {
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	sort.Strings(keys)
	return keys
}

func firstStart(is []Interval) string {
	if len(is) == 0 {
		return ""
	}
	start := is[0].Start
	for _, i := range is {
		if i.Start < start {
			start = i.Start
		}
	}
	return start
}

func describeIntervals(is []Interval) string {
	if len(is) == 0 {
		return ""
	}
	parts := make([]string, 0, len(is))
	for _, i := range is {
		parts = append(parts, i.Start+" → "+i.End)
	}
	return ": " + strings.Join(parts, ", ")
}

// SameScope reports whether two plans of one commit would do the same thing: no scope difference either way
// (models, categories, backfill kinds, starts and restatements), the same restated models and the same flags.
// A review that approved one approved the other: only intervals that became due meanwhile may differ.
func SameScope(a Summary, fa Flags, b Summary, fb Flags) bool {
	return len(ScopeDifferences(a, b)) == 0 && len(ScopeDifferences(b, a)) == 0 &&
		sameSet(a.Restated, b.Restated) && fa.Equal(fb)
}

// Equal compares flags, an empty restatement list being none.
func (f Flags) Equal(g Flags) bool {
	return f.ForwardOnly == g.ForwardOnly && f.Start == g.Start && f.End == g.End && sameSet(f.RestateModels, g.RestateModels)
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]int{}
	for _, s := range a {
		seen[s]++
	}
	for _, s := range b {
		if seen[s]--; seen[s] < 0 {
			return false
		}
	}
	return true
}
