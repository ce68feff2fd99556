package web

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

var (
	now       = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	warehouse = RepoRef{Forge: "github", FullName: "acme/warehouse"}
	lake      = RepoRef{Forge: "gitlab", FullName: "beta/data/lake"}
)

func homeFacts() HomeFacts {
	return HomeFacts{
		Now:    now,
		Forges: []string{"github", "gitlab"},
		Repos: []Repo{
			{Ref: warehouse, LastPlan: "ready", LastPlanAt: now.Add(-3 * time.Minute)},
			{Ref: lake},
		},
		ReposTotal: 2,
		Running: []Run{
			{ID: 9, Repo: lake, PR: 4, Project: "marts", Environment: "dev", Kind: "plan", Status: "running",
				CreatedAt: now.Add(-time.Minute), StartedAt: now.Add(-30 * time.Second), LogURL: "/runs/9/sig9"},
			{ID: 8, Repo: warehouse, Project: "sqlmesh", Environment: "prod", Kind: "apply", Status: "queued",
				CreatedAt: now.Add(-2 * time.Minute), LogURL: "/runs/8/sig8"},
		},
		RunningTotal: 5,
		Failures: []Run{
			{ID: 7, Repo: warehouse, PR: 12, Project: "sqlmesh", Environment: "prod", Kind: "plan", Status: "failed",
				Reason: "exit status 1", CreatedAt: now.Add(-3 * time.Hour), FinishedAt: now.Add(-2 * time.Hour),
				LogURL: "/runs/7/sig7"},
		},
		FailuresTotal: 1,
		FailuresSince: now.Add(-7 * 24 * time.Hour),
		Dead: []DeadDelivery{
			{ID: 3, Forge: "github", DeliveryID: "d-3", Event: "pull_request", OrderingKey: "github:acme/warehouse#12",
				Attempts: 9, LastError: "502 from GitHub", ReceivedAt: now.Add(-26 * time.Hour)},
			{ID: 2, Forge: "github", DeliveryID: "d-2", Event: "installation", OrderingKey: "github:installation/7",
				Attempts: 9, ReceivedAt: now.Add(-27 * time.Hour)},
		},
		DeadTotal: 2,
	}
}

func TestBuildHome(t *testing.T) {
	failure := RunView{ID: 7, Repo: "github:acme/warehouse", Where: "PR #12, sqlmesh/prod", Kind: "plan",
		Status: "failed", Reason: "exit status 1", When: Moment{Ago: "2 h ago", ISO: "2026-03-01T10:00:00Z"},
		LogURL: "/runs/7/sig7"}
	queuedApply := RunView{ID: 8, Repo: "github:acme/warehouse", Where: "push, sqlmesh/prod", Kind: "apply",
		Status: "queued", When: Moment{Ago: "2 min ago", ISO: "2026-03-01T11:58:00Z"}, LogURL: "/runs/8/sig8"}
	lakePlan := RunView{ID: 9, Repo: "gitlab:beta/data/lake", Where: "PR #4, marts/dev", Kind: "plan",
		Status: "running", When: Moment{Ago: "30 s ago", ISO: "2026-03-01T11:59:30Z"}, LogURL: "/runs/9/sig9"}
	deadPR := DeadView{ID: 3, Repo: "github:acme/warehouse", Event: "pull_request", DeliveryID: "d-3", Attempts: 9,
		LastError: "502 from GitHub", Received: Moment{Ago: "26 h ago", ISO: "2026-02-28T10:00:00Z"}}
	warehouseLine := RepoView{Name: "github:acme/warehouse", LastPlan: "ready",
		When: Moment{Ago: "3 min ago", ISO: "2026-03-01T11:57:00Z"}}

	tests := []struct {
		name   string
		facts  HomeFacts
		access Access
		want   HomeView
	}{
		{
			name:   "anonymous: counts only",
			facts:  homeFacts(),
			access: Access{},
			want: HomeView{Forges: []string{"github", "gitlab"}, FailuresSince: "7 days",
				Repos:    Section[RepoView]{Total: 2, Hidden: 2},
				Running:  Section[RunView]{Total: 5, Hidden: 5},
				Failures: Section[RunView]{Total: 1, Hidden: 1},
				Dead:     Section[DeadView]{Total: 2, Hidden: 2}},
		},
		{
			// A viewer whose forge says yes to everything is still nobody until signed in.
			name:   "not signed in, whatever the access set says",
			facts:  homeFacts(),
			access: AccessTo("", warehouse, lake),
			want: HomeView{Forges: []string{"github", "gitlab"}, FailuresSince: "7 days",
				Repos:    Section[RepoView]{Total: 2, Hidden: 2},
				Running:  Section[RunView]{Total: 5, Hidden: 5},
				Failures: Section[RunView]{Total: 1, Hidden: 1},
				Dead:     Section[DeadView]{Total: 2, Hidden: 2}},
		},
		{
			name:   "signed in, reading one repository: its items, the rest counted",
			facts:  homeFacts(),
			access: AccessTo("alice", RepoRef{Forge: "GitHub", FullName: "ACME/Warehouse"}), // names compare case-insensitively
			want: HomeView{Forges: []string{"github", "gitlab"}, SignedIn: true, Login: "alice", FailuresSince: "7 days",
				Repos:    Section[RepoView]{Total: 2, Shown: []RepoView{warehouseLine}, Hidden: 1},
				Running:  Section[RunView]{Total: 5, Shown: []RunView{queuedApply}, Hidden: 4},
				Failures: Section[RunView]{Total: 1, Shown: []RunView{failure}},
				// The installation's delivery names no repository: nobody reads it here.
				Dead: Section[DeadView]{Total: 2, Shown: []DeadView{deadPR}, Hidden: 1}},
		},
		{
			name:   "signed in, reading both",
			facts:  homeFacts(),
			access: AccessTo("carol", warehouse, lake),
			want: HomeView{Forges: []string{"github", "gitlab"}, SignedIn: true, Login: "carol", FailuresSince: "7 days",
				Repos:    Section[RepoView]{Total: 2, Shown: []RepoView{warehouseLine, {Name: "gitlab:beta/data/lake"}}},
				Running:  Section[RunView]{Total: 5, Shown: []RunView{lakePlan, queuedApply}, Hidden: 3},
				Failures: Section[RunView]{Total: 1, Shown: []RunView{failure}},
				Dead:     Section[DeadView]{Total: 2, Shown: []DeadView{deadPR}, Hidden: 1}},
		},
		{
			name: "no forge configured: what to do next",
			facts: HomeFacts{Now: now, FailuresSince: now.Add(-time.Hour),
				Setup: Setup{ManifestFlow: true, GitHubSettings: []Setting{{Name: "DAGCTL_GITHUB_APP_ID", Required: true}}}},
			access: Access{},
			want: HomeView{FailuresSince: "1 h",
				Unconfigured: &Setup{ManifestFlow: true, GitHubSettings: []Setting{{Name: "DAGCTL_GITHUB_APP_ID", Required: true}}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, BuildHome(tt.facts, tt.access))
		})
	}
}

