package github_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// ReadAccess says which account GitHub answered for, so that a login that changed hands can be told apart.
func TestReadAccessNamesTheAccountGitHubAnsweredFor(t *testing.T) {
	e := newEnv(t)
	e.fr.SetPermission("dave", "triage")
	perm, id, err := e.app.ReadAccess(e.ctx, e.repo, "dave")
	require.NoError(t, err)
	assert.Equal(t, vcs.PermissionRead, perm)
	assert.Equal(t, e.fake.UserID("dave"), id)

	e.fake.RenameUser("dave", "dave-old")
	e.fr.SetPermission("dave", "admin") // a new account took the login
	perm, id, err = e.app.ReadAccess(e.ctx, e.repo, "dave")
	require.NoError(t, err)
	assert.Equal(t, vcs.PermissionAdmin, perm)
	assert.NotEqual(t, e.fake.UserID("dave-old"), id, "the new holder of the login, not the old account")

	perm, id, err = e.app.ReadAccess(e.ctx, e.repo, "ghost")
	require.NoError(t, err)
	assert.Equal(t, vcs.PermissionNone, perm)
	assert.Zero(t, id)
}
