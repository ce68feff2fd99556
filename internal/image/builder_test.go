package image

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestTag(t *testing.T) {
	for _, tc := range []struct {
		version, commit, want, err string
	}{
		{"1.4.0", commit, "1.4.0-3f2c1a9e0b4d", ""},
		{"1.4.0+build.7", commit, "1.4.0_build.7-3f2c1a9e0b4d", ""},
		{"-1.0", commit, "1.0-3f2c1a9e0b4d", ""},
		{"", commit, "3f2c1a9e0b4d", ""},
		{"v2", "3f2c1a9", "v2-3f2c1a9", ""},
		{strings.Repeat("9", 200), commit, strings.Repeat("9", 115) + "-3f2c1a9e0b4d", ""},
		{"1.4.0", "main", "", `"main" is not a commit SHA`},
		{"1.4.0", "3F2C1A9", "", "is not a commit SHA"},
	} {
		got, err := Tag(tc.version, tc.commit)
		if tc.err != "" {
			assert.ErrorContains(t, err, tc.err, tc.version)
			continue
		}
		assert.NoError(t, err)
		assert.Equal(t, tc.want, got, tc.version)
		assert.Regexp(t, validTag, got)
	}
}

func TestLabels(t *testing.T) {
	assert.Equal(t, map[string]string{
		"org.opencontainers.image.revision": commit,
		"org.opencontainers.image.version":  "1.4.0",
		"org.opencontainers.image.source":   "https://github.com/acme/data",
	}, Labels(commit, "1.4.0", "https://github.com/acme/data"))
	assert.Equal(t, map[string]string{"org.opencontainers.image.revision": commit}, Labels(commit, "", ""))
}
