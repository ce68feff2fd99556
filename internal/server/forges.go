package server

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/dagctl/dagctl-bot/internal/dispatch"
	"github.com/dagctl/dagctl-bot/internal/outbox"
	"github.com/dagctl/dagctl-bot/internal/vcs"
	ghadapter "github.com/dagctl/dagctl-bot/internal/vcs/github"
	gladapter "github.com/dagctl/dagctl-bot/internal/vcs/gitlab"
	"github.com/dagctl/dagctl-bot/internal/webhook"
)

// Forge is one forge the server serves: what it contributes to the intake, the parser of its stored deliveries,
// and its port for the bot. Its Name is the route (/webhooks/{Name}), the queue's forge and vcs.Repo.Forge of
// its events. Intake, dispatch and the bot know forges only through this.
type Forge struct {
	Name string
	// Intake is the forge's part of the intake; its Forge is Name and its Secret is the set's (see Secret).
	Intake webhook.Source
	Parse  dispatch.Parser
	// Port is the forge's adapter; nil until it is configured (GitHub before /setup).
	Port vcs.Forge
	// Secret is the webhook secret; empty: deliveries are refused until it is set.
	Secret []byte
}

// forgeSet holds the forges the server serves, by name. The set is fixed when the server is built; a forge's
// port and secret can be set later (/setup configures GitHub while the server runs).
type forgeSet struct {
	mu     sync.RWMutex
	forges map[string]*Forge
}

func newForgeSet() *forgeSet { return &forgeSet{forges: map[string]*Forge{}} }

// add registers a forge; its intake reads the secret from the set, so that configure takes effect at once.
func (f *forgeSet) add(forge Forge) error {
	if forge.Name == "" || forge.Parse == nil || forge.Intake.Verify == nil || forge.Intake.OrderingKey == nil {
		return fmt.Errorf("forge %q: a name, a parser, a verifier and an ordering key are required", forge.Name)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, dup := f.forges[forge.Name]; dup {
		return fmt.Errorf("forge %q is registered twice", forge.Name)
	}
	name := forge.Name
	forge.Intake.Forge = name
	forge.Intake.Secret = func() []byte { return f.secret(name) }
	f.forges[name] = &forge
	return nil
}

// configure sets a registered forge's port and webhook secret.
func (f *forgeSet) configure(name string, port vcs.Forge, secret []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if forge, ok := f.forges[name]; ok {
		forge.Port, forge.Secret = port, secret
	}
}

// get is the port of a configured forge, for the bot.
func (f *forgeSet) get(name string) (vcs.Forge, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if forge, ok := f.forges[name]; ok && forge.Port != nil {
		return forge.Port, true
	}
	return nil, false
}

func (f *forgeSet) secret(name string) []byte {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if forge, ok := f.forges[name]; ok {
		return forge.Secret
	}
	return nil
}

func (f *forgeSet) configured(name string) bool {
	_, ok := f.get(name)
	return ok
}

// names are the registered forges' names, sorted.
func (f *forgeSet) names() []string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var out []string
	for name := range f.forges {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// sources are the registered forges' parts of the intake, by name.
func (f *forgeSet) sources() []webhook.Source {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var out []webhook.Source
	for _, forge := range f.forges {
		out = append(out, forge.Intake)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Forge < out[j].Forge })
	return out
}

// parsers are the registered forges' parsers, for the dispatcher: a stored delivery is parsed by its forge's.
func (f *forgeSet) parsers() map[string]dispatch.Parser {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := map[string]dispatch.Parser{}
	for name, forge := range f.forges {
		out[name] = forge.Parse
	}
	return out
}

// gitHubForge is GitHub as the server registers it: always (its route answers 503 until an app is set up).
func gitHubForge() Forge {
	return Forge{Name: ghadapter.Forge, Intake: webhook.GitHubSource(nil), Parse: ghadapter.ParseWebhook}
}

// gitLabForge is GitLab as the server registers it when DAGCTL_GITLAB_TOKEN is set: its adapter is the port, and
// its parser tells the bot's own notes from commands by the token's user, asked of GitLab (once; until GitLab
// answers, deliveries wait on the retry policy rather than being read without it).
func gitLabForge(baseURL, token, cloneToken string, secret []byte, client *http.Client) (Forge, error) {
	port, err := gladapter.New(gladapter.Options{BaseURL: baseURL, Token: token, CloneToken: cloneToken, HTTPClient: client})
	if err != nil {
		return Forge{}, err
	}
	parse := func(event string, body []byte) (vcs.Event, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		bot, err := port.Bot(ctx)
		if err != nil {
			return vcs.Event{}, dispatch.ParseLater{Err: fmt.Errorf("reading the bot's GitLab user: %w", err)}
		}
		return gladapter.WebhookParser(bot.Username)(event, body)
	}
	return Forge{Name: gladapter.Name, Intake: webhook.GitLabSource(nil), Parse: parse, Port: port, Secret: secret}, nil
}

// GitLab's statuses join pipelines: the outbox keeps what each showed, for the team's pipeline that starts later.
var _ outbox.PipelineStatuses = (*gladapter.Forge)(nil)