func TestRepoOfOrderingKey(t *testing.T) {
	tests := []struct {
		key  string
		want RepoRef
		ok   bool
	}{
		{"github:acme/warehouse#12", warehouse, true},
		{"github:acme/warehouse", warehouse, true},
		{"gitlab:beta/data/lake#4", lake, true},
		{"github:installation/7", RepoRef{}, false},
		{"github:app", RepoRef{}, false},
		{"github:unparsable", RepoRef{}, false},
		{"gitlab:unparsable", RepoRef{}, false},
		{"", RepoRef{}, false},
		{":acme/warehouse", RepoRef{}, false},
		{"github:/warehouse", RepoRef{}, false},
		{"github:acme/", RepoRef{}, false},
	}
	for _, tt := range tests {
		got, ok := RepoOfOrderingKey(tt.key)
		assert.Equal(t, tt.ok, ok, tt.key)
		assert.Equal(t, tt.want, got, tt.key)
	}
}

// viewer answers MayRead from a set and counts the questions.
type viewer struct {
	login    string
	readable map[string]bool
	asked    int
}

func (v *viewer) Login() string { return v.login }
func (v *viewer) MayRead(_ context.Context, r RepoRef) bool {
	v.asked++
	return v.readable[r.Key()]
}

func TestAccessOfAsksOncePerRepositoryAndNeverForAnonymous(t *testing.T) {
	ctx := context.Background()
	refs := homeFacts().RepoRefs()
	assert.Len(t, refs, 6, "two repos, two running, one failure, one dead delivery naming a repository")

	alice := &viewer{login: "alice", readable: map[string]bool{warehouse.Key(): true}}
	a := AccessOf(ctx, alice, refs)
	assert.Equal(t, 2, alice.asked)
	assert.True(t, a.MayRead(warehouse))
	assert.False(t, a.MayRead(lake))

	nobody := &viewer{readable: map[string]bool{warehouse.Key(): true}}
	a = AccessOf(ctx, nobody, refs)
	assert.Zero(t, nobody.asked)
	assert.False(t, a.MayRead(warehouse))

	a = AccessOf(ctx, Anonymous{}, refs)
	assert.False(t, a.SignedIn())
	assert.False(t, a.MayRead(warehouse))
}

func TestAgo(t *testing.T) {
	for d, want := range map[time.Duration]string{
		-time.Second:        "0 s",
		59 * time.Second:    "59 s",
		time.Minute:         "1 min",
		59 * time.Minute:    "59 min",
		47 * time.Hour:      "47 h",
		48 * time.Hour:      "2 days",
		7 * 24 * time.Hour:  "7 days",
		90 * 24 * time.Hour: "90 days",
	} {
		assert.Equal(t, want, ago(d), d.String())
	}
}
