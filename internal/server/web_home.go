package server

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/gorilla/mux"

	"github.com/dagctl/dagctl-bot/internal/bot"
	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/jobs"
	"github.com/dagctl/dagctl-bot/internal/serverconfig"
	ghadapter "github.com/dagctl/dagctl-bot/internal/vcs/github"
	"github.com/dagctl/dagctl-bot/internal/web"
	"github.com/dagctl/dagctl-bot/internal/web/auth"
)

// The home page's bounds: anyone who reaches the bot can ask for it, so every read is bounded.
const (
	homeListLimit     = 20   // items a section lists
	homeRepoLimit     = 100  // repositories a viewer is asked about (each may be a forge call)
	homeFailuresAmong = 5000 // the newest runs searched for failures
	homeFailuresFor   = 7 * 24 * time.Hour
	homeReadTimeout   = 5 * time.Second
)

// mountPages serves the pages: the home page at /, their style sheet, and the pages' 404 for paths nothing else
// serves.
func (s *Server) mountPages(r *mux.Router) {
	pages, err := web.NewPages(s.log)
	if err != nil {
		panic(err) // the templates are compiled in and parsed by internal/web's tests: a broken build
	}
	s.pages = pages
	r.HandleFunc("/", s.home).Methods(http.MethodGet, http.MethodHead)
	r.PathPrefix(web.AssetsPath).Handler(web.Assets()).Methods(http.MethodGet, http.MethodHead)
	r.NotFoundHandler = http.HandlerFunc(pages.NotFound)
}

// viewerOf is who makes the request: the signed-in user (web/auth's session), whose reads the forge decides
// (auth.Access, cached), else an anonymous visitor, who sees counts only. Tests may pass a stand-in.
func (s *Server) viewerOf(r *http.Request) web.Viewer {
	if s.opts.Viewer != nil {
		return s.opts.Viewer(r)
	}
	if s.web == nil {
		return web.Anonymous{}
	}
	u, ok := s.web.CurrentUser(r)
	if !ok {
		return web.Anonymous{}
	}
	return signedIn{user: u, s: s}
}

// signedIn is a signed-in viewer of the pages: what they may read is the forge's word (auth.Access).
type signedIn struct {
	user auth.User
	s    *Server
}

func (v signedIn) Login() string { return v.user.Login }

// MayRead fails closed: a repository the store does not know, or a forge that cannot be asked, is not read.
func (v signedIn) MayRead(ctx context.Context, ref web.RepoRef) bool {
	repo, ok := v.s.storedRepo(ctx, ref.Forge, ref.FullName, "")
	if !ok {
		return false
	}
	d, err := v.s.access.MayRead(ctx, v.user, repo)
	return err == nil && d.Allowed
}

func (s *Server) home(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), homeReadTimeout)
	defer cancel()
	facts, err := s.homeFacts(ctx)
	if err != nil {
		s.log.Error("the home page: reading the store", "err", err)
		s.pages.Error(w, http.StatusServiceUnavailable, "The database did not answer",
			"dagctl-bot could not read its database; its log says why.")
		return
	}
	access := web.AccessOf(ctx, s.viewerOf(r), facts.RepoRefs())
	s.pages.Render(w, http.StatusOK, "home", web.BuildHome(facts, access))
}

// homeFacts gathers what the home page shows from the forge set and the store. A bot with no configured forge
// reads nothing: its page says what to do next.
func (s *Server) homeFacts(ctx context.Context) (web.HomeFacts, error) {
	f := web.HomeFacts{Now: s.store.Now(), Setup: s.forgeSetup()}
	f.FailuresSince = f.Now.Add(-homeFailuresFor)
	for _, name := range s.forges.names() {
		if s.forges.configured(name) {
			f.Forges = append(f.Forges, name)
		}
	}
	if len(f.Forges) == 0 {
		return f, nil
	}
	var err error
	if f.Repos, err = s.homeRepos(ctx); err != nil {
		return f, err
	}
	f.ReposTotal = len(f.Repos)
	f.Repos = f.Repos[:min(len(f.Repos), homeRepoLimit)]
	mask := jobs.NewRedactor(s.secrets()...).Redact
	running, total, err := s.store.UnfinishedRunsOfPlans(ctx, homeListLimit)
	if err != nil {
		return f, err
	}
	f.Running, f.RunningTotal = s.homeRuns(running, mask), total
	failed, total, err := s.store.FailedRunsOfPlans(ctx, db.RecentFailures{Among: homeFailuresAmong, Since: f.FailuresSince, Limit: homeListLimit})
	if err != nil {
		return f, err
	}
	f.Failures, f.FailuresTotal = s.homeRuns(failed, mask), total
	dead, err := s.store.DeadDeliveries(ctx)
	if err != nil {
		return f, err
	}
	newest, err := s.store.NewestDeadDeliveries(ctx, homeListLimit)
	if err != nil {
		return f, err
	}
	f.DeadTotal = dead.Count
	for _, d := range newest {
		f.Dead = append(f.Dead, web.DeadDelivery{ID: d.ID, Forge: d.Forge, DeliveryID: d.DeliveryID, Event: d.Event,
			OrderingKey: d.OrderingKey, Attempts: d.Attempts, LastError: mask(d.LastError), ReceivedAt: d.ReceivedAt})
	}
	return f, nil
}

