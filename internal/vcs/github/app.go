// Package github is the GitHub adapter: it implements vcs.Forge for a GitHub App installation with go-github
// and ghinstallation, translates GitHub webhooks into vcs.Event, and completes the app manifest flow. GitHub's
// own limits (rate limits, token lifetimes, sizes) are handled here, where the bot meets GitHub.
package github

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"
	jwt "github.com/golang-jwt/jwt/v4"
	gh "github.com/google/go-github/v88/github"

	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// APIURLEnv names the environment variable with the REST API's base URL (GitHub Enterprise Server, tests).
const APIURLEnv = "DAGCTL_GITHUB_API_URL"

// DefaultAPIURL is github.com's REST API.
const DefaultAPIURL = "https://api.github.com/"

// Forge is the vcs.Repo.Forge value of GitHub repositories.
const Forge = "github"

// Config configures the GitHub App.
type Config struct {
	AppID int64
	// PrivateKey is the app's private key, PEM encoded.
	PrivateKey []byte
	// APIURL is the REST API's base URL. Empty means $DAGCTL_GITHUB_API_URL, else api.github.com. For GitHub
	// Enterprise Server give the server ("https://ghe.example.com") or its API ("…/api/v3").
	APIURL string
	// Transport carries the HTTP requests; nil means http.DefaultTransport.
	Transport http.RoundTripper
	// UserAgent is sent with every request; empty means "dagctl-bot".
	UserAgent string

	// Now and Sleep are the clock of the rate-limit waits and write spacing (tests inject fake ones).
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
	// MaxRetries bounds the retries after rate-limit answers (0: DefaultMaxRetries; negative: none).
	MaxRetries int
	// MaxWait is the longest single rate-limit wait (0: DefaultMaxWait).
	MaxWait time.Duration
	// MinWriteInterval spaces one installation's writes (0: DefaultMinWriteInterval; negative: no spacing).
	MinWriteInterval time.Duration
}

