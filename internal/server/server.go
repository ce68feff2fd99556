// Package server assembles dagctl-bot from its parts (store, forge adapters, executor, intake, dispatcher, bot)
// and serves its HTTP endpoints. Each part is built by its own small function; nothing here decides anything.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/gorilla/mux"
	"k8s.io/client-go/kubernetes"

	"github.com/dagctl/dagctl-bot/internal/bot"
	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/dispatch"
	"github.com/dagctl/dagctl-bot/internal/framework"
	"github.com/dagctl/dagctl-bot/internal/framework/dbt"
	"github.com/dagctl/dagctl-bot/internal/framework/sqlmesh"
	"github.com/dagctl/dagctl-bot/internal/image"
	"github.com/dagctl/dagctl-bot/internal/jobs"
	"github.com/dagctl/dagctl-bot/internal/jobs/kube"
	"github.com/dagctl/dagctl-bot/internal/metrics"
	"github.com/dagctl/dagctl-bot/internal/outbox"
	"github.com/dagctl/dagctl-bot/internal/recovery"
	"github.com/dagctl/dagctl-bot/internal/repoconfig"
	"github.com/dagctl/dagctl-bot/internal/retry"
	"github.com/dagctl/dagctl-bot/internal/serverconfig"
	"github.com/dagctl/dagctl-bot/internal/setup"
	"github.com/dagctl/dagctl-bot/internal/vcs"
	ghadapter "github.com/dagctl/dagctl-bot/internal/vcs/github"
	gladapter "github.com/dagctl/dagctl-bot/internal/vcs/gitlab"
	"github.com/dagctl/dagctl-bot/internal/web"
	"github.com/dagctl/dagctl-bot/internal/web/auth"
	"github.com/dagctl/dagctl-bot/internal/webhook"
)

// Options are what tests (and only tests) change besides the configuration.
type Options struct {
	Log *slog.Logger
	// Manifest is app-manifest.yml for /setup; empty disables the manifest flow.
	Manifest []byte
	// GitHubWebURL is GitHub's web address for the manifest flow (default derived from the API URL).
	GitHubWebURL string
	// Now and Sleep drive the GitHub adapter's rate-limit waits, the outbox's spacing and retries, and the waits
	// of plan jobs and applies for the forge (tests pass the fake forge's clock).
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
	// StoreClock is the clock the store stamps rows with and schedules delivery retries by, which the
	// dispatcher and command expiry read too (default the wall clock; an outage test passes the fake forge's).
	StoreClock func() time.Time
	// ExecutionTime fixes sqlmesh's "now" for reproducible plans in tests.
	ExecutionTime string
	// Executor replaces the configured executor (tests of the Kubernetes executor bring their own).
	Executor jobs.Executor
	// KubeClient is the cluster `builder: dockerfile` images are built in when Executor is given (tests); by
	// default the Kubernetes executor's.
	KubeClient kubernetes.Interface
	// Environ is the bot's environment, the only source of variables passed to jobs (default os.Environ).
	Environ []string
	// MaxJobs bounds concurrent jobs (default 4).
	MaxJobs int
	// Forges are served besides GitHub, each at /webhooks/{name} (tests register a forge of their own; adapters
	// configured by the settings are added the same way).
	Forges []Forge
	// Frameworks are run besides the built-in ones (sqlmesh, dbt); one named as a built-in replaces it (tests
	// register stand-ins of their own).
	Frameworks []framework.Framework
	// ImageBuilders replace the bot's dbt deploy image builders, by builder (default: layers, an
	// image.LayerBuilder with the operator's registry keychain, the bot's docker config; tests bring one for
	// their in-process registry).
	ImageBuilders map[repoconfig.ImageBuilder]image.Builder
	// Viewer says who makes a web request (default: everyone is web.Anonymous); tests pass a stand-in for
	// sign-in.
	Viewer func(*http.Request) web.Viewer
	// WebClock is the clock web sessions and the read-access cache expire on (default the wall clock).
	WebClock func() time.Time
}

