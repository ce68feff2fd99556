package server_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/forgetest/e2e"
	"github.com/dagctl/dagctl-bot/internal/image"
	"github.com/dagctl/dagctl-bot/internal/repoconfig"
	"github.com/dagctl/dagctl-bot/internal/server"
	"github.com/dagctl/dagctl-bot/internal/serverconfig"
	"github.com/dagctl/dagctl-bot/internal/testutil"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// imageRegistry is go-containerregistry's in-process registry, asking for the bot's Basic credentials, with a
// synthetic dbt runtime image pushed as the base.
type imageRegistry struct {
	host string
	// keychain has the registry's credentials: the operator's.
	keychain authn.Keychain
}

const (
	registryUser     = "dagctl-bot"
	registryPassword = "push-secret-0123"
)

func startImageRegistry(t *testing.T) imageRegistry {
	t.Helper()
	inner := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != registryUser || p != registryPassword {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		inner.ServeHTTP(w, r)
	}))
	// No connection outlives a request: the world checks that no goroutine outlives it, before this server closes.
	srv.Config.SetKeepAlivesEnabled(false)
	srv.Start()
	t.Cleanup(srv.Close)
	reg := imageRegistry{host: strings.TrimPrefix(srv.URL, "http://")}
	reg.keychain = basicKeychain{host: reg.host, user: registryUser, password: registryPassword}

	// The runtime image: a layer of its own, a working directory and a label.
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	require.NoError(t, tw.WriteHeader(&tar.Header{Name: "usr/local/bin/dbt", Mode: 0o755, Size: 4, Typeflag: tar.TypeReg}))
	_, err := tw.Write([]byte("dbt\n"))
	require.NoError(t, err)
	require.NoError(t, tw.Close())
	base, err := mutate.AppendLayers(empty.Image, static.NewLayer(buf.Bytes(), types.DockerLayer))
	require.NoError(t, err)
	cf, err := base.ConfigFile()
	require.NoError(t, err)
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.WorkingDir = "/usr/app"
	base, err = mutate.ConfigFile(base, cf)
	require.NoError(t, err)
	ref, err := name.ParseReference(reg.base())
	require.NoError(t, err)
	require.NoError(t, remote.Write(ref, base, remote.WithAuthFromKeychain(reg.keychain)))
	return reg
}

func (r imageRegistry) base() string            { return r.host + "/dbt/runtime:1.11" }
func (r imageRegistry) repository() string      { return r.host + "/acme/marts" }
func (r imageRegistry) repo(path string) string { return r.host + "/" + path }

// basicKeychain gives one registry's credentials.
type basicKeychain struct{ host, user, password string }

func (k basicKeychain) Resolve(res authn.Resource) (authn.Authenticator, error) {
	if res.RegistryStr() == k.host {
		return &authn.Basic{Username: k.user, Password: k.password}, nil
	}
	return authn.Anonymous, nil
}

// withImageBuilder gives the bot a layers builder with keychain.
func withImageBuilder(keychain authn.Keychain) func(*world, *serverconfig.Config, *server.Options) {
	return func(_ *world, _ *serverconfig.Config, opts *server.Options) {
		opts.ImageBuilders = map[repoconfig.ImageBuilder]image.Builder{repoconfig.BuildLayers: &image.LayerBuilder{Keychain: keychain}}
	}
}

// dbtImageConfig is dbtConfig with the project's image: the base and the repository it pushes to.
func dbtImageConfig(t *testing.T, version, base, repository string) string {
	return replaceOnce(t, dbtConfig(t, version), "    version: \""+version+"\"\n",
		"    version: \""+version+"\"\n    image:\n      base: \""+base+"\"\n      repository: \""+repository+"\"\n")
}

// dbtImageBase is dbtBase with the image configured on main.
func dbtImageBase(t *testing.T, reg imageRegistry) map[string]string {
	files := dbtBase(t)
	files[repoconfig.Path] = dbtImageConfig(t, "1.0.0", reg.base(), reg.repository())
	return files
}

