// Package bot assembles the bot's parts and is what internal/server and cmd/ call: Handle passes each event to
// its handler (bot/events), Recover finishes what a previous process left behind, Wait and Shutdown wait for the
// job runner (bot/jobrun). The apply sequence is bot/apply, the reporter bot/report. State lives in the store first and is reported to the forge from there, so a restart only has to re-report
// what is stored and re-attach to, or re-run, the jobs a previous process left behind.
package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/dagctl/dagctl-bot/internal/bot/apply"
	"github.com/dagctl/dagctl-bot/internal/bot/approvals"
	"github.com/dagctl/dagctl-bot/internal/bot/events"
	"github.com/dagctl/dagctl-bot/internal/bot/jobrun"
	"github.com/dagctl/dagctl-bot/internal/bot/prstate"
	"github.com/dagctl/dagctl-bot/internal/bot/report"
	"github.com/dagctl/dagctl-bot/internal/bot/writes"
	"github.com/dagctl/dagctl-bot/internal/framework"
	"github.com/dagctl/dagctl-bot/internal/image"
	"github.com/dagctl/dagctl-bot/internal/jobs"
	"github.com/dagctl/dagctl-bot/internal/outbox"
	"github.com/dagctl/dagctl-bot/internal/repoconfig"
	"github.com/dagctl/dagctl-bot/internal/retry"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// Store is what the bot keeps durably (prstate.Store).
type Store = prstate.Store

// Bot handles events.
type Bot struct {
	store    Store
	forges   func(name string) (vcs.Forge, bool) // by forge name ("github")
	log      *slog.Logger
	prLocks  *prstate.PRLocks
	report   *report.Reporter
	runner   *jobrun.Runner
	applies  *apply.Sequence
	handlers *events.Handlers
	writes   *writes.Writes
}

// Options configure a Bot.
type Options struct {
	Store  Store
	Forges func(name string) (vcs.Forge, bool)
	// Outbox takes every write to a forge; its sender (run by the server) sends them.
	Outbox       *outbox.Outbox
	Executor     jobs.Executor
	ExecutorName string
	// Jobs are the job settings: the frameworks this bot runs, the operator's variables and setup steps.
	Jobs framework.JobSettings
	// Images build dbt deploy images, by builder (apply.Sequence.Images).
	Images map[repoconfig.ImageBuilder]image.Builder
	// PublicURL is the bot's public base URL; log links point there. Empty: no links.
	PublicURL string
	// LogKey signs log links (/runs/{id}/{signature}), so that run ids cannot be enumerated.
	LogKey []byte
	// MaxJobs bounds concurrent jobs (default 4).
	MaxJobs int
	Log     *slog.Logger
	// Secrets are masked in every stored log line (the bot's own credentials, as a last line of defence).
	Secrets []string
	// CommandExpiry: comment commands handled later than this after their delivery was received are not run
	// (0: never expire). Now is the clock it is measured on (default the wall clock).
	CommandExpiry time.Duration
	Now           func() time.Time
	// ForgeRetry and ForgeClock are how plan jobs and applies wait out the forge's transient errors once their
	// delivery is done: the deliveries' retry window, on the server's clock (tests: the fake forge's).
	ForgeRetry retry.Policy
	ForgeClock retry.Clock
	// LockWaits is told how long applies waited for their environment's lock (the metrics). Optional.
	LockWaits apply.LockWaits
}

