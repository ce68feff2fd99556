package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"golang.org/x/oauth2"
)

// Provider is a forge's OAuth: its oauth2 config and how to ask it who the token's user is.
type Provider struct {
	// Name is the forge's name (vcs.Repo.Forge): "github", "gitlab".
	Name string
	// Title is how the sign-in page names it.
	Title   string
	OAuth   oauth2.Config
	userURL string
	parse   func([]byte) (User, error)
}

// GitHubProvider is sign-in with a GitHub App's client id and secret (the user-to-server flow): authorize and
// token at the web URL (https://github.com/ or a GitHub Enterprise Server's https://HOST/), the user from GET
// /user of the API URL with the user's token. PKCE (S256) is sent; GitHub checks it.
func GitHubProvider(webURL, apiURL, clientID, clientSecret, redirectURL string) Provider {
	web, api := withSlash(webURL), withSlash(apiURL)
	return Provider{
		Name: "github", Title: "GitHub",
		OAuth: oauth2.Config{ClientID: clientID, ClientSecret: clientSecret, RedirectURL: redirectURL,
			Endpoint: oauth2.Endpoint{AuthURL: web + "login/oauth/authorize", TokenURL: web + "login/oauth/access_token",
				AuthStyle: oauth2.AuthStyleInParams}},
		userURL: api + "user",
		parse: func(b []byte) (User, error) {
			var u struct {
				ID    int64  `json:"id"`
				Login string `json:"login"`
			}
			if err := json.Unmarshal(b, &u); err != nil || u.ID == 0 || u.Login == "" {
				return User{}, errors.New("GitHub's /user answer has no id and login")
			}
			return User{Forge: "github", ID: u.ID, Login: u.Login}, nil
		},
	}
}

// GitLabProvider is sign-in with a GitLab OAuth application (its application id and secret, scope read_user):
// /oauth/authorize, /oauth/token and /api/v4/user of the instance's base URL. PKCE (S256) is sent.
func GitLabProvider(baseURL, appID, secret, redirectURL string) Provider {
	base := withSlash(baseURL)
	return Provider{
		Name: "gitlab", Title: "GitLab",
		OAuth: oauth2.Config{ClientID: appID, ClientSecret: secret, RedirectURL: redirectURL, Scopes: []string{"read_user"},
			Endpoint: oauth2.Endpoint{AuthURL: base + "oauth/authorize", TokenURL: base + "oauth/token",
				AuthStyle: oauth2.AuthStyleInParams}},
		userURL: base + "api/v4/user",
		parse: func(b []byte) (User, error) {
			var u struct {
				ID       int64  `json:"id"`
				Username string `json:"username"`
				State    string `json:"state"`
			}
			if err := json.Unmarshal(b, &u); err != nil || u.ID == 0 || u.Username == "" {
				return User{}, errors.New("GitLab's /user answer has no id and username")
			}
			if u.State != "" && u.State != "active" {
				return User{}, fmt.Errorf("the GitLab account is %s", u.State)
			}
			return User{Forge: "gitlab", ID: u.ID, Login: u.Username}, nil
		},
	}
}

func withSlash(u string) string { return strings.TrimRight(u, "/") + "/" }

// maxUserBytes bounds the forge's /user answer.
const maxUserBytes = 1 << 20

// identify exchanges the code (with the PKCE verifier) for a token and asks the forge whose it is. The token is
// not kept: it goes out of scope here.
func (p Provider) identify(ctx context.Context, client *http.Client, code, verifier string) (User, error) {
	if client != nil {
		ctx = context.WithValue(ctx, oauth2.HTTPClient, client)
	}
	token, err := p.OAuth.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		return User{}, fmt.Errorf("exchanging the code: %w", redactOAuthError(err))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.userURL, nil)
	if err != nil {
		return User{}, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := p.OAuth.Client(ctx, token).Do(req)
	if err != nil {
		return User{}, fmt.Errorf("asking %s who signed in: %w", p.Title, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxUserBytes))
	if err != nil {
		return User{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return User{}, fmt.Errorf("asking %s who signed in: %s", p.Title, resp.Status)
	}
	return p.parse(body)
}

// redactOAuthError keeps the forge's error code and drops the raw body, which may echo what was sent.
func redactOAuthError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		code := re.ErrorCode
		if code == "" && re.Response != nil {
			code = re.Response.Status
		}
		return fmt.Errorf("the forge refused it (%s)", code)
	}
	return err
}
