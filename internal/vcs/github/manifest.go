package github

import (
	"context"
	"errors"
	"net/http"

	gh "github.com/google/go-github/v88/github"
)

// AppCredentials are what GitHub returns when an app created from a manifest is confirmed: everything the bot
// needs to run as that app.
type AppCredentials struct {
	ID            int64
	Slug          string
	Name          string
	Owner         string
	HTMLURL       string
	PEM           string
	WebhookSecret string
	ClientID      string
	ClientSecret  string
}

// ExchangeManifestCode redeems the one-time code of the app manifest flow (POST /app-manifests/{code}/
// conversions) for the new app's credentials. apiURL is resolved as in Config.APIURL.
func ExchangeManifestCode(ctx context.Context, apiURL, code string) (AppCredentials, error) {
	if code == "" {
		return AppCredentials{}, errors.New("github: empty manifest code")
	}
	base, upload, err := APIURLs(apiURL)
	if err != nil {
		return AppCredentials{}, err
	}
	client, err := gh.NewClient(
		gh.WithHTTPClient(&http.Client{}),
		gh.WithURLs(&base, &upload),
		gh.WithUserAgent("dagctl-bot"),
		gh.WithDisableRateLimitCheck(),
	)
	if err != nil {
		return AppCredentials{}, err
	}
	app, _, err := client.Apps.CompleteAppManifest(ctx, code)
	if err != nil {
		return AppCredentials{}, mapError("complete app manifest", err)
	}
	creds := AppCredentials{
		ID: app.GetID(), Slug: app.GetSlug(), Name: app.GetName(), Owner: app.GetOwner().GetLogin(),
		HTMLURL: app.GetHTMLURL(), PEM: app.GetPEM(), WebhookSecret: app.GetWebhookSecret(),
		ClientID: app.GetClientID(), ClientSecret: app.GetClientSecret(),
	}
	if creds.ID == 0 || creds.PEM == "" {
		return AppCredentials{}, errors.New("github: manifest conversion returned no app id or key")
	}
	return creds, nil
}