// New returns a Bot.
func New(o Options) *Bot {
	if o.MaxJobs <= 0 {
		o.MaxJobs = 4
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.ExecutorName == "" {
		o.ExecutorName = "local"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	w := &writes.Writes{Outbox: o.Outbox, Legacy: o.Store}
	evaluator := &approvals.Evaluator{Store: o.Store, Writes: w, Log: o.Log}
	reporter := &report.Reporter{Store: o.Store, Approvals: evaluator, Writes: w, Log: o.Log, PublicURL: o.PublicURL, LogKey: o.LogKey}
	locks := &prstate.PRLocks{}
	runner := jobrun.New(jobrun.Config{Store: o.Store, Forges: o.Forges, Executor: o.Executor, ExecutorName: o.ExecutorName,
		Jobs: o.Jobs, Report: reporter, Locks: locks, Log: o.Log, MaxJobs: o.MaxJobs, Secrets: o.Secrets,
		ForgeRetry: o.ForgeRetry, ForgeClock: o.ForgeClock})
	applies := &apply.Sequence{Store: o.Store, Forges: o.Forges, Runner: runner, Report: reporter, Approvals: evaluator,
		Locks: locks, Log: o.Log, ExecutorName: o.ExecutorName, Images: o.Images, LockWaits: o.LockWaits}
	handlers := &events.Handlers{Store: o.Store, Executor: o.Executor, ExecutorName: o.ExecutorName, Log: o.Log, Locks: locks,
		Report: reporter, Approvals: evaluator, Runner: runner, Applies: applies, CommandExpiry: o.CommandExpiry, Now: o.Now}
	runner.PlanEnded = handlers.MergeAfterPlan // a merge that waited for the plan is carried out when it ends
	return &Bot{
		store: o.Store, forges: o.Forges, log: o.Log, prLocks: locks, report: reporter, runner: runner, applies: applies, writes: w,
		handlers: handlers,
	}
}

// Handle acts on one event. It is called by the dispatcher, in order for events of one PR.
func (b *Bot) Handle(ctx context.Context, ev vcs.Event) error {
	ctx = prstate.WithDelivery(ctx, ev.Repo.Forge, ev.DeliveryID) // a replay of the delivery repeats no reply
	if ev.Installation != nil {
		return b.handlers.Installation(ctx, ev.Repo.Forge, *ev.Installation)
	}
	forge, ok := b.forges(ev.Repo.Forge)
	if !ok {
		return fmt.Errorf("no forge %q configured", ev.Repo.Forge)
	}
	if ev.Repo.Account != "" {
		inst, err := b.store.GetInstallation(ctx, ev.Repo.Forge, ev.Repo.Account)
		if err == nil && inst.Suspended {
			return vcs.ErrIgnored // a suspended installation is not served
		}
	}
	switch {
	case ev.PullRequest != nil:
		return b.handlers.PullRequest(ctx, forge, *ev.PullRequest)
	case ev.Comment != nil:
		return b.handlers.Comment(ctx, forge, ev.Repo, *ev.Comment, ev.ReceivedAt)
	case ev.Review != nil:
		return b.handlers.Review(ctx, forge, *ev.Review)
	case ev.Rerequest != nil:
		return b.handlers.Rerequest(ctx, forge, ev.Repo, *ev.Rerequest)
	case ev.Push != nil:
		return b.handlers.Push(ctx, forge, ev.Repo, *ev.Push)
	case ev.Pipeline != nil:
		return b.handlers.Pipeline(ctx, forge, ev.Repo, *ev.Pipeline)
	}
	return vcs.ErrIgnored
}

// PlanMissed plans a pull request whose event the bot never got (the reconcile found its head unplanned), as
// when it is opened: its older heads' plans go stale, its head is planned unless it is already. Nothing to do
// (a repository that has not opted in, a draft) is not an error.
func (b *Bot) PlanMissed(ctx context.Context, pr vcs.PullRequest) error {
	err := b.Handle(ctx, vcs.Event{Repo: pr.Repo, PullRequest: &vcs.PullRequestEvent{Action: vcs.PROpened, PR: pr, Sender: pr.Author}})
	if errors.Is(err, vcs.ErrIgnored) {
		return nil
	}
	return err
}

// lockPR serialises work on one PR's checks and sticky comment.
func (b *Bot) lockPR(repo vcs.Repo, number int) func() { return b.prLocks.Lock(repo, number) }

// LogSignature signs a run id for its log link; the server checks it before showing the log.
func LogSignature(key []byte, runID int64) string { return report.LogSignature(key, runID) }

// AddSecrets masks more values in stored logs from now on (credentials the bot learns while it runs, such as
// an app created through /setup).
func (b *Bot) AddSecrets(secrets ...string) { b.runner.AddSecrets(secrets...) }

// Wait blocks until every job the bot started has finished and been reported.
func (b *Bot) Wait() { b.runner.Wait() }

// Shutdown stops accepting jobs and waits for running ones to be reported (or ctx to end).
func (b *Bot) Shutdown(ctx context.Context) error { return b.runner.Shutdown(ctx) }