// Server is a running dagctl-bot.
type Server struct {
	cfg      serverconfig.Config
	opts     Options
	log      *slog.Logger
	store    *db.Store
	executor jobs.Executor
	forges   *forgeSet
	intake   *webhook.Intake
	bot      *bot.Bot

	recoveryOnce     sync.Once
	recoveryStepList []recovery.Step
	outbox           *outbox.Outbox
	// sending is closed when the outbox's sender (started by Start) has stopped.
	sending    chan struct{}
	stopSender context.CancelFunc
	dispatcher *dispatch.Dispatcher
	router     *mux.Router
	pages      *web.Pages
	// credentials are the GitHub App's key and webhook secret in use (from settings or /setup), to mask in logs.
	credentials []string
	// logKey signs log links and, for Kubernetes, the per-run report tokens; it is stored, so it survives restarts.
	logKey []byte
	// isolation is how local jobs are kept from the bot and from each other.
	isolation jobIsolation
	// kubeClient and kubeInstance are the Kubernetes executor's cluster and instance (nil: not on Kubernetes).
	kubeClient   kubernetes.Interface
	kubeInstance string
	// images are the deploy-image builders (imagebuild.go).
	images imageBuilders
	// web is sign-in for the web pages, access their read rule (web.go).
	web    *auth.Web
	access *auth.Access
	// metrics are served at /metrics, from a registry of the server's own.
	metrics *metrics.Metrics

	ready  sync.Once
	cancel context.CancelFunc
	done   chan struct{}
}

// New opens the store and builds every part. It starts nothing; call Start.
// It is long because it wires every part in dependency order; each step is a line or two.
func New(ctx context.Context, cfg serverconfig.Config, opts Options) (*Server, error) {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Environ == nil {
		opts.Environ = os.Environ()
	}
	s := &Server{cfg: cfg, opts: opts, log: opts.Log, forges: newForgeSet(), metrics: metrics.New()}
	if err := s.registerForges(); err != nil {
		return nil, err
	}
	if err := s.isolateJobs(); err != nil {
		return nil, err
	}
	// The database's directory of its own (the default path names one), private from the start.
	if err := os.MkdirAll(filepath.Dir(cfg.DB), 0o700); err != nil {
		return nil, fmt.Errorf("the database's directory: %w", err)
	}
	storeOpts := []db.Option{db.WithRunLogMaxBytes(cfg.RunLogMaxBytes)}
	if opts.StoreClock != nil {
		storeOpts = append(storeOpts, db.WithClock(opts.StoreClock))
	}
	store, err := db.Open(cfg.DB, storeOpts...)
	if err != nil {
		return nil, fmt.Errorf("opening the database %s: %w", cfg.DB, err)
	}
	s.store = store
	s.metrics.CollectStore(store, store.Now)
	if s.logKey, err = store.SigningKey(ctx, "log-links"); err != nil {
		store.Close()
		return nil, err
	}
	if err := s.configureGitHub(ctx); err != nil {
		store.Close()
		return nil, err
	}
	if err := s.newWeb(ctx); err != nil {
		store.Close()
		return nil, err
	}
	if warning := s.gitLabCloneWarning(); warning != "" {
		s.log.Warn(warning)
	}
	if s.executor, err = s.newExecutor(); err != nil {
		store.Close()
		return nil, err
	}
	if s.kubeClient == nil {
		s.kubeClient = opts.KubeClient
	}
	// The layers builder pushes with the operator's keychain (the bot's docker config, $DOCKER_CONFIG), never
	// with anything of a PR's.
	s.images = imageBuilders{kubernetes: s.cfg.Executor == serverconfig.ExecutorKubernetes || s.kubeClient != nil,
		layers: &image.LayerBuilder{Keychain: authn.DefaultKeychain}}
	if s.images.dockerfile, err = newDockerfileBuilder(s.kubeClient, s.kubeInstance, s.cfg.Builds, s.log); err != nil {
		store.Close()
		return nil, err
	}
	if k, ok := s.executor.(*kube.Executor); ok {
		// A Pod's report (an apply's manifest) is kept before it is answered, for a restart in between.
		k.KeepArtifactsIn(store)
	}
	settings, err := s.jobSettings()
	if err != nil {
		store.Close()
		return nil, err
	}
	s.outbox = s.newOutbox()
	s.bot = bot.New(bot.Options{
		Store:        store,
		Forges:       s.forges.get,
		Outbox:       s.outbox,
		Executor:     s.metrics.Executor(s.executor, nil), // the server keeps the executor itself, to stop it
		ExecutorName: string(cfg.Executor),
		Jobs:         settings,
		Images:       s.images.byKind(opts.ImageBuilders),
		PublicURL:    cfg.PublicURL,
		LogKey:       s.logKey,
		Log:          s.log,
		Secrets:      s.secrets(),
		MaxJobs:      opts.MaxJobs,
		// Expiry is measured from the intake's receipt stamp, on the store's clock.
		CommandExpiry: cfg.CommandExpiry,
		Now:           store.Now,
		// Background work waits the forge out as long as a delivery would, on the clock the outbox spaces by.
		ForgeRetry: retry.Policy{For: cfg.RetryFor},
		ForgeClock: retry.Clock{Now: opts.Now, Sleep: opts.Sleep},
		LockWaits:  s.metrics,
	})
	s.dispatcher = &dispatch.Dispatcher{
		Queue:   store,
		Parsers: s.forges.parsers(),
		Handle:  s.handleAllowed,
		Log:     s.log,
		Policy:  retry.Policy{For: cfg.RetryFor},
		Now:     store.Now,
		OnDead:  s.deliveryDied,
	}
	s.router = s.routes()
	return s, nil
}

