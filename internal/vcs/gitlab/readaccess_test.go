package gitlab_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/forgetest/gitlabfake"
)

// ReadAccess asks by account id: the access level (inherited included) and whether the project is public.
func TestReadAccessIsTheAccessLevelOfTheAccountAndTheVisibility(t *testing.T) {
	e := newEnv(t)
	guest := e.fake.AddUser(gitlabfake.User{Username: "guest"})
	e.project.SetMember("guest", gitlabfake.Guest)
	reporter := e.fake.AddUser(gitlabfake.User{Username: "reporter"})
	e.project.SetMember("reporter", gitlabfake.Reporter)
	stranger := e.fake.AddUser(gitlabfake.User{Username: "stranger"})
	inherited := e.fake.AddUser(gitlabfake.User{Username: "lead"})
	e.fake.SetGroupMember("acme", "lead", gitlabfake.Maintainer)

	for _, c := range []struct {
		id   int64
		want int
	}{{guest.ID, gitlabfake.Guest}, {reporter.ID, gitlabfake.Reporter}, {stranger.ID, 0}, {inherited.ID, gitlabfake.Maintainer}, {999999, 0}} {
		level, public, err := e.forge.ReadAccess(e.ctx, e.repo, c.id)
		require.NoError(t, err)
		assert.Equal(t, c.want, level, "user %d", c.id)
		assert.False(t, public)
	}
	e.project.SetVisibility("public")
	level, public, err := e.forge.ReadAccess(e.ctx, e.repo, stranger.ID)
	require.NoError(t, err)
	assert.Zero(t, level)
	assert.True(t, public)
}
