package allowlist

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAllows(t *testing.T) {
	cases := []struct {
		list, forge, repo string
		want              bool
	}{
		{"", "github", "anyone/anything", true},
		{" , ", "gitlab", "a/b/c", true},
		{"github:acme/warehouse", "github", "acme/warehouse", true},
		{"github:acme/warehouse", "github", "Acme/Warehouse", true},
		{"github:acme/warehouse", "github", "acme/warehouse2", false},
		{"github:acme/warehouse", "gitlab", "acme/warehouse", false}, // the forge is part of the name
		{"github:acme/*", "github", "acme/anything", true},
		{"github:acme/*", "github", "acmecorp/anything", false},
		{"github:acme/*", "github", "mallory/acme", false},
		{"github:acme/data-*", "github", "acme/data-lake", true},
		{"github:acme/data-*", "github", "acme/web", false},
		{"gitlab:group/sub/*", "gitlab", "group/sub/project", true},
		{"gitlab:group/sub/*", "gitlab", "group/sub/deeper/project", false}, // * stays within a segment
		{"gitlab:group/sub/*", "gitlab", "group/project", false},
		{"gitlab:group/**", "gitlab", "group/project", true},
		{"gitlab:group/**", "gitlab", "group/sub/deeper/project", true},
		{"gitlab:group/**", "gitlab", "group", false},
		{"gitlab:group/**", "gitlab", "groupie/project", false},
		{"gitlab:*/data/**", "gitlab", "any/data/x/y", true},
		{"github:acme/*,gitlab:group/sub/*", "gitlab", "group/sub/p", true},
		{"github:acme/*,gitlab:group/sub/*", "github", "group/sub", false},
		{"github:**", "github", "anyone/anything", true},
		{"github:**", "gitlab", "anyone/anything", false},
	}
	for _, c := range cases {
		l, err := Parse(c.list)
		require.NoError(t, err, c.list)
		assert.Equal(t, c.want, l.Allows(c.forge, c.repo), "%q allows %s:%s", c.list, c.forge, c.repo)
	}
}

func TestParseRefusesWhatItCannotRead(t *testing.T) {
	cases := map[string]string{
		"acme/*":              `entry "acme/*": want forge:path, the forge one of github, gitlab`,
		"bitbucket:acme/*":    `entry "bitbucket:acme/*": want forge:path`,
		"github:acme":         `entry "github:acme": the path names no repository: write acme/* for every repository of acme`,
		"github:acme/?":       `only * is a wildcard`,
		"github:acme/[ab]":    `only * is a wildcard`,
		"gitlab:group/**/x":   `** may only be the last segment`,
		"gitlab:group//x":     `the path must be owner/name segments`,
		"gitlab:/group/x":     `the path must be owner/name segments`,
		"github:ok/x,gitlab:": `entry "gitlab:": the path must be owner/name segments`,
	}
	for list, want := range cases {
		_, err := Parse(list)
		require.Error(t, err, list)
		assert.Contains(t, err.Error(), want, list)
	}
}

func TestString(t *testing.T) {
	l, err := Parse(" GitHub:Acme/* , gitlab:group/** ,github:**")
	require.NoError(t, err)
	assert.Equal(t, "github:acme/*,gitlab:group/**,github:**", l.String())
	assert.False(t, l.All())
	assert.True(t, Repos{}.All())
}