// deliveryDied tells the bot of a delivery that died, so that a merge it could not act on is told on the PR.
func (s *Server) deliveryDied(ctx context.Context, del db.Delivery, ev vcs.Event, _ error) {
	window := s.cfg.RetryFor
	if window <= 0 {
		window = retry.DefaultFor
	}
	if err := s.bot.DeliveryDied(ctx, del.ID, ev, window); err != nil {
		s.log.Error("telling the PR about a dead delivery", "id", del.ID, "err", err)
	}
}

// GitHub's statuses are check runs, created by one call: a resumed send must find the one it may have created.
var _ outbox.StatusFinder = (*ghadapter.App)(nil)

// newOutbox is the outbox of the server's store, sending through the forge set's ports, spaced and retried on
// the server's clock (tests pass the fake forge's, so spacing costs no real time).
func (s *Server) newOutbox() *outbox.Outbox {
	forges := func(a outbox.Account) (outbox.Forge, error) {
		port, ok := s.forges.get(a.Forge)
		if !ok {
			return nil, fmt.Errorf("forge %q is not configured", a.Forge)
		}
		return port, nil
	}
	return outbox.New(s.store, forges, outbox.Config{Now: s.opts.Now, Sleep: s.opts.Sleep, Log: s.log, RetryFor: s.cfg.RetryFor})
}

// jobSettings are the settings every job is built from: the frameworks the bot runs and the operator's rules.
func (s *Server) jobSettings() (framework.JobSettings, error) {
	python := "python"
	if s.cfg.Executor == serverconfig.ExecutorLocal {
		python = filepath.Join(filepath.Dir(s.cfg.SQLMesh), "python")
		if _, err := os.Stat(python); err != nil {
			return framework.JobSettings{}, fmt.Errorf("DAGCTL_SQLMESH=%s: no python beside it (%v); install sqlmesh in a virtualenv (`make tools`)", s.cfg.SQLMesh, err)
		}
	}
	// dbt runs with the interpreter sqlmesh's planner runs with: the tools' virtualenv (local), the image's
	// python (Kubernetes).
	frameworks, err := framework.NewRegistry(withFrameworks([]framework.Framework{sqlmesh.New(python), dbt.New(python)}, s.opts.Frameworks)...)
	if err != nil {
		return framework.JobSettings{}, err
	}
	return framework.JobSettings{
		Frameworks:    frameworks,
		Allowed:       s.cfg.JobEnv,
		BotEnv:        jobs.EnvMap(s.opts.Environ),
		Image:         s.cfg.Kubernetes.Image,
		ExecutionTime: s.opts.ExecutionTime,
		Setup:         s.cfg.JobSetup,
		// builder: dockerfile without a cluster to build in is a config error at plan time.
		RefuseImageBuilder: s.images.refuse,
	}, nil
}

