package image

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path"
	"regexp"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// LayerBuilder appends the project as one layer onto the base image and pushes the result, over the
// registries' HTTP API alone (go-containerregistry): no daemon, no privileges, nothing of the PR runs.
type LayerBuilder struct {
	// Keychain gives the registry credentials, for pulling the base and pushing: the operator's (the bot's
	// docker config, a cloud keychain), never anything from the PR. Nil is anonymous.
	Keychain authn.Keychain
	// Platform is the base image's platform picked from an index (a single image is used as it is);
	// linux/amd64 when zero.
	Platform v1.Platform
	// Transport is the HTTP transport to the registries; nil is http.DefaultTransport.
	Transport http.RoundTripper
	// TempDir holds the layer while it is pushed; "" is os.TempDir().
	TempDir string
}

var _ Builder = (*LayerBuilder)(nil)

// Build pulls req.Base, appends the project at req.ProjectDir under req.ImagePath, sets the working
// directory and labels, and pushes it as req.Repository:req.Tag. The same files onto the same base with the
// same labels make the same digest.
func (b *LayerBuilder) Build(ctx context.Context, req Request) (Result, error) {
	if req.Base == "" {
		return Result{}, errors.New("image: no base image")
	}
	baseRef, err := name.ParseReference(req.Base)
	if err != nil {
		return Result{}, fmt.Errorf("image: base image %q: %w", req.Base, err)
	}
	// Strict: where the bot's credentials push is named in full, never Docker Hub by default.
	repo, err := name.NewRepository(req.Repository, name.StrictValidation)
	if err != nil {
		return Result{}, fmt.Errorf("image: repository %q: %w", req.Repository, err)
	}
	if req.Tag == "" {
		return Result{}, errors.New("image: no tag")
	}
	if !validTag.MatchString(req.Tag) {
		return Result{}, fmt.Errorf("image: tag %q is not a valid tag", req.Tag)
	}
	tag, err := name.NewTag(repo.Name() + ":" + req.Tag)
	if err != nil {
		return Result{}, fmt.Errorf("image: tag %q: %w", req.Tag, err)
	}
	workDir := req.ImagePath
	if workDir == "" {
		workDir = DefaultImagePath
	}
	if _, err := cleanImagePath(workDir); err != nil {
		return Result{}, err
	}
	workDir = path.Clean(workDir)

	opts := b.options(ctx)
	base, err := remote.Image(baseRef, opts...)
	if err != nil {
		return Result{}, registryError("pull the base image "+baseRef.String(), err)
	}

	layerFile, err := os.CreateTemp(b.TempDir, "dagctl-layer-*.tar")
	if err != nil {
		return Result{}, err
	}
	defer os.Remove(layerFile.Name())
	if err := writeProjectTar(layerFile, req.ProjectDir, workDir); err != nil {
		layerFile.Close()
		return Result{}, err
	}
	if err := layerFile.Close(); err != nil {
		return Result{}, err
	}

	baseDigest, err := base.Digest()
	if err != nil {
		return Result{}, registryError("read the base image "+baseRef.String(), err)
	}
	labels := maps.Clone(req.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[LabelBase] = baseRef.String()
	labels[LabelBaseDigest] = baseDigest.String()

	img, err := appendProject(base, layerFile.Name(), workDir, labels)
	if err != nil {
		return Result{}, err
	}
	digest, err := img.Digest()
	if err != nil {
		return Result{}, err
	}
	if err := remote.Write(tag, img, opts...); err != nil {
		return Result{}, registryError("push "+tag.String(), err)
	}
	return Result{
		Reference: repo.Digest(digest.String()).String(),
		Digest:    digest.String(),
		Tagged:    tag.String(),
	}, nil
}

func (b *LayerBuilder) options(ctx context.Context) []remote.Option {
	keychain := b.Keychain
	if keychain == nil {
		keychain = anonymous{}
	}
	platform := b.Platform
	if platform.OS == "" {
		platform = v1.Platform{OS: "linux", Architecture: "amd64"}
	}
	opts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(keychain), remote.WithPlatform(platform)}
	if b.Transport != nil {
		opts = append(opts, remote.WithTransport(b.Transport))
	}
	return opts
}

// validTag is the distribution spec's tag grammar (go-containerregistry's check is looser).
var validTag = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)

// appendProject is the base with the project's layer, its working directory and labels.
func appendProject(base v1.Image, layerPath, workDir string, labels map[string]string) (v1.Image, error) {
	manifest, err := base.Manifest()
	if err != nil {
		return nil, fmt.Errorf("image: the base image's manifest: %w", err)
	}
	oci := manifest.MediaType == types.OCIManifestSchema1
	layerType := types.DockerLayer
	if oci {
		layerType = types.OCILayer
	}
	layer, err := tarball.LayerFromFile(layerPath, tarball.WithMediaType(layerType))
	if err != nil {
		return nil, err
	}
	img, err := mutate.Append(base, mutate.Addendum{
		Layer:     layer,
		MediaType: layerType,
		History:   v1.History{CreatedBy: "dagctl-bot: the dbt project at " + workDir, Comment: labels[LabelRevision]},
	})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("image: the base image's config: %w", err)
	}
	cfg := *cf.Config.DeepCopy()
	cfg.WorkingDir = workDir
	cfg.Labels = maps.Clone(cfg.Labels)
	if cfg.Labels == nil && len(labels) > 0 {
		cfg.Labels = map[string]string{}
	}
	maps.Copy(cfg.Labels, labels)
	if img, err = mutate.Config(img, cfg); err != nil {
		return nil, err
	}
	// Annotations are an OCI manifest's; a Docker schema 2 manifest has none.
	if oci && len(labels) > 0 {
		img = mutate.Annotations(img, labels).(v1.Image)
	}
	return img, nil
}

// registryError says what was refused: credentials, a missing image, or the registry's own error.
func registryError(what string, err error) error {
	var te *transport.Error
	if errors.As(err, &te) {
		switch te.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Errorf("image: %s: the registry refused the credentials (%d): %w", what, te.StatusCode, err)
		case http.StatusNotFound:
			return fmt.Errorf("image: %s: not found: %w", what, err)
		}
	}
	return fmt.Errorf("image: %s: %w", what, err)
}

// anonymous is the keychain of a builder given none.
type anonymous struct{}

func (anonymous) Resolve(authn.Resource) (authn.Authenticator, error) { return authn.Anonymous, nil }
