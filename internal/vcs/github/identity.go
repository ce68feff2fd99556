package github

import (
	"context"
	"errors"
	"strings"
	"sync"

	gh "github.com/google/go-github/v88/github"
)

// identity is who the app is on GitHub: everything its installations write is authored by its bot user,
// "<slug>[bot]", of type Bot. GET /app (as the app) gives the slug; it is asked once and kept.
type identity struct {
	mu   sync.Mutex
	slug string
}

// BotLogin is the login GitHub authors the app's comments, reviews and reactions with: "<slug>[bot]".
func (a *App) BotLogin(ctx context.Context) (string, error) {
	a.identity.mu.Lock()
	defer a.identity.mu.Unlock()
	if a.identity.slug == "" {
		app, _, err := a.client.Apps.Get(ctx, "")
		if err != nil {
			return "", mapError("get the authenticated app", err)
		}
		if app.GetSlug() == "" {
			return "", errors.New("github: GET /app answered without a slug")
		}
		a.identity.slug = app.GetSlug()
	}
	return a.identity.slug + "[bot]", nil
}

// writtenBy reports whether user is the bot user botLogin. A person cannot take a login ending in "[bot]", and
// the type is checked as well.
func writtenBy(user *gh.User, botLogin string) bool {
	return user.GetType() == "Bot" && strings.EqualFold(user.GetLogin(), botLogin)
}