// withFrameworks is builtin with each framework of extra of the same name in its place, then extra's others.
func withFrameworks(builtin, extra []framework.Framework) []framework.Framework {
	replaced := map[repoconfig.Framework]bool{}
	for _, f := range extra {
		replaced[f.Name()] = true
	}
	var out []framework.Framework
	for _, f := range builtin {
		if !replaced[f.Name()] {
			out = append(out, f)
		}
	}
	return append(out, extra...)
}

// secrets are the bot's credentials, masked in every stored log line: the settings' and the stored app's.
func (s *Server) secrets() []string {
	return append([]string{
		s.cfg.GitHub.PrivateKey.Reveal(), s.cfg.GitHub.WebhookSecret.Reveal(),
		s.cfg.GitLab.Token.Reveal(), s.cfg.GitLab.WebhookSecret.Reveal(), s.cfg.GitLab.CloneToken.Reveal(),
		s.cfg.GitHub.ClientSecret.Reveal(), s.cfg.GitLab.OAuthSecret.Reveal(), s.cfg.MetricsToken.Reveal(),
	}, append(sessionKeys(s.cfg.SessionKeys), s.credentials...)...)
}

// localJobs reports whether jobs run as local processes of the bot's machine.
func (s *Server) localJobs() bool {
	return s.opts.Executor == nil && s.cfg.Executor == serverconfig.ExecutorLocal
}

// isolateJobs decides which users local jobs run as and, when they are users of their own, makes the
// database's directory the bot's alone before the database is opened. Jobs that run as the bot's user are
// announced loudly: they can read everything the bot can.
func (s *Server) isolateJobs() error {
	if !s.localJobs() {
		return nil
	}
	python := filepath.Join(filepath.Dir(s.cfg.SQLMesh), "python")
	isolation, err := decideJobIsolation(s.cfg.JobUsers, python)
	if err != nil {
		return err
	}
	s.isolation = isolation
	if isolation.users == nil {
		s.log.Warn("jobs are not isolated: they run as the bot's own user, and "+notIsolatedRisk,
			"reason", isolation.notIsolated, "fix", notIsolatedFix)
		return nil
	}
	if err := prepareDatabaseDir(s.cfg.DB, s.cfg.WorkDir, s.cfg.SQLMesh, python); err != nil {
		return fmt.Errorf("%s=%s: %w", serverconfig.EnvDB, s.cfg.DB, err)
	}
	s.log.Info("jobs are isolated: each running job has a uid of its own", "users", isolation.users.String())
	return nil
}

func (s *Server) newExecutor() (jobs.Executor, error) {
	if s.opts.Executor != nil {
		return s.opts.Executor, nil
	}
	switch s.cfg.Executor {
	case serverconfig.ExecutorLocal:
		return jobs.NewLocal(jobs.LocalOptions{WorkDir: s.cfg.WorkDir, Users: s.isolation.users})
	case serverconfig.ExecutorKubernetes:
		return newKubeExecutor(s)
	}
	return nil, fmt.Errorf("unknown executor %q", s.cfg.Executor)
}

// Handler serves every endpoint.
func (s *Server) Handler() http.Handler { return s.router }

// Recover finishes what a previous process left unfinished: runs to follow or re-run, plans to report.
func (s *Server) Recover(ctx context.Context) error {
	if err := s.bot.Recover(ctx); err != nil {
		return fmt.Errorf("recovering runs: %w", err)
	}
	return nil
}

