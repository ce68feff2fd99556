package server

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/forgetest/githubfake"
	"github.com/dagctl/dagctl-bot/internal/vcs"
	ghadapter "github.com/dagctl/dagctl-bot/internal/vcs/github"
	"github.com/dagctl/dagctl-bot/internal/webhook"
)

// A registered forge's intake reads the secret the set holds now, so that configuring it later (GitHub's /setup)
// opens its route at once; the bot sees only configured forges, and a name is registered once.
func TestTheForgeSetConfiguresItsForgesInPlace(t *testing.T) {
	set := newForgeSet()
	require.NoError(t, set.add(gitHubForge()))
	assert.Error(t, set.add(gitHubForge()), "registered twice")
	assert.Error(t, set.add(Forge{Name: "half", Parse: ghadapter.ParseWebhook}), "no verifier, no forge")

	sources := set.sources()
	require.Len(t, sources, 1)
	assert.Equal(t, ghadapter.Forge, sources[0].Forge)
	assert.Empty(t, sources[0].Secret(), "not set up: the intake refuses everything")
	_, ok := set.get(ghadapter.Forge)
	assert.False(t, ok, "the bot has no port before the forge is configured")

	key, _, err := githubfake.GenerateAppKey()
	require.NoError(t, err)
	app, err := ghadapter.NewApp(ghadapter.Config{AppID: 1, PrivateKey: key})
	require.NoError(t, err)
	set.configure(ghadapter.Forge, app, []byte("s3cret"))
	assert.Equal(t, []byte("s3cret"), sources[0].Secret(), "the route built before sees the new secret")
	port, ok := set.get(ghadapter.Forge)
	require.True(t, ok)
	assert.Equal(t, vcs.Forge(app), port)

	require.NoError(t, set.add(Forge{Name: "other", Parse: ghadapter.ParseWebhook,
		Intake: webhook.Source{Verify: webhook.VerifyToken, OrderingKey: func([]byte) string { return "other:x" }}}))
	assert.Equal(t, []string{"github", "other"}, []string{set.sources()[0].Forge, set.sources()[1].Forge})
	assert.Len(t, set.parsers(), 2)
}
