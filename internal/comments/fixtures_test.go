package comments

import (
	"fmt"

	"github.com/dagctl/dagctl-bot/internal/plan"
)

// Scenarios for the golden files: the cases a reviewer meets, with sushi-like model names.

const (
	headSHA = "3f2c1a9be07d4c4b8d51e0b4a8e1f6c2d9a7b310"
	logURL  = "https://dagctl.example.com/runs/41/log"
)

func prodSection(sum *plan.Summary) Section {
	return Section{
		Environment:    "prod",
		State:          StatePlanned,
		Summary:        sum,
		LogURL:         logURL,
		TriggeredBy:    "alice",
		ApplyByComment: true,
		Approval:       Approval{Missing: []string{"1 approval from `acme/data-team`"}},
	}
}

const ordersDiff = `--- 
+++ 
@@ -10,7 +10,7 @@
 SELECT
   o.id AS order_id,
-  o.customer_id,
+  o.customer_id::BIGINT AS customer_id,
   o.waiter_id,
-  o.start_ts
+  o.start_ts AS ordered_at
 FROM raw.orders AS o`

const itemsDiff = `--- 
+++ 
@@ -4,3 +4,4 @@
 SELECT
   i.id AS item_id,
+  i.price * 1.1 AS price_with_tax,
   i.name`

func firstPlan() View {
	models := []string{"customers", "items", "marketing", "order_items", "orders", "raw_marketing", "top_waiters",
		"waiter_as_customer_by_day", "waiter_names", "waiter_revenue_by_day", "waiters", "customer_revenue_by_day"}
	sum := &plan.Summary{Tool: "sqlmesh", ToolVersion: "0.236.4", Environment: "prod", Start: "2024-01-01",
		End: "2024-06-30"}
	for _, m := range models {
		kind := "FULL"
		switch m {
		case "orders", "order_items", "items", "waiter_revenue_by_day", "customer_revenue_by_day":
			kind = "INCREMENTAL_BY_TIME_RANGE"
		case "top_waiters":
			kind = "VIEW"
		case "waiter_names":
			kind = "SEED"
		}
		name := "sushi." + m
		sum.Added = append(sum.Added, plan.Change{Model: name, Kind: kind})
		bf := plan.Backfill{Model: name, Kind: plan.BackfillFullRefresh}
		switch kind {
		case "INCREMENTAL_BY_TIME_RANGE":
			bf.Kind = plan.BackfillIntervals
			bf.Intervals = []plan.Interval{{Start: "2024-01-01", End: "2024-06-30"}}
		case "VIEW":
			bf.Kind = plan.BackfillRecreateView
		}
		sum.Backfills = append(sum.Backfills, bf)
	}
	sum.Normalize()
	s := prodSection(sum)
	return View{Repo: "acme/warehouse", PR: 7, HeadSHA: headSHA, Sections: []Section{s}}
}

// bigFirstPlan adds n models, each backfilled.
func bigFirstPlan(n int) View {
	sum := &plan.Summary{Tool: "sqlmesh", Environment: "prod", Start: "2024-01-01", End: "2024-06-30"}
	for i := range n {
		name := fmt.Sprintf("warehouse.staging.stg_source_%03d", i)
		sum.Added = append(sum.Added, plan.Change{Model: name, Kind: "INCREMENTAL_BY_TIME_RANGE"})
		sum.Backfills = append(sum.Backfills, plan.Backfill{Model: name, Kind: plan.BackfillIntervals,
			Intervals: []plan.Interval{{Start: "2024-01-01", End: "2024-06-30"}}})
	}
	return View{HeadSHA: headSHA, Sections: []Section{prodSection(sum)}}
}

