package chaos_test

import (
	"fmt"
	"sort"
	"strings"

	"github.com/dagctl/dagctl-bot/internal/comments"
	"github.com/dagctl/dagctl-bot/internal/jobs"
	"github.com/dagctl/dagctl-bot/internal/outbox"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// observed is everything the tally reads: what the forge accepted from the people (the ledger), what the forge
// shows the bot did, what the store holds and what the executor was asked to run. Plain data, so that the
// rules below are table-tested without a bot.
type observed struct {
	PRs     []prLedger
	Checks  []check
	Replies map[int][]reply // per PR: the bot's comments, oldest first
	Eyes    map[int64]bool  // command comments the bot reacted to
	Runs    []run
	Journal []jobLine
	Locks   []string // env_locks rows, described
	Dead    []string // deliveries that failed for good, described
}

// prLedger is one PR as the people drove it: each field was accepted by the bot (its delivery answered 2xx).
type prLedger struct {
	Number   int
	Head     string  // the final head, whose plans must be final
	Commands []int64 // `/dagctl apply dev` comments
	Merged   bool    // merged after bob approved the head's plans
}

type check struct {
	Name, SHA, ExternalID string
	State                 vcs.StatusState
}

type reply struct {
	ID   int64
	Body string
}

type run struct {
	ID, PlanID int64
	Kind       jobs.Kind
	Status     string
	PR         int
	Env        string
	Reason     string // how a failed run ended
}

// summary says how much the run did, so that a clean tally is known to have counted something.
func (o observed) summary() string {
	applies := map[string]int{}
	for _, r := range o.Runs {
		if r.Kind == jobs.KindApply {
			applies[r.Env+" "+r.Status]++
		}
	}
	replies := 0
	for _, rs := range o.Replies {
		replies += len(rs)
	}
	started := 0
	for _, j := range o.Journal {
		if j.Kind == jobs.KindApply {
			started++
		}
	}
	return fmt.Sprintf("%d check runs, %d bot comments, %d runs, applies %v, %d apply jobs started", len(o.Checks), replies,
		len(o.Runs), applies, started)
}

// counts are the chaos run's findings, each item named; all must be empty.
type counts struct {
	Lost, Doubled, StuckChecks, HeldLocks []string
}

func (c counts) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "lost %d, doubled %d, stuck checks %d, held locks %d\n", len(c.Lost), len(c.Doubled), len(c.StuckChecks), len(c.HeldLocks))
	for _, part := range []struct {
		name  string
		items []string
	}{{"lost", c.Lost}, {"doubled", c.Doubled}, {"stuck check", c.StuckChecks}, {"held lock", c.HeldLocks}} {
		for _, item := range part.items {
			fmt.Fprintf(&b, "  %s: %s\n", part.name, item)
		}
	}
	return b.String()
}

func (c counts) zero() bool {
	return len(c.Lost)+len(c.Doubled)+len(c.StuckChecks)+len(c.HeldLocks) == 0
}

// tally applies the chaos run's rules to what was observed.
func tally(o observed) counts {
	var c counts
	c.HeldLocks = append(c.HeldLocks, o.Locks...)
	for _, d := range o.Dead {
		c.Lost = append(c.Lost, "delivery "+d)
	}
	c.StuckChecks = stuckChecks(o.Checks)
	c.Doubled = append(c.Doubled, doubledChecks(o.Checks)...)
	c.Doubled = append(c.Doubled, doubledApplies(o.Runs, o.Journal)...)
	for _, pr := range o.PRs {
		lost, doubled := tallyPR(pr, o)
		c.Lost, c.Doubled = append(c.Lost, lost...), append(c.Doubled, doubled...)
	}
	return c
}

// stuckChecks are check runs that never reached a final state.
func stuckChecks(checks []check) []string {
	var out []string
	for _, ch := range checks {
		if ch.State == vcs.StatusQueued || ch.State == vcs.StatusRunning {
			out = append(out, fmt.Sprintf("%q on %.7s (%s) is %s", ch.Name, ch.SHA, ch.ExternalID, ch.State))
		}
	}
	return out
}

// doubledChecks are check runs created twice for one status of the bot: (name, commit, external id).
func doubledChecks(checks []check) []string {
	seen := map[check]int{}
	for _, ch := range checks {
		ch.State = ""
		seen[ch]++
	}
	var out []string
	for ch, n := range seen {
		if n > 1 {
			out = append(out, fmt.Sprintf("check run %q on %.7s (%s) created %d times", ch.Name, ch.SHA, ch.ExternalID, n))
		}
	}
	sort.Strings(out)
	return out
}

