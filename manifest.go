// Package dagctl holds files of the repository root that the binary embeds.
package dagctl

import _ "embed"

// AppManifest is app-manifest.yml, the GitHub App manifest /setup posts to GitHub.
//
//go:embed app-manifest.yml
var AppManifest []byte
