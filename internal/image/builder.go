// Package image builds a dbt project's deploy image and pushes it to the configured registry.
//
// Two builders stand behind one port, Builder: LayerBuilder appends the project (at the applied commit, with
// the dbt_packages/ that `dbt deps` produced) as one reproducible OCI layer onto the configured dbt runtime
// image, with go-containerregistry, in the bot's process: no daemon, no privileges, no build step that runs
// the PR's code. When the Python requirements change that is not enough, and DockerfileJob describes a
// BuildKit-rootless Kubernetes Job that builds the project's Dockerfile instead (kubebuild runs it, keeping
// client-go out of this package).
//
// Trust: the base image, the repository and the registry credentials come from the operator and the default
// branch's config, never from the PR; what comes from the PR is only the content of the layer (or the build
// context).
package image

import (
	"context"
	"fmt"
	"regexp"
	"strings"
)

// Builder builds a deploy image and pushes it.
type Builder interface {
	Build(ctx context.Context, req Request) (Result, error)
}

// Request is one image to build.
type Request struct {
	// Base is the dbt runtime image the project is added to (repoconfig.DBTImage.Base), by tag or digest.
	Base string
	// Repository is where the image is pushed, without tag or digest (repoconfig.DBTImage.Repository, read
	// from the default branch).
	Repository string
	// Tag is the tag pushed (Tag(version, commit) makes one).
	Tag string
	// ProjectDir is a checkout of the project at the applied commit, dbt_packages/ included (LayerBuilder).
	ProjectDir string
	// Source is the commit a Dockerfile build checks out as its context (DockerfileJob).
	Source Source
	// Dockerfile is relative to the project's directory ("Dockerfile" when empty; DockerfileJob).
	Dockerfile string
	// ImagePath is where the project is put in the image and the image's working directory
	// (DefaultImagePath when empty).
	ImagePath string
	// Labels are set in the image's config (and as manifest annotations on an OCI image): Labels(...) makes
	// the org.opencontainers.image.* ones.
	Labels map[string]string
}

// DefaultImagePath is where the project is put in the image when the request names no path.
const DefaultImagePath = "/dbt/project"

// Result is the pushed image.
type Result struct {
	// Reference is the image by digest, `repository@sha256:...`: what a job should run and the plan record.
	Reference string
	// Digest is the manifest's digest, `sha256:...`.
	Digest string
	// Tagged is the image by the tag pushed, `repository:tag`.
	Tagged string
}

// OCI annotation keys (https://github.com/opencontainers/image-spec/blob/main/annotations.md), used as labels.
const (
	LabelRevision = "org.opencontainers.image.revision"
	LabelVersion  = "org.opencontainers.image.version"
	LabelSource   = "org.opencontainers.image.source"
	// LabelBase and LabelBaseDigest are set by LayerBuilder: the base as configured and the digest of the
	// image it resolved to.
	LabelBase       = "org.opencontainers.image.base.name"
	LabelBaseDigest = "org.opencontainers.image.base.digest"
)

// Labels are the OCI labels of a deploy image: the commit it was built from, the project's version and the
// repository's URL; empty values are left out.
func Labels(commit, version, sourceURL string) map[string]string {
	out := map[string]string{}
	for k, v := range map[string]string{LabelRevision: commit, LabelVersion: version, LabelSource: sourceURL} {
		if v != "" {
			out[k] = v
		}
	}
	return out
}

var (
	notTagChars = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)
	fullSHA     = regexp.MustCompile(`^[0-9a-f]{7,64}$`)
)

// tagMax is the longest tag the distribution spec allows.
const tagMax = 128

// shortCommit is how much of the commit a tag keeps.
const shortCommit = 12

// Tag is the tag of a deploy image: the version and the short commit (`1.4.0-3f2c1a9e0b4d`), characters a
// tag cannot have replaced by "_". The commit is what makes it unique: two builds of one version at different
// commits never share a tag.
func Tag(version, commit string) (string, error) {
	if !fullSHA.MatchString(commit) {
		return "", fmt.Errorf("image: tag: %q is not a commit SHA", commit)
	}
	short := commit[:min(len(commit), shortCommit)]
	v := strings.TrimLeft(notTagChars.ReplaceAllString(version, "_"), ".-")
	if v == "" {
		return short, nil
	}
	if room := tagMax - len(short) - 1; len(v) > room {
		v = v[:room]
	}
	return v + "-" + short, nil
}
