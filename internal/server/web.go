package server

import (
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/dagctl/dagctl-bot/internal/bot"
	"github.com/dagctl/dagctl-bot/internal/bot/prstate"
	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/serverconfig"
	"github.com/dagctl/dagctl-bot/internal/vcs"
	ghadapter "github.com/dagctl/dagctl-bot/internal/vcs/github"
	gladapter "github.com/dagctl/dagctl-bot/internal/vcs/gitlab"
	"github.com/dagctl/dagctl-bot/internal/web/auth"
)

// The web pages show private code and logs: each page of a repository is shown only to a user signed in with
// the forge who may read the repository (internal/web/auth). This file holds the sign-in's wiring and routes.

// newWeb builds sign-in: the session keys (the settings', else a random key kept in the store), the forges to
// sign in with, and the read rule asked of the forges with the bot's own credentials.
func (s *Server) newWeb(ctx context.Context) error {
	var keys [][]byte
	for _, k := range s.cfg.SessionKeys {
		keys = append(keys, []byte(k.Reveal()))
	}
	if len(keys) == 0 {
		stored, err := s.store.SigningKey(ctx, "web-sessions")
		if err != nil {
			return fmt.Errorf("the web session key: %w", err)
		}
		keys = [][]byte{stored}
	}
	sealer, err := auth.NewSealer(keys...)
	if err != nil {
		return fmt.Errorf("%s: %w", "DAGCTL_SESSION_KEYS", err)
	}
	now := s.opts.WebClock
	s.web = &auth.Web{Sealer: sealer, Secure: strings.HasPrefix(s.cfg.PublicURL, "https://"), Now: now, Log: s.log}
	s.access = &auth.Access{Facts: forgeFacts{s.forges}, Now: now}
	return s.refreshSignIn(ctx)
}

// refreshSignIn sets the forges people may sign in with: GitHub with the settings' client or, without it, the
// one the manifest flow stored; GitLab with its OAuth application. Without DAGCTL_PUBLIC_URL there is no
// callback to send people back to, so no one can sign in.
func (s *Server) refreshSignIn(ctx context.Context) error {
	if s.cfg.PublicURL == "" {
		s.web.SetProviders()
		s.log.Info("web pages need DAGCTL_PUBLIC_URL to sign in: without it nobody can see a run's log")
		return nil
	}
	var providers []auth.Provider
	id, secret := s.cfg.GitHub.ClientID, s.cfg.GitHub.ClientSecret.Reveal()
	if id == "" {
		creds, err := s.store.AppCredentials(ctx, ghadapter.Forge)
		if err != nil && !errors.Is(err, db.ErrNotFound) {
			return fmt.Errorf("reading stored app credentials: %w", err)
		}
		id, secret = creds.ClientID, creds.ClientSecret
	}
	if id != "" && secret != "" {
		providers = append(providers, auth.GitHubProvider(s.gitHubWebURL(), s.cfg.GitHub.APIURL, id, secret,
			s.cfg.PublicURL+auth.CallbackPath(ghadapter.Forge)))
		s.addSecrets(secret)
	} else if s.forges.configured(ghadapter.Forge) {
		s.log.Warn("nobody can sign in with GitHub: the app's client id and secret are unknown (set DAGCTL_GITHUB_CLIENT_ID and DAGCTL_GITHUB_CLIENT_SECRET)")
	}
	if gl := s.cfg.GitLab; gl.Enabled() && gl.OAuthAppID != "" {
		providers = append(providers, auth.GitLabProvider(gl.URL, gl.OAuthAppID, gl.OAuthSecret.Reveal(),
			s.cfg.PublicURL+auth.CallbackPath(gladapter.Name)))
	}
	s.web.SetProviders(providers...)
	return nil
}

// addSecrets masks more of the bot's credentials in stored logs.
func (s *Server) addSecrets(values ...string) {
	s.credentials = append(s.credentials, values...)
	if s.bot != nil {
		s.bot.AddSecrets(values...)
	}
}

func (s *Server) gitHubWebURL() string {
	if s.opts.GitHubWebURL != "" {
		return s.opts.GitHubWebURL
	}
	return gitHubWebURL(s.cfg.GitHub.APIURL)
}