// Start recovers what a previous process left unfinished, then runs the dispatcher until Close.
func (s *Server) Start(ctx context.Context) error {
	if err := s.Recover(ctx); err != nil {
		return err
	}
	s.StartSending(ctx)
	ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	s.done = make(chan struct{})
	s.cleanOrphans(ctx)
	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		s.pruneEveryHour(ctx) // waited for, so that the store is not closed under a prune
	}()
	go func() {
		defer wg.Done()
		if err := s.dispatcher.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			s.log.Error("dispatcher stopped", "err", err)
		}
	}()
	go func() {
		defer wg.Done()
		s.recoveryLoop().Run(ctx) // webhooks sent while the bot was down, PRs whose head has no plan
	}()
	go func() {
		wg.Wait()
		close(s.done)
	}()
	return nil
}

// StartSending runs the outbox's sender until the server closes (Start does it; tests that drive the dispatcher
// themselves call it after Recover): it sends what the bot enqueues, and what a previous process left unsent.
func (s *Server) StartSending(ctx context.Context) {
	if s.stopSender != nil {
		return
	}
	ctx, s.stopSender = context.WithCancel(context.WithoutCancel(ctx))
	s.sending = make(chan struct{})
	go func() {
		defer close(s.sending)
		if err := s.outbox.Run(ctx); err != nil {
			s.log.Error("outbox sender stopped", "err", err)
		}
	}()
}

// stopSending stops the outbox's sender and waits for it; unsent writes stay in the store for the next start.
func (s *Server) stopSending() {
	if s.stopSender != nil {
		s.stopSender()
		<-s.sending
		s.stopSender = nil
	}
}

// WaitWrites waits until the sender has sent every due write (writes waiting for a retry's backoff stay); tests
// use it, with Drain and WaitJobs, to wait until the forge shows everything.
func (s *Server) WaitWrites(ctx context.Context) error {
	s.outbox.Wake() // a test's clock may have moved writes into their time
	for {
		quiet, err := s.outbox.Quiet(ctx)
		if err != nil || quiet {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond): // the sender works in the background; this only watches it
		}
	}
}

// Drain handles every queued delivery now; tests use it to wait for the intake's work.
func (s *Server) Drain(ctx context.Context) int { return s.dispatcher.Drain(ctx) }

// WaitJobs blocks until every job started so far has finished and been reported.
func (s *Server) WaitJobs() { s.bot.Wait() }

// Store is the server's store, for tests and the CLI.
func (s *Server) Store() *db.Store { return s.store }

// Close stops the dispatcher, waits for running jobs to be reported (up to ctx) and closes the store.
func (s *Server) Close(ctx context.Context) error {
	if s.cancel != nil {
		s.cancel()
		<-s.done
	}
	err := s.bot.Shutdown(ctx) // running jobs may finish and be reported until ctx ends
	// Then the executor lets go of the rest: local processes are killed, Kubernetes Jobs go on without the bot.
	// Their runs stay unfinished in the store, for the next start to re-attach to or run again; the bot's
	// goroutines notice and return without reporting, and only then does the store close.
	stop, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if l, ok := s.executor.(interface{ Shutdown(context.Context) error }); ok {
		_ = l.Shutdown(stop)
	}
	if k, ok := s.executor.(interface{ Close() }); ok {
		k.Close()
	}
	if werr := s.bot.Shutdown(stop); werr != nil {
		s.log.Warn("stopping with runs still being reported", "err", werr)
	}
	s.stopSending() // after the bot: what it reported last is sent by the next start if not now
	return errors.Join(err, s.store.Close())
}

// Crash stops the server the way a crash would for everything recovery depends on: the store closes first, so
// nothing more is recorded or reported, then the executor's jobs are killed. Tests use it to prove that a
// restart finishes the work.
func (s *Server) Crash() {
	if s.cancel != nil {
		s.cancel()
		<-s.done
	}
	s.stopSending()
	_ = s.store.Close()
	if l, ok := s.executor.(interface{ Shutdown(context.Context) error }); ok {
		_ = l.Shutdown(context.Background())
	}
	s.bot.Wait()
}

