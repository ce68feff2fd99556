package web

import (
	"fmt"
	"strings"
	"time"
)

// HomeFacts is what the home page is built from: the bot's set-up and what the store holds, as plain data.
type HomeFacts struct {
	Now time.Time
	// Forges are the forges the bot serves that are configured (can be sent webhooks), e.g. "github".
	Forges []string
	// Setup is what an operator can do to configure a forge; shown when Forges is empty.
	Setup Setup

	// Repos are the repositories the bot serves (installed on, or planned for), each once, the most recently
	// planned first; ReposTotal counts them all (a viewer is asked about Repos alone: each may be a forge call).
	Repos      []Repo
	ReposTotal int
	// Running are the newest queued and running runs; RunningTotal counts them all.
	Running      []Run
	RunningTotal int
	// Failures are the newest runs that failed since FailuresSince; FailuresTotal counts them all.
	Failures      []Run
	FailuresTotal int
	FailuresSince time.Time
	// Dead are the newest dead deliveries; DeadTotal counts them all.
	Dead      []DeadDelivery
	DeadTotal int
}

// Setup says how this bot can be given a forge.
type Setup struct {
	// ManifestFlow is whether /setup can create the GitHub App (the bot then printed a one-time setup link to
	// its log).
	ManifestFlow bool
	// GitHubSettings are the settings of an existing GitHub App; GitLabSettings those of a GitLab instance,
	// each with whether it is required.
	GitHubSettings []Setting
	GitLabSettings []Setting
}

// Setting is one environment variable of the bot's configuration.
type Setting struct {
	Name     string
	Required bool
	What     string
}

// Repo is a repository the bot serves, with its newest plan when it has one.
type Repo struct {
	Ref RepoRef
	// LastPlan is the newest plan's status ("" when the bot never planned it) and when it changed.
	LastPlan   string
	LastPlanAt time.Time
}

// Run is a plan's or an apply's run.
type Run struct {
	ID          int64
	Repo        RepoRef
	PR          int // 0: a default-branch push's plan
	Project     string
	Environment string
	Kind        string // "plan" or "apply"
	Status      string
	Reason      string // why it failed, as the store says (the bot's own words, secrets masked)
	CreatedAt   time.Time
	StartedAt   time.Time // zero until started
	FinishedAt  time.Time // zero until finished
	// LogURL is the run's log page: shown only to a viewer who may read Repo.
	LogURL string
}

// DeadDelivery is a webhook delivery the bot gave up on.
type DeadDelivery struct {
	ID         int64
	Forge      string
	DeliveryID string
	Event      string
	// OrderingKey is the intake's key ("github:owner/name#12"): it names the repository, which decides who may
	// see the delivery.
	OrderingKey string
	Attempts    int
	LastError   string // secrets masked
	ReceivedAt  time.Time
}

// Repo is the repository the delivery's ordering key names, when it names one.
func (d DeadDelivery) Repo() (RepoRef, bool) { return RepoOfOrderingKey(d.OrderingKey) }

// RepoOfOrderingKey reads the repository of an intake ordering key: "forge:owner/name" or
// "forge:owner/name#12". Keys of no repository ("github:installation/7", "github:app", "…:unparsable") name
// none.
func RepoOfOrderingKey(key string) (RepoRef, bool) {
	forge, rest, ok := strings.Cut(key, ":")
	if !ok || forge == "" {
		return RepoRef{}, false
	}
	name, _, _ := strings.Cut(rest, "#")
	if !strings.Contains(name, "/") || strings.HasPrefix(name, "installation/") || strings.HasPrefix(name, "/") ||
		strings.HasSuffix(name, "/") {
		return RepoRef{}, false
	}
	return RepoRef{Forge: forge, FullName: name}, true
}

// RepoRefs are the repositories the facts name, for AccessOf.
func (f HomeFacts) RepoRefs() []RepoRef {
	var out []RepoRef
	for _, r := range f.Repos {
		out = append(out, r.Ref)
	}
	for _, r := range f.Running {
		out = append(out, r.Repo)
	}
	for _, r := range f.Failures {
		out = append(out, r.Repo)
	}
	for _, d := range f.Dead {
		if ref, ok := d.Repo(); ok {
			out = append(out, ref)
		}
	}
	return out
}