func breakingChange() View {
	sum := &plan.Summary{Tool: "sqlmesh", ToolVersion: "0.236.4", Environment: "prod",
		DirectlyModified: []plan.Change{
			{Model: "sushi.orders", Kind: "INCREMENTAL_BY_TIME_RANGE", Category: plan.Breaking, Diff: ordersDiff,
				Children: []string{"sushi.customer_revenue_by_day", "sushi.order_items", "sushi.waiter_revenue_by_day"}},
			{Model: "sushi.items", Kind: "INCREMENTAL_BY_TIME_RANGE", Category: plan.NonBreaking, Diff: itemsDiff,
				Children: []string{"sushi.order_items"}},
		},
		IndirectlyModified: []plan.Change{
			{Model: "sushi.customer_revenue_by_day", Kind: "INCREMENTAL_BY_TIME_RANGE", Category: plan.IndirectBreaking},
			{Model: "sushi.order_items", Kind: "INCREMENTAL_BY_TIME_RANGE", Category: plan.IndirectBreaking},
			{Model: "sushi.waiter_revenue_by_day", Kind: "INCREMENTAL_BY_TIME_RANGE", Category: plan.IndirectBreaking},
		},
		Backfills: []plan.Backfill{
			{Model: "sushi.customer_revenue_by_day", Kind: plan.BackfillIntervals, Intervals: []plan.Interval{{Start: "2024-01-01", End: "2024-06-30"}}},
			{Model: "sushi.items", Kind: plan.BackfillIntervals, Intervals: []plan.Interval{{Start: "2024-01-01", End: "2024-06-30"}}},
			{Model: "sushi.order_items", Kind: plan.BackfillIntervals, Intervals: []plan.Interval{{Start: "2024-01-01", End: "2024-06-30"}}},
			{Model: "sushi.orders", Kind: plan.BackfillIntervals, Intervals: []plan.Interval{{Start: "2024-01-01", End: "2024-03-31"}, {Start: "2024-04-02", End: "2024-06-30"}}},
			{Model: "sushi.waiter_revenue_by_day", Kind: plan.BackfillIntervals, Intervals: []plan.Interval{{Start: "2024-01-01", End: "2024-06-30"}}},
		},
		Explain: "Backfill models by running their queries and run standalone audits\n" +
			"├── sushi.orders -> 2024-01-01 - 2024-06-30\n└── sushi.items -> 2024-01-01 - 2024-06-30",
	}
	sum.Normalize()
	s := prodSection(sum)
	s.Approval = Approval{ApprovedBy: []string{"bob"}}
	s.ApplyOnMerge = true
	s.Note = "`prod` is locked by #41: the apply waits until it is released."
	return View{Repo: "acme/warehouse", PR: 8, HeadSHA: headSHA, Sections: []Section{s}}
}

func forwardOnly() View {
	sum := &plan.Summary{Tool: "sqlmesh", Environment: "prod", ForwardOnly: true,
		DirectlyModified: []plan.Change{{Model: "sushi.orders", Kind: "INCREMENTAL_BY_TIME_RANGE",
			Category: plan.ForwardOnly, Diff: ordersDiff}},
	}
	s := prodSection(sum)
	s.Approval = Approval{ApprovedBy: []string{"bob", "carol"}}
	return View{HeadSHA: headSHA, Sections: []Section{s}}
}

func restatement() View {
	sum := &plan.Summary{Tool: "sqlmesh", Environment: "prod", Start: "2024-06-01", End: "2024-06-07",
		Restated: []string{"sushi.waiter_revenue_by_day"},
		Backfills: []plan.Backfill{
			{Model: "sushi.top_waiters", Kind: plan.BackfillRecreateView},
			{Model: "sushi.waiter_revenue_by_day", Kind: plan.BackfillIntervals, Restatement: true,
				Intervals: []plan.Interval{{Start: "2024-06-01", End: "2024-06-02"}, {Start: "2024-06-02", End: "2024-06-03"},
					{Start: "2024-06-03", End: "2024-06-04"}, {Start: "2024-06-04", End: "2024-06-05"}, {Start: "2024-06-05", End: "2024-06-07"}}},
		},
	}
	s := prodSection(sum)
	s.TriggeredBy = "dave"
	return View{HeadSHA: headSHA, Sections: []Section{s}}
}

func devCreated() View {
	sum := &plan.Summary{Tool: "sqlmesh", Environment: "pr_12", CreatesEnvironment: true, CreateFrom: "prod",
		DirectlyModified: []plan.Change{{Model: "sushi.items", Kind: "INCREMENTAL_BY_TIME_RANGE",
			Category: plan.NonBreaking, Diff: itemsDiff, Children: []string{"sushi.order_items"}}},
		IndirectlyModified: []plan.Change{{Model: "sushi.order_items", Category: plan.IndirectNonBreaking}},
		Backfills: []plan.Backfill{{Model: "sushi.items", Kind: plan.BackfillIntervals,
			Intervals: []plan.Interval{{Start: "2024-06-24", End: "2024-06-30"}}}},
	}
	return View{HeadSHA: headSHA, Sections: []Section{{Environment: "pr_12", State: StateApplied, Summary: sum,
		LogURL: logURL, TriggeredBy: "alice"}}}
}

func noChanges() View {
	sum := &plan.Summary{Tool: "sqlmesh", Environment: "prod"}
	return View{HeadSHA: headSHA, Sections: []Section{{Environment: "prod", State: StateNoChanges, Summary: sum,
		LogURL: logURL, TriggeredBy: "alice", ApplyByComment: true}}}
}