// mountWeb serves sign-in and the pages behind it: a run's log at /runs/{id}, for readers of its repository. A
// log link of a comment or check (/runs/{id}/{signature}) leads there.
func (s *Server) mountWeb(r *mux.Router) {
	r.HandleFunc(auth.LoginPath, s.web.Login).Methods(http.MethodGet)
	r.HandleFunc("/login/{forge}/callback", func(w http.ResponseWriter, r *http.Request) {
		s.web.Callback(mux.Vars(r)["forge"]).ServeHTTP(w, r)
	}).Methods(http.MethodGet)
	r.HandleFunc(auth.LogoutPath, s.web.Logout).Methods(http.MethodGet, http.MethodPost)
	r.Handle("/runs/{id:[0-9]+}", s.web.RequireRead(s.access, s.runRepo, http.HandlerFunc(s.runLog))).Methods(http.MethodGet)
	r.HandleFunc("/runs/{id:[0-9]+}/{sig}", s.logLink).Methods(http.MethodGet)
}

// logLink is a log link as comments and checks carry it: a valid one leads to the run's page, behind sign-in
// (the query, ?format=text, kept).
func (s *Server) logLink(w http.ResponseWriter, r *http.Request) {
	vars := mux.Vars(r)
	id, err := strconv.ParseInt(vars["id"], 10, 64)
	if err != nil || !hmac.Equal([]byte(vars["sig"]), []byte(bot.LogSignature(s.logKey, id))) {
		http.NotFound(w, r)
		return
	}
	target := "/runs/" + strconv.FormatInt(id, 10)
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	http.Redirect(w, r, target, http.StatusFound)
}

// runRepo is the repository of the run a /runs/{id} request names, as the forge's port addresses it.
func (s *Server) runRepo(r *http.Request) (vcs.Repo, bool) {
	id, err := strconv.ParseInt(mux.Vars(r)["id"], 10, 64)
	if err != nil {
		return vcs.Repo{}, false
	}
	run, err := s.store.GetRun(r.Context(), id)
	if err != nil {
		return vcs.Repo{}, false
	}
	p, err := s.store.GetPlan(r.Context(), run.PlanID)
	if err != nil {
		return vcs.Repo{}, false
	}
	// The plan's forge and repository are the store's own columns; the account (GitHub: the installation the
	// bot asks through) is the one the plan was made through, else the installation's.
	account := ""
	if pc, err := prstate.DecodeContext(p); err == nil && strings.EqualFold(pc.PR.Repo.FullName(), p.Repo) {
		account = pc.PR.Repo.Account
	}
	return s.storedRepo(r.Context(), p.Forge, p.Repo, account)
}

// The forges' answers the read rule needs, as their adapters give them.
type (
	gitHubReadAccess interface {
		ReadAccess(ctx context.Context, repo vcs.Repo, login string) (vcs.Permission, int64, error)
	}
	gitLabReadAccess interface {
		ReadAccess(ctx context.Context, repo vcs.Repo, userID int64) (level int, public bool, err error)
	}
)

// forgeFacts asks the repository's forge, through the bot's own port, what auth.Decide needs.
type forgeFacts struct{ forges *forgeSet }

func (f forgeFacts) ReadFacts(ctx context.Context, repo vcs.Repo, u auth.User) (auth.Facts, error) {
	port, ok := f.forges.get(repo.Forge)
	if !ok {
		return auth.Facts{}, fmt.Errorf("forge %q is not configured", repo.Forge)
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	switch p := port.(type) {
	case gitHubReadAccess:
		perm, account, err := p.ReadAccess(ctx, repo, u.Login)
		return auth.Facts{Permission: perm, AccountID: account}, err
	case gitLabReadAccess:
		level, public, err := p.ReadAccess(ctx, repo, u.ID)
		return auth.Facts{AccessLevel: level, Public: public}, err
	}
	return auth.Facts{}, fmt.Errorf("forge %q has no read check", repo.Forge)
}

func sessionKeys(keys []serverconfig.Secret) []string {
	var out []string
	for _, k := range keys {
		out = append(out, k.Reveal())
	}
	return out
}

// storedRepo is a repository the store names (forge, owner/name) as the forge's port addresses it: with the
// account given (the one a plan was made through), else the stored repository's (GitHub: its installation).
func (s *Server) storedRepo(ctx context.Context, forge, fullName, account string) (vcs.Repo, bool) {
	repo := vcs.Repo{Forge: forge, Account: account}
	if i := strings.LastIndex(fullName, "/"); i > 0 {
		repo.Owner, repo.Name = fullName[:i], fullName[i+1:]
	}
	if stored, err := s.store.GetRepo(ctx, forge, fullName); repo.Account == "" && err == nil {
		repo.Account = stored.Account
	}
	return repo, repo.Name != ""
}