// homeRepos are the repositories the bot serves: those its installations name and those it has planned for
// (GitLab names none by installation), each once, with its newest plan, the most recently planned first.
func (s *Server) homeRepos(ctx context.Context) ([]web.Repo, error) {
	repos, err := s.store.ListRepos(ctx)
	if err != nil {
		return nil, err
	}
	latest, err := s.store.LatestPlanPerRepo(ctx)
	if err != nil {
		return nil, err
	}
	var out []web.Repo
	at := map[string]int{}
	add := func(ref web.RepoRef) int {
		i, ok := at[ref.Key()]
		if !ok {
			i = len(out)
			at[ref.Key()] = i
			out = append(out, web.Repo{Ref: ref})
		}
		return i
	}
	for _, r := range repos {
		add(web.RepoRef{Forge: r.Forge, FullName: r.FullName})
	}
	for _, p := range latest {
		i := add(web.RepoRef{Forge: p.Forge, FullName: p.Repo})
		out[i].LastPlan, out[i].LastPlanAt = string(p.Status), p.UpdatedAt
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].LastPlanAt.After(out[j].LastPlanAt) })
	return out, nil
}

func (s *Server) homeRuns(runs []db.RunOfPlan, mask func(string) string) []web.Run {
	var out []web.Run
	for _, r := range runs {
		out = append(out, web.Run{ID: r.ID, Repo: web.RepoRef{Forge: r.Forge, FullName: r.Repo}, PR: r.PR,
			Project: r.Project, Environment: r.Environment, Kind: string(r.Kind), Status: string(r.Status),
			Reason: mask(r.Reason), CreatedAt: r.CreatedAt, StartedAt: r.StartedAt, FinishedAt: r.FinishedAt,
			LogURL: fmt.Sprintf("/runs/%d/%s", r.ID, bot.LogSignature(s.logKey, r.ID))})
	}
	return out
}

// forgeSetup is how this bot can be given a forge: the manifest flow while /setup serves it, or the settings.
func (s *Server) forgeSetup() web.Setup {
	return web.Setup{
		ManifestFlow: len(s.opts.Manifest) > 0 && !s.forges.configured(ghadapter.Forge),
		GitHubSettings: []web.Setting{
			{Name: serverconfig.EnvGitHubAppID, Required: true, What: "the app's id"},
			{Name: serverconfig.EnvGitHubPrivateKey, Required: true, What: "its private key (PEM)"},
			{Name: serverconfig.EnvGitHubWebhookSecret, Required: true, What: "its webhook secret"},
			{Name: serverconfig.EnvGitHubAPIURL, What: "the API of a GitHub Enterprise Server"},
			{Name: serverconfig.EnvPublicURL, What: "the bot's public address, for webhooks and log links"},
		},
		GitLabSettings: []web.Setting{
			{Name: serverconfig.EnvGitLabToken, Required: true, What: "an api token of the bot's GitLab user"},
			{Name: serverconfig.EnvGitLabWebhookSecret, Required: true, What: "the secret token of the project's or group's webhook"},
			{Name: serverconfig.EnvGitLabURL, What: "the instance (default https://gitlab.com)"},
			{Name: serverconfig.EnvGitLabCloneToken, What: "a read_repository token jobs clone with (else the api token)"},
		},
	}
}