// KillLeavingJobs stops the server as SIGKILL would: like Crash, but the executor's jobs are left running (a
// killed bot stops no local process) and nothing is waited for. Tests use it to prove that the next start
// stops what was left before it ends the runs.
func (s *Server) KillLeavingJobs() {
	if s.cancel != nil {
		s.cancel()
		<-s.done
	}
	s.stopSending()
	_ = s.store.Close()
}

// registerForges registers GitHub (configured later, from the settings or /setup) and the forges of the options,
// which come configured.
func (s *Server) registerForges() error {
	if err := s.forges.add(gitHubForge()); err != nil {
		return err
	}
	if gl := s.cfg.GitLab; gl.Enabled() {
		client := &http.Client{Transport: s.metrics.Transport(gladapter.Name, nil)}
		forge, err := gitLabForge(gl.URL, gl.Token.Reveal(), gl.CloneToken.Reveal(), []byte(gl.WebhookSecret.Reveal()), client)
		if err != nil {
			return fmt.Errorf("gitlab: %w", err)
		}
		if err := s.forges.add(forge); err != nil {
			return err
		}
	}
	for _, forge := range s.opts.Forges {
		if err := s.forges.add(forge); err != nil {
			return err
		}
		if len(forge.Secret) > 0 {
			s.credentials = append(s.credentials, string(forge.Secret))
		}
	}
	return nil
}

// configureGitHub sets the GitHub App up from the settings (which win) or from credentials stored by /setup.
func (s *Server) configureGitHub(ctx context.Context) error {
	gh := s.cfg.GitHub
	if gh.Enabled() {
		return s.useGitHubApp(gh.AppID, []byte(gh.PrivateKey.Reveal()), []byte(gh.WebhookSecret.Reveal()))
	}
	creds, err := s.store.AppCredentials(ctx, ghadapter.Forge)
	if err != nil && !errors.Is(err, db.ErrNotFound) {
		return fmt.Errorf("reading stored app credentials: %w", err)
	}
	if err != nil {
		if s.cfg.GitLab.Enabled() {
			// A bot set up for GitLab alone is not missing anything; /setup can still add GitHub.
			s.log.Info("serving GitLab without a GitHub App: /webhooks/github answers 503 until one is set (DAGCTL_GITHUB_* or /setup)")
			return nil
		}
		s.log.Warn("no GitHub App configured: webhooks are refused until one is (set DAGCTL_GITHUB_* or open /setup with the setup code)")
		return nil
	}
	return s.useGitHubApp(creds.AppID, []byte(creds.PrivateKeyPEM), []byte(creds.WebhookSecret))
}

func (s *Server) useGitHubApp(appID int64, key, secret []byte) error {
	app, err := ghadapter.NewApp(ghadapter.Config{
		AppID: appID, PrivateKey: key, APIURL: s.cfg.GitHub.APIURL, Now: s.opts.Now, Sleep: s.opts.Sleep,
		Transport: s.metrics.Transport(ghadapter.Forge, nil),
	})
	if err != nil {
		return fmt.Errorf("GitHub App %d: %w", appID, err)
	}
	s.forges.configure(ghadapter.Forge, app, secret)
	s.credentials = append(s.credentials, string(key), string(secret))
	if s.bot != nil {
		s.bot.AddSecrets(string(key), string(secret))
	}
	return nil
}