// doubledApplies are plans whose environment was applied (an apply job started: it may have applied, killed or
// not) more than once.
func doubledApplies(runs []run, journal []jobLine) []string {
	byID := map[string]run{}
	for _, r := range runs {
		byID[fmt.Sprint(r.ID)] = r
	}
	started := map[int64][]string{}
	for _, j := range journal {
		if j.Kind != jobs.KindApply {
			continue
		}
		id, _, _ := strings.Cut(j.RunID, "-")
		r, ok := byID[id]
		if !ok {
			continue
		}
		started[r.PlanID] = append(started[r.PlanID], j.RunID)
	}
	var out []string
	for _, r := range runs {
		if ids := started[r.PlanID]; len(ids) > 1 && r.Kind == jobs.KindApply && ids[0] == fmt.Sprintf("%d-apply", r.ID) {
			out = append(out, fmt.Sprintf("PR #%d %s (plan %d): applied %d times (jobs %s)", r.PR, r.Env, r.PlanID, len(ids), strings.Join(ids, ", ")))
		}
	}
	return out
}

// tallyPR checks one PR: its head's plans exist, each command was answered once and acknowledged, each apply
// reported once, and a merge applied prod.
func tallyPR(pr prLedger, o observed) (lost, doubled []string) {
	name := fmt.Sprintf("PR #%d", pr.Number)
	for _, env := range []string{"dev", "prod"} {
		if !hasCheck(o.Checks, "dagctl/plan: "+env, pr.Head) {
			lost = append(lost, fmt.Sprintf("%s: no %q on its head %.7s", name, "dagctl/plan: "+env, pr.Head))
		}
	}
	kinds, stickies, mergeNote := classifyReplies(o.Replies[pr.Number])
	if kinds["merge note"] > 1 {
		doubled = append(doubled, fmt.Sprintf("%s: %d notes on its merge", name, kinds["merge note"]))
	}
	if stickies > 1 {
		doubled = append(doubled, fmt.Sprintf("%s: %d sticky comments", name, stickies))
	}
	for _, id := range pr.Commands {
		if !o.Eyes[id] {
			lost = append(lost, fmt.Sprintf("%s: command comment %d got no 👀", name, id))
		}
	}
	switch answers := kinds["answer"]; {
	case answers < len(pr.Commands):
		lost = append(lost, fmt.Sprintf("%s: %d `/dagctl apply dev` commands, %d answered", name, len(pr.Commands), answers))
	case answers > len(pr.Commands):
		doubled = append(doubled, fmt.Sprintf("%s: %d `/dagctl apply dev` commands, %d answers", name, len(pr.Commands), answers))
	}
	finished := map[string]int{}
	applied := map[string]bool{}
	var prodEnds []string
	for _, r := range o.Runs {
		if r.PR == pr.Number && r.Kind == jobs.KindApply && r.Status != "queued" && r.Status != "running" {
			finished[r.Env]++
			applied[r.Env] = applied[r.Env] || r.Status == "succeeded"
			if r.Env == "prod" {
				prodEnds = append(prodEnds, fmt.Sprintf("%s: %s", r.Status, r.Reason))
			}
		}
	}
	for _, env := range []string{"dev", "prod"} {
		if n := kinds["end "+env]; n > finished[env] {
			doubled = append(doubled, fmt.Sprintf("%s: %d replies ending a %s apply, %d applies ended", name, n, env, finished[env]))
		}
	}
	if pr.Merged && !applied["prod"] {
		lost = append(lost, fmt.Sprintf("%s: merged and approved, prod never applied (prod applies ended %q; merge note %.200q)", name, prodEnds, mergeNote))
	}
	return lost, doubled
}

// classifyReplies counts a PR's bot comments by replyKind, the sticky comments apart, and keeps the merge note.
func classifyReplies(replies []reply) (kinds map[string]int, stickies int, mergeNote string) {
	kinds = map[string]int{}
	for _, r := range replies {
		if part, ok := comments.MarkerPart(r.Body); ok {
			if part == 1 {
				stickies++
			}
			continue
		}
		body := outbox.WithoutWriteMarker(r.Body)
		kind := replyKind(body)
		kinds[kind]++
		if kind == "merge note" {
			mergeNote = body
		}
	}
	return kinds, stickies, mergeNote
}

func hasCheck(checks []check, name, sha string) bool {
	for _, ch := range checks {
		if ch.Name == name && ch.SHA == sha {
			return true
		}
	}
	return false
}

// replyKind sorts the bot's replies: an apply's end ("end <env>"), a note while it waits ("wait"), why a merge
// applied nothing ("merge note": about prod alone), and the answer to a command ("answer": it started the
// apply, or refused it).
func replyKind(body string) string {
	for _, env := range []string{"dev", "prod"} {
		if strings.HasPrefix(body, "✅ `"+env+"`") || strings.HasPrefix(body, "❌ `"+env+"`") {
			return "end " + env
		}
	}
	if strings.HasPrefix(body, "⏳") {
		return "wait"
	}
	if strings.Contains(body, "`prod`") && !strings.Contains(body, "`dev`") {
		return "merge note"
	}
	return "answer"
}