// HomeView is the home page's model.
type HomeView struct {
	// Unconfigured is set when the bot serves no configured forge: the page then says what to do next.
	Unconfigured *Setup
	// Forges are the configured forges, for the page's heading.
	Forges   []string
	SignedIn bool
	Login    string

	Repos    Section[RepoView]
	Running  Section[RunView]
	Failures Section[RunView]
	Dead     Section[DeadView]
	// FailuresSince says the failures' window in words ("7 days").
	FailuresSince string
}

// Section is a part of the page: how many there are, and those the viewer may see. An anonymous viewer gets
// the count alone.
type Section[T any] struct {
	Total int
	Shown []T
	// Hidden is how many of Total are not shown: beyond the page's limit, or of repositories the viewer may not
	// read.
	Hidden int
}

// RepoView is a repository's line.
type RepoView struct {
	Name     string // "github:owner/name"
	LastPlan string
	When     Moment
}

// RunView is a run's line.
type RunView struct {
	ID     int64
	Repo   string // "github:owner/name"
	Where  string // "PR #12, sqlmesh/prod" or "push, sqlmesh/prod"
	Kind   string
	Status string
	Reason string
	When   Moment
	LogURL string
}

// DeadView is a dead delivery's line.
type DeadView struct {
	ID         int64
	Repo       string
	Event      string
	DeliveryID string
	Attempts   int
	LastError  string
	Received   Moment
}

// Moment is a time as the page shows it: how long ago, and the exact time for a machine and a tooltip.
type Moment struct {
	Ago string // "3 min ago"
	ISO string // RFC 3339, UTC
}

// BuildHome builds the home page from the facts for a viewer with access. Repository names, runs and logs are
// shown only for repositories access may read, and only to a signed-in viewer; counts are shown to everyone.
func BuildHome(f HomeFacts, access Access) HomeView {
	v := HomeView{Forges: f.Forges, SignedIn: access.SignedIn(), Login: access.Login}
	if len(f.Forges) == 0 {
		setup := f.Setup
		v.Unconfigured = &setup
	}
	v.Repos = section(f.ReposTotal, f.Repos, func(r Repo) (RepoView, bool) {
		return RepoView{Name: r.Ref.String(), LastPlan: r.LastPlan, When: momentOf(f.Now, r.LastPlanAt)}, access.MayRead(r.Ref)
	})
	run := func(r Run) (RunView, bool) { return runView(f.Now, r), access.MayRead(r.Repo) }
	v.Running = section(f.RunningTotal, f.Running, run)
	v.Failures = section(f.FailuresTotal, f.Failures, run)
	v.FailuresSince = ago(f.Now.Sub(f.FailuresSince))
	v.Dead = section(f.DeadTotal, f.Dead, func(d DeadDelivery) (DeadView, bool) {
		ref, ok := d.Repo()
		return DeadView{ID: d.ID, Repo: ref.String(), Event: d.Event, DeliveryID: d.DeliveryID, Attempts: d.Attempts,
			LastError: d.LastError, Received: momentOf(f.Now, d.ReceivedAt)}, ok && access.MayRead(ref)
	})
	return v
}

// section keeps the items the viewer may see, in order; the rest of total is hidden.
func section[F, T any](total int, items []F, view func(F) (T, bool)) Section[T] {
	s := Section[T]{Total: max(total, len(items))}
	for _, it := range items {
		if t, ok := view(it); ok {
			s.Shown = append(s.Shown, t)
		}
	}
	s.Hidden = s.Total - len(s.Shown)
	return s
}

func runView(now time.Time, r Run) RunView {
	where := "push"
	if r.PR > 0 {
		where = fmt.Sprintf("PR #%d", r.PR)
	}
	where += ", " + r.Project + "/" + r.Environment
	// The moment that matters: when it ended, else when it started, else when it was queued.
	at := r.CreatedAt
	switch {
	case !r.FinishedAt.IsZero():
		at = r.FinishedAt
	case !r.StartedAt.IsZero():
		at = r.StartedAt
	}
	return RunView{ID: r.ID, Repo: r.Repo.String(), Where: where, Kind: r.Kind, Status: r.Status, Reason: r.Reason,
		When: momentOf(now, at), LogURL: r.LogURL}
}

func momentOf(now, t time.Time) Moment {
	if t.IsZero() {
		return Moment{}
	}
	return Moment{Ago: ago(now.Sub(t)) + " ago", ISO: t.UTC().Format(time.RFC3339)}
}

// ago says a duration the way a person reads a page: the largest whole unit.
func ago(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s", max(0, int(d/time.Second)))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h", int(d/time.Hour))
	}
	return fmt.Sprintf("%d days", int(d/(24*time.Hour)))
}