func (s *Server) routes() *mux.Router {
	r := mux.NewRouter()
	r.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") }).Methods(http.MethodGet)
	r.HandleFunc("/readyz", s.readyz).Methods(http.MethodGet)
	// One intake for every forge: one body budget, each forge's headers, verifier and ordering.
	s.intake = &webhook.Intake{Queue: s.store, Notify: s.dispatcher.Notify, Log: s.log, Observer: s.metrics}
	for _, src := range s.forges.sources() {
		r.Handle("/webhooks/"+src.Forge, s.intake.For(src))
	}
	s.mountWeb(r) // sign-in, and the pages behind it: /runs/{id}
	r.Handle("/metrics", s.metricsHandler()).Methods(http.MethodGet)
	if len(s.opts.Manifest) > 0 {
		r.PathPrefix("/setup").Handler(s.setupHandler())
	}
	s.mountExecutor(r)
	s.mountPages(r) // the home page and the pages' 404, last
	return r
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		http.Error(w, "database not ready: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ready")
	if line := s.isolation.describe(); line != "" {
		fmt.Fprintln(w, line)
	}
	if warning := s.gitLabCloneWarning(); warning != "" {
		fmt.Fprintln(w, "warning:", warning)
	}
	// Dead deliveries need an operator, not a restart: readiness stays ok, the detail says so.
	if dead, err := s.store.DeadDeliveries(ctx); err != nil {
		fmt.Fprintln(w, "dead deliveries: unknown:", err)
	} else if dead.Count > 0 {
		fmt.Fprintf(w, "dead deliveries: %d, the oldest received %s (`dagctl-bot deliveries list --dead`)\n",
			dead.Count, dead.Oldest.UTC().Format(time.RFC3339))
	}
}

func (s *Server) setupHandler() http.Handler {
	web := s.opts.GitHubWebURL
	if web == "" {
		web = gitHubWebURL(s.cfg.GitHub.APIURL)
	}
	code := ""
	if !s.forges.configured(ghadapter.Forge) {
		// Printed once, here: reading the bot's log is what proves the visitor of /setup is its operator.
		code = setup.NewCode()
		// A bot serving GitLab alone is set up as its operator meant: the code is for adding GitHub, not a warning.
		level := slog.LevelWarn
		if s.cfg.GitLab.Enabled() {
			level = slog.LevelInfo
		}
		s.log.Log(context.Background(), level, "no GitHub App configured: create one through the manifest flow with this one-time setup code",
			"open", strings.TrimRight(s.cfg.PublicURL, "/")+setup.SetupPath(code))
	}
	return &setup.Handler{
		SetupCode:  code,
		PublicURL:  s.cfg.PublicURL,
		WebURL:     web,
		Manifest:   s.opts.Manifest,
		Configured: func() bool { return s.forges.configured(ghadapter.Forge) },
		Exchange: func(ctx context.Context, code string) (setup.Credentials, error) {
			c, err := ghadapter.ExchangeManifestCode(ctx, s.cfg.GitHub.APIURL, code)
			if err != nil {
				return setup.Credentials{}, err
			}
			return setup.Credentials{AppID: c.ID, Slug: c.Slug, PrivateKeyPEM: c.PEM, WebhookSecret: c.WebhookSecret,
				ClientID: c.ClientID, ClientSecret: c.ClientSecret, HTMLURL: c.HTMLURL}, nil
		},
		Save: func(ctx context.Context, c setup.Credentials) error {
			if err := s.store.SaveAppCredentials(ctx, ghadapter.Forge, db.AppCredentials{
				AppID: c.AppID, Slug: c.Slug, PrivateKeyPEM: c.PrivateKeyPEM, WebhookSecret: c.WebhookSecret,
				ClientID: c.ClientID, ClientSecret: c.ClientSecret,
			}); err != nil {
				return err
			}
			if err := s.useGitHubApp(c.AppID, []byte(c.PrivateKeyPEM), []byte(c.WebhookSecret)); err != nil {
				return err
			}
			return s.refreshSignIn(ctx) // sign in with the new app's client
		},
		Log: s.log,
	}
}

// gitHubWebURL derives the web address from the API address: api.github.com → github.com; a GitHub Enterprise
// Server's https://HOST/api/v3/ → https://HOST/.
func gitHubWebURL(apiURL string) string {
	base, _, err := ghadapter.APIURLs(apiURL)
	if err != nil || base == "https://api.github.com/" {
		return "https://github.com/"
	}
	if i := len(base) - len("api/v3/"); i > 0 && base[i:] == "api/v3/" {
		return base[:i]
	}
	return base
}