var builtImage = regexp.MustCompile("(?i)image built: `([^`]+)`")

// botText is everything the bot told about an apply: its status's text and the PR's bot comments.
func botText(w *world, s vcs.StatusState, number int, title, summary string) string {
	parts := []string{string(s), title, summary}
	for _, c := range w.Comments(number) {
		if c.ByBot {
			parts = append(parts, c.Body)
		}
	}
	return strings.Join(parts, "\n")
}

// projectLayer is the image's last layer's files (the project), by name, with their content.
func projectLayer(t *testing.T, img v1.Image) map[string]string {
	t.Helper()
	layers, err := img.Layers()
	require.NoError(t, err)
	require.NotEmpty(t, layers)
	rc, err := layers[len(layers)-1].Uncompressed()
	require.NoError(t, err)
	defer rc.Close()
	out := map[string]string{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		body, err := io.ReadAll(tr)
		require.NoError(t, err)
		out[h.Name] = string(body)
	}
}

// An approved dbt deploy whose project configures an image builds it before dbt runs, under the lock and after
// the re-plan: the job hands the project back, the bot pushes with its own credentials to the repository the
// default branch names (the PR's own repository line is not where it goes), the image holds the PR's change in
// the project layer onto the base, its digest is shown, and the apply then runs dbt (in the checkout: the local
// executor runs no images).
func TestDBTImageAnApprovedDeployBuildsTheImagePushedWhereTheDefaultBranchSays(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		reg := startImageRegistry(t)
		w := newWorld(t, forge, worldOptions{seedProd: true, baseFiles: dbtImageBase(t, reg), configure: withImageBuilder(reg.keychain)})
		macro := dbtProjectDir + "/macros/cents_to_dollars.sql"
		elsewhere := reg.repo("other-team/prod-image")
		files := map[string]string{
			// The PR aims the push at another team's repository on the same registry.
			repoconfig.Path: dbtImageConfig(t, "1.1.0", reg.base(), elsewhere),
			macro:           replaceOnce(t, testutil.DBTExampleFiles(t)["macros/cents_to_dollars.sql"], "100.0", "100.00"),
		}
		head := w.PR(1, "dollars", "alice", files)
		w.send(w.PREvent(vcs.PROpened, 1))
		plan, ok := w.Status("dagctl/plan: marts/prod", head)
		require.True(t, ok, "checks: %v", w.Statuses())
		require.Equal(t, vcs.StatusSuccess, plan.State, plan.Summary)
		sticky := w.Sticky(1)
		assert.Contains(t, sticky, "**Apply:** builds the image (`"+reg.repository()+"`), then runs:", "the repository the default branch names")
		assert.NotContains(t, sticky, elsewhere)

		w.review(1, head, "bob", vcs.ReviewApproved)
		mergeSHA := w.merge(1)
		w.send(w.PREvent(vcs.PRMerged, 1))
		apply, ok := w.Status("dagctl/apply: marts/prod", mergeSHA)
		require.True(t, ok, "checks: %v", w.Statuses())
		log := runLog(t, w, apply)
		require.Equal(t, vcs.StatusSuccess, apply.State, "%s\n%s\n%s", apply.Title, apply.Summary, log)

		// The order: the re-plan, the image, then dbt.
		verify := strings.Index(log, "dagctl: verify:")
		built := strings.Index(log, "dagctl: image: built ")
		ran := strings.Index(log, "dagctl: command 1 of 1: dbt build --target prod")
		require.True(t, verify >= 0 && built > verify && ran > built, "re-plan %d, image %d, dbt %d:\n%s", verify, built, ran, log)
		assert.Contains(t, log, "dagctl: apply: in the checkout: this executor runs no images")
		assert.NotContains(t, log, registryPassword, "the registry's credentials never reach a job or its log")

		told := botText(w, apply.State, 1, apply.Title, apply.Summary)
		m := builtImage.FindStringSubmatch(told)
		require.NotNil(t, m, "the digest is shown: %s", told)
		ref := m[1]
		assert.True(t, strings.HasPrefix(ref, reg.repository()+"@sha256:"), ref)

		// Pulled back by that digest: the base's layer, then the project at the merge commit with the PR's change.
		digest, err := name.NewDigest(ref)
		require.NoError(t, err)
		img, err := remote.Image(digest, remote.WithAuthFromKeychain(reg.keychain))
		require.NoError(t, err)
		layer := projectLayer(t, img)
		assert.Contains(t, layer["dbt/project/macros/cents_to_dollars.sql"], "100.00", "the PR's change is in the image")
		assert.Contains(t, layer, "dbt/project/dbt_project.yml")
		assert.Contains(t, layer, "dbt/project/models/staging/stg_orders.sql")
		for path := range layer {
			assert.False(t, strings.HasPrefix(path, "dbt/project/target/"), "%s: dbt's target/ is not in the image", path)
		}
		cf, err := img.ConfigFile()
		require.NoError(t, err)
		assert.Equal(t, mergeSHA, cf.Config.Labels[image.LabelRevision], "built from the applied commit")
		assert.Equal(t, "1.1.0", cf.Config.Labels[image.LabelVersion])
		assert.Equal(t, image.DefaultImagePath, cf.Config.WorkingDir)
		tag, err := image.Tag("1.1.0", mergeSHA)
		require.NoError(t, err)
		tagRef, err := name.NewTag(reg.repository() + ":" + tag)
		require.NoError(t, err)
		tagged, err := remote.Image(tagRef, remote.WithAuthFromKeychain(reg.keychain))
		require.NoError(t, err)
		taggedDigest, err := tagged.Digest()
		require.NoError(t, err)
		assert.Equal(t, digest.DigestStr(), taggedDigest.String(), "and by its tag")

		stored, err := w.srv.Store().ApplyImageOf(t.Context(), runIDOf(t, apply.DetailsURL))
		require.NoError(t, err, "the image is recorded with the apply")
		assert.Equal(t, ref, stored.Reference)

		// Nothing went where the PR said.
		other, err := name.NewRepository(elsewhere)
		require.NoError(t, err)
		_, err = remote.List(other, remote.WithAuthFromKeychain(reg.keychain))
		var te *transport.Error
		require.ErrorAs(t, err, &te, "the PR's repository has no tags")
		assert.Equal(t, http.StatusNotFound, te.StatusCode)
	})
}

