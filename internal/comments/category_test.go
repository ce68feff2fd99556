package comments

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/dagctl/dagctl-bot/internal/plan"
)

// A framework without categories (dbt) must never read as "uncategorized": that word stops an apply.
func TestNoCategoryChangeIsRenderedWithoutACategory(t *testing.T) {
	sum := &plan.Summary{Tool: "dbt", Environment: "prod",
		DirectlyModified:   []plan.Change{{Model: "marts.orders", Kind: "table", Category: plan.NoCategory, Diff: "--- \n+++ \n@@ -1 +1 @@\n-a\n+b"}},
		IndirectlyModified: []plan.Change{{Model: "marts.revenue", Category: plan.NoCategory}},
	}
	s := prodSection(sum)
	body := Comment(View{HeadSHA: headSHA, Sections: []Section{s}}, GitHubCommentLimit)[0]
	title, summary, text := CheckOutput(s)
	for name, out := range map[string]string{"comment": body, "check title": title, "check summary": summary, "check text": text} {
		lower := strings.ToLower(out)
		assert.NotContains(t, lower, "uncategorized", name)
		assert.NotContains(t, lower, "without a category", name)
		assert.NotContains(t, out, "❓", name)
		assert.NotContains(t, out, "No breaking changes", "%s: dbt cannot tell breaking from not", name)
	}
	assert.Contains(t, body, "- `marts.orders` — table\n", "the change is listed with its kind only")
	assert.Contains(t, body, "- `marts.revenue`\n")
	assert.Contains(t, text, "Diff of <code>marts.orders</code></summary>", "the diff has no category either")
	assert.Equal(t, ConclusionSuccess, Conclusion(s))
	assert.NotContains(t, body, "Action required")
}

func TestUncategorizedChangeStillAsksForAction(t *testing.T) {
	for name, category := range map[string]plan.Category{"uncategorized": plan.Uncategorized, "empty": ""} {
		sum := &plan.Summary{Tool: "sqlmesh", Environment: "prod",
			DirectlyModified: []plan.Change{{Model: "sushi.orders", Kind: "FULL", Category: category}}}
		s := prodSection(sum)
		body := Comment(View{HeadSHA: headSHA, Sections: []Section{s}}, GitHubCommentLimit)[0]
		title, _, _ := CheckOutput(s)
		assert.Contains(t, body, "- ❓ `sushi.orders` — **Uncategorized** · FULL", name)
		assert.Contains(t, body, "without a category", name)
		assert.Contains(t, title, "1 uncategorized", name)
		assert.Equal(t, ConclusionActionRequired, Conclusion(s), name)
	}
}
