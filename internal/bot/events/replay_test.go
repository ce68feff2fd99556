package events

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/dagctl/dagctl-bot/internal/bot/prstate"
	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/plan"
	"github.com/dagctl/dagctl-bot/internal/repoconfig"
)

func TestHasPlanFor(t *testing.T) {
	target := Target{Project: repoconfig.Project{Name: "default"}, Env: repoconfig.Environment{Name: "dev"}}
	stored := func(head, delivery string, status plan.Status) db.Plan {
		raw, _ := json.Marshal(prstate.PlanContext{Delivery: delivery})
		return db.Plan{Project: "default", Environment: "dev", HeadSHA: head, Status: status, Context: raw}
	}
	for _, tc := range []struct {
		name     string
		plans    []db.Plan
		delivery string
		want     bool
	}{
		{"automatic, planned", []db.Plan{stored("a", "", plan.StatusReady)}, "", true},
		{"automatic, another head planned", []db.Plan{stored("b", "", plan.StatusReady)}, "", false},
		{"automatic, a command planned the head", []db.Plan{stored("a", "github|d1", plan.StatusReady)}, "", true},
		{"automatic, the plan failed", []db.Plan{stored("a", "", plan.StatusFailed)}, "", false},
		{"a command replayed", []db.Plan{stored("a", "github|d1", plan.StatusRunning)}, "github|d1", true},
		{"a command asked again", []db.Plan{stored("a", "github|d1", plan.StatusReady)}, "github|d2", false},
		{"a command, the head planned automatically", []db.Plan{stored("a", "", plan.StatusReady)}, "github|d1", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, hasPlanFor(tc.plans, "a", target, plan.Flags{}, tc.delivery))
		})
	}
}