// A build_only deploy (only infra changed) builds and pushes the image and runs no dbt command: the apply
// succeeds with the image, and the production state stays the last deploy's.
func TestDBTImageBuildOnlyPushesTheImageAndRunsNoDBT(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		reg := startImageRegistry(t)
		w := newWorld(t, forge, worldOptions{seedProd: true, baseFiles: dbtImageBase(t, reg), configure: withImageBuilder(reg.keychain)})
		head := w.PR(1, "requirements", "alice", map[string]string{
			repoconfig.Path:                     dbtImageConfig(t, "1.0.1", reg.base(), reg.repository()),
			dbtProjectDir + "/requirements.txt": "dbt-duckdb==1.10.0\n",
		})
		w.send(w.PREvent(vcs.PROpened, 1))
		plan, ok := w.Status("dagctl/plan: marts/prod", head)
		require.True(t, ok, "checks: %v", w.Statuses())
		require.Equal(t, vcs.StatusSuccess, plan.State, plan.Summary)
		require.Contains(t, w.Sticky(1), "**Scope: `build_only`**")
		assert.Contains(t, w.Sticky(1), "**Apply:** builds the image (`"+reg.repository()+"`); no dbt command runs.")

		w.review(1, head, "bob", vcs.ReviewApproved)
		mergeSHA := w.merge(1)
		w.send(w.PREvent(vcs.PRMerged, 1))
		apply, ok := w.Status("dagctl/apply: marts/prod", mergeSHA)
		require.True(t, ok, "checks: %v", w.Statuses())
		log := runLog(t, w, apply)
		require.Equal(t, vcs.StatusSuccess, apply.State, "%s\n%s\n%s", apply.Title, apply.Summary, log)
		assert.Equal(t, "Built the image: no dbt command runs (build_only)", apply.Title)
		assert.Contains(t, log, "dagctl: image: built ")
		assert.Contains(t, log, "dagctl: build_only: no dbt command runs")
		assert.NotContains(t, log, "dagctl: command 1", "no dbt command ran")
		assert.NotContains(t, log, "dagctl: apply:", "no apply job started")

		m := builtImage.FindStringSubmatch(botText(w, apply.State, 1, apply.Title, apply.Summary))
		require.NotNil(t, m, "the digest is shown")
		ref, err := name.NewDigest(m[1])
		require.NoError(t, err)
		img, err := remote.Image(ref, remote.WithAuthFromKeychain(reg.keychain))
		require.NoError(t, err, "pushed")
		assert.Equal(t, "dbt-duckdb==1.10.0\n", projectLayer(t, img)["dbt/project/requirements.txt"])

		deployed, err := w.srv.Store().LastDeployed(t.Context(), w.forge(), w.repoName(), "marts", "prod")
		require.NoError(t, err)
		assert.Equal(t, mergeSHA, deployed.CommitSHA, "build_only deployed the commit")
	})
}