func failure() View {
	var trace string
	for i := 1; i <= 12; i++ {
		trace += fmt.Sprintf("  File \"/usr/lib/python3/sqlmesh/core/context.py\", line %d, in plan\n", 100+i)
	}
	errText := "Traceback (most recent call last):\n" + trace +
		"\x1b[31mError:\x1b[0m Failed to parse model `sushi.orders`:\n```\nSELECT * FROM </details> WHERE a | b\n```\n" +
		"ParseError: Invalid expression / Unexpected token. Line 3, Col: 17."
	return View{HeadSHA: headSHA, Sections: []Section{{Environment: "prod", State: StatePlanFailed, Error: errText,
		LogURL: logURL, TriggeredBy: "alice", ApplyByComment: true}}}
}

func uncategorized() View {
	sum := &plan.Summary{Tool: "sqlmesh", Environment: "prod",
		DirectlyModified: []plan.Change{
			{Model: "sushi.items", Kind: "INCREMENTAL_BY_TIME_RANGE", Category: plan.NonBreaking, Diff: itemsDiff},
			{Model: "sushi.orders", Kind: "INCREMENTAL_BY_TIME_RANGE", Diff: ordersDiff,
				Children: []string{"sushi.order_items"}},
		},
		IndirectlyModified: []plan.Change{{Model: "sushi.order_items", Category: plan.IndirectBreaking}},
	}
	return View{HeadSHA: headSHA, Sections: []Section{prodSection(sum)}}
}

func severalEnvironments() View {
	dev := devCreated().Sections[0]
	dev.Project = "analytics"
	prod := breakingChange().Sections[0]
	prod.Project = "analytics"
	prod.Note = ""
	prod.Approval = Approval{Missing: []string{"2 approvals from `acme/data-team` (1 so far: bob)"}}
	staging := Section{Project: "analytics", Environment: "staging", State: StatePlanning, LogURL: logURL + "/staging",
		TriggeredBy: "alice"}
	failed := failure().Sections[0]
	failed.Project = "marketing"
	failed.Error = "Error: Could not connect to the gateway 'snowflake': authentication failed."
	return View{Repo: "acme/warehouse", PR: 9, HeadSHA: headSHA, Sections: []Section{dev, staging, prod, failed}}
}

func forkNote() View {
	return View{Repo: "acme/warehouse", PR: 10, HeadSHA: headSHA, Notes: []string{
		"Fork PR: plans do not run automatically. A user with write permission comments `/dagctl plan` to plan it.",
	}}
}

// hostile has names and texts that try to break the layout.
func hostile() View {
	evil := []string{"a|b", "x`y", "`start", "<b>bold</b>", "</details>", "sushi.\"we|ird\"", "**stars**", "$x$",
		"日本語.モデル", "a\nb"}
	sum := &plan.Summary{Tool: "sqlmesh", Environment: "prod"}
	for _, m := range evil {
		sum.DirectlyModified = append(sum.DirectlyModified, plan.Change{Model: m, Category: plan.Breaking,
			Kind: "FULL|<i>", Diff: "+ SELECT '</details>' AS x\n+ -- ``` fence\n```\n</details>\n<details>",
			Children: []string{m + "_child"}})
		sum.Backfills = append(sum.Backfills, plan.Backfill{Model: m, Kind: plan.BackfillIntervals,
			Intervals: []plan.Interval{{Start: "2024|01", End: "`x`"}}})
	}
	s := prodSection(sum)
	s.Environment = "prod|x"
	s.TriggeredBy = "<img src=x onerror=alert(1)>"
	s.Approval = Approval{ApprovedBy: []string{"_bob_"}, Missing: []string{"one from `a|b` <script>"}}
	s.Note = "note with </details> and | pipes and [link](javascript:alert(1))"
	s.LogURL = "https://dagctl.example.com/log?a=(1)&b=<2>"
	return View{HeadSHA: "<sha>", Notes: []string{"</details><details>", "unpaired ` backtick <x>"},
		Sections: []Section{s}}
}

var scenarios = []struct {
	name string
	view func() View
}{
	{"first_plan", firstPlan},
	{"breaking_change", breakingChange},
	{"forward_only", forwardOnly},
	{"restatement", restatement},
	{"dev_env_created", devCreated},
	{"no_changes", noChanges},
	{"failure", failure},
	{"uncategorized", uncategorized},
	{"several_environments", severalEnvironments},
	{"fork_note", forkNote},
	{"hostile_input", hostile},
}