func (c Config) withDefaults() Config {
	if c.Transport == nil {
		c.Transport = http.DefaultTransport
	}
	if c.UserAgent == "" {
		c.UserAgent = "dagctl-bot"
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Sleep == nil {
		c.Sleep = sleepContext
	}
	switch {
	case c.MaxRetries == 0:
		c.MaxRetries = DefaultMaxRetries
	case c.MaxRetries < 0:
		c.MaxRetries = 0
	}
	if c.MaxWait == 0 {
		c.MaxWait = DefaultMaxWait
	}
	switch {
	case c.MinWriteInterval == 0:
		c.MinWriteInterval = DefaultMinWriteInterval
	case c.MinWriteInterval < 0:
		c.MinWriteInterval = 0
	}
	return c
}

// APIURLs resolves the REST and upload base URLs (both with a trailing slash) from an API URL as configured:
// "" means $DAGCTL_GITHUB_API_URL, else github.com.
func APIURLs(apiURL string) (base, upload string, err error) {
	apiURL = strings.TrimSpace(apiURL)
	if apiURL == "" {
		apiURL = strings.TrimSpace(os.Getenv(APIURLEnv))
	}
	if apiURL == "" {
		return DefaultAPIURL, "https://uploads.github.com/", nil
	}
	u, err := url.Parse(apiURL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "", "", fmt.Errorf("github: invalid API URL %q", apiURL)
	}
	root := strings.TrimRight(u.Path, "/")
	if host, ok := strings.CutPrefix(u.Host, "api."); ok { // api.github.com, api.<tenant>.ghe.com
		return u.Scheme + "://" + u.Host + root + "/", u.Scheme + "://uploads." + host + "/", nil
	}
	// GitHub Enterprise Server: the API is at /api/v3 and uploads at /api/uploads under the server root.
	root = strings.TrimSuffix(root, "/api/v3")
	server := u.Scheme + "://" + u.Host + root
	return server + "/api/v3/", server + "/api/uploads/", nil
}

// App is a GitHub App: it authenticates as the app (JWT) and hands out one cached Installation per
// installation id. App implements vcs.Forge by routing each call on repo.Account (the installation id).
type App struct {
	cfg       Config
	baseURL   string
	uploadURL string
	// transport is the bottom of every stack: rate-limit handling over the configured transport.
	transport http.RoundTripper
	key       *rsa.PrivateKey
	client    *gh.Client

	mu            sync.Mutex
	installations map[int64]*Installation
	identity      identity
}

// NewApp checks the configuration and builds the app's client. It makes no request.
func NewApp(cfg Config) (*App, error) {
	cfg = cfg.withDefaults()
	if cfg.AppID <= 0 {
		return nil, errors.New("github: app id is required")
	}
	key, err := jwt.ParseRSAPrivateKeyFromPEM(cfg.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("github: app private key: %w", err)
	}
	base, upload, err := APIURLs(cfg.APIURL)
	if err != nil {
		return nil, err
	}
	a := &App{
		cfg: cfg, baseURL: base, uploadURL: upload, key: key, installations: map[int64]*Installation{},
		transport: &rateLimitTransport{
			next: cfg.Transport, now: cfg.Now, sleep: cfg.Sleep, maxRetries: cfg.MaxRetries, maxWait: cfg.MaxWait,
		},
	}
	appTransport := ghinstallation.NewAppsTransportFromPrivateKey(a.transport, cfg.AppID, key)
	appTransport.BaseURL = strings.TrimSuffix(base, "/")
	if a.client, err = a.newClient(appTransport); err != nil {
		return nil, err
	}
	return a, nil
}

func (a *App) newClient(transport http.RoundTripper) (*gh.Client, error) {
	// go-github's own pre-emptive rate-limit check is off: the waiting happens in rateLimitTransport.
	return gh.NewClient(
		gh.WithHTTPClient(&http.Client{Transport: transport}),
		gh.WithURLs(&a.baseURL, &a.uploadURL),
		gh.WithUserAgent(a.cfg.UserAgent),
		gh.WithDisableRateLimitCheck(),
	)
}

// AppID is the app's id.
func (a *App) AppID() int64 { return a.cfg.AppID }

// BaseURL is the REST API base URL in use (with a trailing slash).
func (a *App) BaseURL() string { return a.baseURL }

// InstallationInfo is what GitHub says about an installation.
type InstallationInfo struct {
	ID        int64
	Account   string
	AppSlug   string
	Suspended bool
}

// InstallationInfo asks GitHub about an installation (as the app).
func (a *App) InstallationInfo(ctx context.Context, id int64) (InstallationInfo, error) {
	inst, _, err := a.client.Apps.GetInstallation(ctx, id)
	if err != nil {
		return InstallationInfo{}, mapError("get installation", err)
	}
	return InstallationInfo{
		ID: inst.GetID(), Account: inst.GetAccount().GetLogin(), AppSlug: inst.GetAppSlug(),
		Suspended: inst.SuspendedAt != nil,
	}, nil
}

// Installation returns the cached client of one installation (created on first use; it makes no request).
func (a *App) Installation(id int64) *Installation {
	a.mu.Lock()
	defer a.mu.Unlock()
	if inst, ok := a.installations[id]; ok {
		return inst
	}
	inst := a.newInstallation(id)
	a.installations[id] = inst
	return inst
}

// NewInstallation is the vcs.Forge of one installation, for callers that serve a single one.
func NewInstallation(cfg Config, installationID int64) (*Installation, error) {
	app, err := NewApp(cfg)
	if err != nil {
		return nil, err
	}
	return app.Installation(installationID), nil
}

func (a *App) newInstallation(id int64) *Installation {
	tokens := &tokenTransport{app: a, installationID: id}
	tokens.current.Store(a.newTokenSource(id))
	serializer := &writeSerializer{
		next: tokens, now: a.cfg.Now, sleep: a.cfg.Sleep, interval: a.cfg.MinWriteInterval,
	}
	client, err := a.newClient(serializer)
	if err != nil {
		panic(err) // the same options already built the app's client
	}
	return &Installation{app: a, id: id, client: client, tokens: tokens}
}

// newTokenSource is a ghinstallation transport with its own apps transport: ghinstallation writes to the apps
// transport while refreshing, so sharing one between installations would race.
func (a *App) newTokenSource(id int64) *ghinstallation.Transport {
	appTransport := ghinstallation.NewAppsTransportFromPrivateKey(a.transport, a.cfg.AppID, a.key)
	appTransport.BaseURL = strings.TrimSuffix(a.baseURL, "/")
	t := ghinstallation.NewFromAppsTransport(appTransport, id)
	t.BaseURL = appTransport.BaseURL
	return t
}

// tokenTransport authenticates as an installation. ghinstallation caches the token and refreshes it a minute
// before expires_at; when GitHub still answers 401 (the token was revoked, or clocks disagree), the token is
// dropped and the request sent once more with a new one.
type tokenTransport struct {
	app            *App
	installationID int64
	current        atomic.Pointer[ghinstallation.Transport]
}

func (t *tokenTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	used := t.current.Load()
	retry, err := rewindable(req)
	if err != nil {
		return nil, err
	}
	resp, err := used.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusUnauthorized || retry == nil {
		return resp, err
	}
	resp.Body.Close()
	t.current.CompareAndSwap(used, t.app.newTokenSource(t.installationID))
	return t.current.Load().RoundTrip(retry)
}

// rewindable prepares a second copy of req for one resend, or nil when its body cannot be replayed.
func rewindable(req *http.Request) (*http.Request, error) {
	if !replayable(req) {
		return nil, nil
	}
	return rewind(req)
}

// Token is the installation's current access token (minted or refreshed when needed).
func (t *tokenTransport) Token(ctx context.Context) (string, error) {
	return t.current.Load().Token(ctx)
}

// forRepo is the installation of a repository, from repo.Account.
func (a *App) forRepo(repo vcs.Repo) (*Installation, error) {
	if repo.Account == "" {
		return nil, fmt.Errorf("github: %s has no installation id", repo.FullName())
	}
	id, err := InstallationOf(repo.Account)
	if err != nil {
		return nil, fmt.Errorf("github: %s: %w", repo.FullName(), err)
	}
	return a.Installation(id), nil
}

var _ vcs.Forge = (*App)(nil)

// PullRequest implements vcs.Forge through the repository's installation.
func (a *App) PullRequest(ctx context.Context, repo vcs.Repo, number int) (vcs.PullRequest, error) {
	inst, err := a.forRepo(repo)
	if err != nil {
		return vcs.PullRequest{}, err
	}
	return inst.PullRequest(ctx, repo, number)
}

// Reviews implements vcs.Forge through the repository's installation.
func (a *App) Reviews(ctx context.Context, repo vcs.Repo, number int) ([]vcs.Review, error) {
	inst, err := a.forRepo(repo)
	if err != nil {
		return nil, err
	}
	return inst.Reviews(ctx, repo, number)
}

// CommitAuthors implements vcs.Forge through the repository's installation.
func (a *App) CommitAuthors(ctx context.Context, repo vcs.Repo, number int) ([]string, error) {
	inst, err := a.forRepo(repo)
	if err != nil {
		return nil, err
	}
	return inst.CommitAuthors(ctx, repo, number)
}

// Permission implements vcs.Forge through the repository's installation.
func (a *App) Permission(ctx context.Context, repo vcs.Repo, user string) (vcs.Permission, error) {
	inst, err := a.forRepo(repo)
	if err != nil {
		return vcs.PermissionNone, err
	}
	return inst.Permission(ctx, repo, user)
}

// InTeam implements vcs.Forge through the repository's installation.
func (a *App) InTeam(ctx context.Context, repo vcs.Repo, team string, user string) (bool, error) {
	inst, err := a.forRepo(repo)
	if err != nil {
		return false, err
	}
	return inst.InTeam(ctx, repo, team, user)
}

// ReadFile implements vcs.Forge through the repository's installation.
func (a *App) ReadFile(ctx context.Context, repo vcs.Repo, ref, path string) ([]byte, error) {
	inst, err := a.forRepo(repo)
	if err != nil {
		return nil, err
	}
	return inst.ReadFile(ctx, repo, ref, path)
}

// CloneToken implements vcs.Forge through the repository's installation.
func (a *App) CloneToken(ctx context.Context, repo vcs.Repo) (string, error) {
	inst, err := a.forRepo(repo)
	if err != nil {
		return "", err
	}
	return inst.CloneToken(ctx, repo)
}

// CreateCheck creates a check run through the repository's installation.
func (a *App) CreateCheck(ctx context.Context, repo vcs.Repo, check Check) (int64, error) {
	inst, err := a.forRepo(repo)
	if err != nil {
		return 0, err
	}
	return inst.CreateCheck(ctx, repo, check)
}

// UpdateCheck updates a check run through the repository's installation.
func (a *App) UpdateCheck(ctx context.Context, repo vcs.Repo, check Check) error {
	inst, err := a.forRepo(repo)
	if err != nil {
		return err
	}
	return inst.UpdateCheck(ctx, repo, check)
}

// Comments implements vcs.Forge through the repository's installation.
func (a *App) Comments(ctx context.Context, repo vcs.Repo, number int) ([]vcs.Comment, error) {
	inst, err := a.forRepo(repo)
	if err != nil {
		return nil, err
	}
	return inst.Comments(ctx, repo, number)
}

// CreateComment implements vcs.Forge through the repository's installation.
func (a *App) CreateComment(ctx context.Context, repo vcs.Repo, number int, body string) (int64, error) {
	inst, err := a.forRepo(repo)
	if err != nil {
		return 0, err
	}
	return inst.CreateComment(ctx, repo, number, body)
}

// UpdateComment implements vcs.Forge through the repository's installation.
func (a *App) UpdateComment(ctx context.Context, repo vcs.Repo, id int64, body string) error {
	inst, err := a.forRepo(repo)
	if err != nil {
		return err
	}
	return inst.UpdateComment(ctx, repo, id, body)
}

// DeleteComment implements vcs.Forge through the repository's installation.
func (a *App) DeleteComment(ctx context.Context, repo vcs.Repo, id int64) error {
	inst, err := a.forRepo(repo)
	if err != nil {
		return err
	}
	return inst.DeleteComment(ctx, repo, id)
}

// React implements vcs.Forge through the repository's installation.
func (a *App) React(ctx context.Context, repo vcs.Repo, commentID int64, reaction vcs.Reaction) error {
	inst, err := a.forRepo(repo)
	if err != nil {
		return err
	}
	return inst.React(ctx, repo, commentID, reaction)
}

// Limits are GitHub's size limits.
func (a *App) Limits() vcs.Limits {
	return vcs.Limits{CommentChars: MaxCommentChars, CheckOutputSize: MaxCheckOutput}
}

// ReadAccess is user's permission on the repository through its installation, and the account id GitHub answered
// it for (the web pages' read rule checks that it is the signed-in account's: a login can change hands).
func (a *App) ReadAccess(ctx context.Context, repo vcs.Repo, login string) (vcs.Permission, int64, error) {
	inst, err := a.forRepo(repo)
	if err != nil {
		return vcs.PermissionNone, 0, err
	}
	return inst.ReadAccess(ctx, repo, login)
}