// A registry that refuses the bot's credentials fails the apply with the builder's clear error, before any dbt
// command runs; the check ends, and nothing is recorded as deployed.
func TestDBTImageARegistryRefusingTheCredentialsFailsTheApply(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		reg := startImageRegistry(t)
		wrong := basicKeychain{host: reg.host, user: registryUser, password: "wrong-pass-5678"}
		w := newWorld(t, forge, worldOptions{seedProd: true, baseFiles: dbtImageBase(t, reg), configure: withImageBuilder(wrong)})
		macro := dbtProjectDir + "/macros/cents_to_dollars.sql"
		head := w.PR(1, "dollars", "alice", map[string]string{
			repoconfig.Path: dbtImageConfig(t, "1.1.0", reg.base(), reg.repository()),
			macro:           replaceOnce(t, testutil.DBTExampleFiles(t)["macros/cents_to_dollars.sql"], "100.0", "100.00"),
		})
		w.send(w.PREvent(vcs.PROpened, 1))
		w.review(1, head, "bob", vcs.ReviewApproved)
		mergeSHA := w.merge(1)
		w.send(w.PREvent(vcs.PRMerged, 1))
		apply, ok := w.Status("dagctl/apply: marts/prod", mergeSHA)
		require.True(t, ok, "checks: %v", w.Statuses())
		log := runLog(t, w, apply)
		require.Equal(t, vcs.StatusFailure, apply.State, "%s\n%s\n%s", apply.Title, apply.Summary, log)
		assert.Equal(t, "Building the image failed: nothing was applied", apply.Title)
		told := botText(w, apply.State, 1, apply.Title, apply.Summary)
		assert.Contains(t, told, "the registry refused the credentials (401)")
		assert.NotContains(t, log, "dagctl: command 1", "no dbt command ran")
		assert.NotContains(t, told+log, "wrong-pass-5678", "the credentials are not shown")
		_, err := w.srv.Store().LastDeployed(t.Context(), w.forge(), w.repoName(), "marts", "prod")
		assert.Error(t, err, "nothing deployed")
	})
}

var runLink = regexp.MustCompile(`/runs/([0-9]+)/`)

// runIDOf is the run a check's details link names.
func runIDOf(t *testing.T, detailsURL string) int64 {
	t.Helper()
	m := runLink.FindStringSubmatch(detailsURL)
	require.NotNil(t, m, detailsURL)
	id, err := strconv.ParseInt(m[1], 10, 64)
	require.NoError(t, err)
	return id
}
