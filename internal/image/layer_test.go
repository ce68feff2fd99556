package image

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
)

const commit = "3f2c1a9e0b4d5c6a7b8c9d0e1f2a3b4c5d6e7f80"

// startRegistry is go-containerregistry's in-process registry; with a user it asks for Basic credentials and
// answers 401 to any other.
func startRegistry(t *testing.T, user, password string) string {
	t.Helper()
	handler := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	if user != "" {
		inner := handler
		handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u, p, ok := r.BasicAuth(); !ok || u != user || p != password {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			inner.ServeHTTP(w, r)
		})
	}
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// keychain gives one registry's credentials.
type keychain struct{ host, user, password string }

func (k keychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	if r.RegistryStr() == k.host {
		return &authn.Basic{Username: k.user, Password: k.password}, nil
	}
	return authn.Anonymous, nil
}

// tarLayer is a layer of the given files (name → content), as a runtime image's would be.
func tarLayer(t *testing.T, mediaType types.MediaType, files map[string]string) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, content := range files {
		require.NoError(t, tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(content)), Typeflag: tar.TypeReg}))
		_, err := tw.Write([]byte(content))
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	return static.NewLayer(buf.Bytes(), mediaType)
}

// baseImage is a synthetic dbt runtime image: two layers, a working directory, an entrypoint and a label.
func baseImage(t *testing.T, oci bool, arch string) v1.Image {
	t.Helper()
	img, layerType := empty.Image, types.DockerLayer
	if oci {
		img = mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
		layerType = types.OCILayer
	}
	img, err := mutate.AppendLayers(img,
		tarLayer(t, layerType, map[string]string{"usr/local/bin/python": "python " + arch}),
		tarLayer(t, layerType, map[string]string{"usr/local/bin/dbt": "dbt 1.12.6"}),
	)
	require.NoError(t, err)
	cf, err := img.ConfigFile()
	require.NoError(t, err)
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	cf.Config.WorkingDir = "/usr/app"
	cf.Config.Entrypoint = []string{"dbt"}
	cf.Config.Labels = map[string]string{"maintainer": "dbt-labs", LabelRevision: "base's own"}
	img, err = mutate.ConfigFile(img, cf)
	require.NoError(t, err)
	return img
}

func push(t *testing.T, ref string, img v1.Image, opts ...remote.Option) {
	t.Helper()
	r, err := name.ParseReference(ref)
	require.NoError(t, err)
	require.NoError(t, remote.Write(r, img, opts...))
}

func writeFile(t *testing.T, dir, rel, content string, mode os.FileMode) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(rel))
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, []byte(content), mode))
	require.NoError(t, os.Chmod(p, mode)) // past the umask
}

// project is a dbt project after `dbt deps` and a run: what is kept and what is not.
func project(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, dir, "dbt_project.yml", "name: shop\n", 0o644)
	writeFile(t, dir, "models/orders.sql", "select 1 as id\n", 0o644)
	writeFile(t, dir, "models/target/kept.sql", "select 2\n", 0o644) // only the root's target/ is dbt's
	writeFile(t, dir, "scripts/run.sh", "#!/bin/sh\n", 0o755)
	writeFile(t, dir, "seeds/countries.csv", "code\nFR\n", 0o600)
	writeFile(t, dir, "dbt_packages/dbt_utils/macros/star.sql", "{% macro star() %}{% endmacro %}\n", 0o644)
	writeFile(t, dir, ".git/config", "[core]\n", 0o644)
	writeFile(t, dir, "dbt_packages/dbt_utils/.git/HEAD", "ref: main\n", 0o644)
	writeFile(t, dir, "target/manifest.json", "{}", 0o644)
	writeFile(t, dir, "logs/dbt.log", "secret-ish log\n", 0o644)
	require.NoError(t, os.Symlink("orders.sql", filepath.Join(dir, "models/current.sql")))
	require.NoError(t, os.Symlink("../seeds", filepath.Join(dir, "models/seeds")))
	return dir
}

type entry struct {
	typ      byte
	mode     int64
	content  string
	linkname string
}

// layerEntries reads a layer back: each entry by name, and checks what every entry must be.
func layerEntries(t *testing.T, l v1.Layer) (map[string]entry, []string) {
	t.Helper()
	rc, err := l.Uncompressed()
	require.NoError(t, err)
	defer rc.Close()
	tr := tar.NewReader(rc)
	out := map[string]entry{}
	var order []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		body, err := io.ReadAll(tr)
		require.NoError(t, err)
		assert.Equal(t, 0, h.Uid, h.Name)
		assert.Equal(t, 0, h.Gid, h.Name)
		assert.True(t, h.ModTime.Equal(layerTime), "%s: mtime %s", h.Name, h.ModTime)
		out[h.Name] = entry{typ: h.Typeflag, mode: h.Mode, content: string(body), linkname: h.Linkname}
		order = append(order, h.Name)
	}
	return out, order
}

func pull(t *testing.T, ref string, opts ...remote.Option) v1.Image {
	t.Helper()
	r, err := name.ParseReference(ref)
	require.NoError(t, err)
	img, err := remote.Image(r, opts...)
	require.NoError(t, err)
	return img
}

func TestTheProjectIsAppendedAsOneLayerOntoTheBase(t *testing.T) {
	for _, oci := range []bool{true, false} {
		t.Run(map[bool]string{true: "oci", false: "docker"}[oci], func(t *testing.T) {
			host := startRegistry(t, "", "")
			base := baseImage(t, oci, "amd64")
			push(t, host+"/dbt-labs/dbt-postgres:1.11.0", base)

			b := &LayerBuilder{}
			res, err := b.Build(context.Background(), Request{
				Base:       host + "/dbt-labs/dbt-postgres:1.11.0",
				Repository: host + "/acme/marts",
				Tag:        "1.4.0-3f2c1a9e0b4d",
				ProjectDir: project(t),
				Labels:     Labels(commit, "1.4.0", "https://github.com/acme/data"),
			})
			require.NoError(t, err)
			require.Equal(t, host+"/acme/marts@"+res.Digest, res.Reference)
			require.Equal(t, host+"/acme/marts:1.4.0-3f2c1a9e0b4d", res.Tagged)

			img := pull(t, res.Reference)
			digest, err := img.Digest()
			require.NoError(t, err)
			require.Equal(t, res.Digest, digest.String(), "pulled by digest")
			byTag := pull(t, res.Tagged)
			tagDigest, err := byTag.Digest()
			require.NoError(t, err)
			require.Equal(t, res.Digest, tagDigest.String(), "the tag names the same image")

			baseLayers, err := base.Layers()
			require.NoError(t, err)
			layers, err := img.Layers()
			require.NoError(t, err)
			require.Len(t, layers, len(baseLayers)+1, "one layer appended")
			for i := range baseLayers {
				want, _ := baseLayers[i].Digest()
				got, _ := layers[i].Digest()
				assert.Equal(t, want, got, "base layer %d unchanged", i)
			}
			mt, err := layers[len(layers)-1].MediaType()
			require.NoError(t, err)
			assert.Equal(t, map[bool]types.MediaType{true: types.OCILayer, false: types.DockerLayer}[oci], mt)

			entries, order := layerEntries(t, layers[len(layers)-1])
			assert.Equal(t, []string{
				"dbt/", "dbt/project/",
				"dbt/project/dbt_packages/", "dbt/project/dbt_packages/dbt_utils/",
				"dbt/project/dbt_packages/dbt_utils/macros/", "dbt/project/dbt_packages/dbt_utils/macros/star.sql",
				"dbt/project/dbt_project.yml",
				"dbt/project/models/", "dbt/project/models/current.sql", "dbt/project/models/orders.sql",
				"dbt/project/models/seeds", "dbt/project/models/target/", "dbt/project/models/target/kept.sql",
				"dbt/project/scripts/", "dbt/project/scripts/run.sh",
				"dbt/project/seeds/", "dbt/project/seeds/countries.csv",
			}, order, "sorted; .git/, target/ and logs/ left out")
			assert.Equal(t, entry{typ: tar.TypeReg, mode: 0o644, content: "select 1 as id\n"}, entries["dbt/project/models/orders.sql"])
			assert.Equal(t, entry{typ: tar.TypeReg, mode: 0o755, content: "#!/bin/sh\n"}, entries["dbt/project/scripts/run.sh"])
			assert.Equal(t, entry{typ: tar.TypeReg, mode: 0o600, content: "code\nFR\n"}, entries["dbt/project/seeds/countries.csv"])
			assert.Equal(t, "{% macro star() %}{% endmacro %}\n", entries["dbt/project/dbt_packages/dbt_utils/macros/star.sql"].content)
			assert.Equal(t, entry{typ: tar.TypeSymlink, mode: 0o777, linkname: "orders.sql"}, entries["dbt/project/models/current.sql"])
			assert.Equal(t, entry{typ: tar.TypeSymlink, mode: 0o777, linkname: "../seeds"}, entries["dbt/project/models/seeds"],
				"a link to a directory is a link, not a copy of it")
			assert.Equal(t, byte(tar.TypeDir), entries["dbt/project/"].typ)

			cf, err := img.ConfigFile()
			require.NoError(t, err)
			assert.Equal(t, "/dbt/project", cf.Config.WorkingDir)
			assert.Equal(t, []string{"dbt"}, cf.Config.Entrypoint, "the base's config is kept")
			baseDigest, err := base.Digest()
			require.NoError(t, err)
			assert.Equal(t, map[string]string{
				"maintainer":    "dbt-labs",
				LabelRevision:   commit,
				LabelVersion:    "1.4.0",
				LabelSource:     "https://github.com/acme/data",
				LabelBase:       host + "/dbt-labs/dbt-postgres:1.11.0",
				LabelBaseDigest: baseDigest.String(),
			}, cf.Config.Labels)
			assert.Equal(t, "linux", cf.OS)
			assert.Len(t, cf.RootFS.DiffIDs, len(baseLayers)+1)

			m, err := img.Manifest()
			require.NoError(t, err)
			if oci {
				assert.Equal(t, commit, m.Annotations[LabelRevision])
				assert.Equal(t, "1.4.0", m.Annotations[LabelVersion])
				assert.Equal(t, baseDigest.String(), m.Annotations[LabelBaseDigest])
			} else {
				assert.Empty(t, m.Annotations, "a Docker manifest has no annotations")
			}
		})
	}
}

func TestTheSameProjectMakesTheSameDigest(t *testing.T) {
	host := startRegistry(t, "", "")
	push(t, host+"/runtime:1", baseImage(t, true, "amd64"))
	build := func(dir, tag string) Result {
		t.Helper()
		res, err := (&LayerBuilder{}).Build(context.Background(), Request{
			Base: host + "/runtime:1", Repository: host + "/acme/marts", Tag: tag, ProjectDir: dir,
			Labels: Labels(commit, "1.4.0", ""),
		})
		require.NoError(t, err)
		return res
	}
	first := project(t)
	second := project(t) // the same files, written later, at other times
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	require.NoError(t, filepath.Walk(second, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.Mode()&os.ModeSymlink != 0 {
			return err
		}
		return os.Chtimes(p, old, old)
	}))

	a, b := build(first, "a"), build(second, "b")
	assert.Equal(t, a.Digest, b.Digest, "same files, same base, same labels")
	link := filepath.Join(t.TempDir(), "checkout")
	require.NoError(t, os.Symlink(first, link))
	assert.Equal(t, a.Digest, build(link, "link").Digest, "the project directory named through a symlink")
	assert.Equal(t, a.Digest, build(first, "a").Digest, "built again")

	writeFile(t, second, "models/orders.sql", "select 2 as id\n", 0o644)
	assert.NotEqual(t, a.Digest, build(second, "c").Digest, "a changed model")
	require.NoError(t, os.Chmod(filepath.Join(first, "scripts/run.sh"), 0o644))
	assert.NotEqual(t, a.Digest, build(first, "d").Digest, "a changed mode")
}

func TestASymlinkLeavingTheProjectIsRefused(t *testing.T) {
	host := startRegistry(t, "", "")
	push(t, host+"/runtime:1", baseImage(t, true, "amd64"))
	for _, tc := range []struct {
		name  string
		links [][2]string // link (relative to the project) → target
		want  string
	}{
		{"up and out", [][2]string{{"models/passwd", "../../etc/passwd"}}, "symlink models/passwd -> ../../etc/passwd points outside the project"},
		{"absolute", [][2]string{{"models/passwd", "/etc/passwd"}}, "symlink models/passwd -> /etc/passwd is absolute"},
		{"the project's parent", [][2]string{{"up", ".."}}, "symlink up -> .. points outside the project"},
		// Each link looks inside as text (`d/l/..` cleans to `d`), but d/l is the root, so a -> the root's parent.
		{"a chain", [][2]string{{"d/l", ".."}, {"a", "d/l/.."}}, "symlink a -> d/l/.. points outside the project"},
		// a/p is checked before z: sorted by name.
		{"through an absolute link", [][2]string{{"z", "/etc"}, {"a/p", "../z/passwd"}}, "symlink a/p -> ../z/passwd goes through z -> /etc"},
		{"a loop", [][2]string{{"x", "y"}, {"y", "x"}}, "goes through too many links"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := project(t)
			for _, l := range tc.links {
				p := filepath.Join(dir, filepath.FromSlash(l[0]))
				require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
				require.NoError(t, os.Symlink(l[1], p))
			}
			_, err := (&LayerBuilder{}).Build(context.Background(), Request{
				Base: host + "/runtime:1", Repository: host + "/acme/marts", Tag: "t", ProjectDir: dir,
			})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)

			repo, err := name.NewRepository(host + "/acme/marts")
			require.NoError(t, err)
			tags, _ := remote.List(repo)
			assert.Empty(t, tags, "nothing pushed")
		})
	}
}

func TestAWhiteoutNameInTheProjectIsRefused(t *testing.T) {
	host := startRegistry(t, "", "")
	push(t, host+"/runtime:1", baseImage(t, true, "amd64"))
	dir := project(t)
	writeFile(t, dir, "models/.wh.orders.sql", "", 0o644)
	_, err := (&LayerBuilder{}).Build(context.Background(), Request{
		Base: host + "/runtime:1", Repository: host + "/acme/marts", Tag: "t", ProjectDir: dir,
	})
	require.ErrorContains(t, err, "models/.wh.orders.sql: a name starting with .wh. is a whiteout")
}

func TestARegistryRefusingTheCredentialsIsAClearError(t *testing.T) {
	open := startRegistry(t, "", "")
	push(t, open+"/runtime:1", baseImage(t, true, "amd64"))
	private := startRegistry(t, "bot", "s3cret-password")
	push(t, private+"/runtime:1", baseImage(t, true, "amd64"),
		remote.WithAuthFromKeychain(keychain{private, "bot", "s3cret-password"}))

	build := func(k authn.Keychain, base, repo string) error {
		_, err := (&LayerBuilder{Keychain: k}).Build(context.Background(), Request{
			Base: base, Repository: repo, Tag: "1.4.0-3f2c1a9e0b4d", ProjectDir: project(t),
		})
		return err
	}

	wrong := keychain{private, "bot", "wrong-password"}
	err := build(wrong, open+"/runtime:1", private+"/acme/marts")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "image: push "+private+"/acme/marts:1.4.0-3f2c1a9e0b4d: the registry refused the credentials (401)")
	assert.NotContains(t, err.Error(), "wrong-password", "no secret in the error")
	var te *transport.Error
	assert.True(t, errors.As(err, &te), "the registry's error is kept: %v", err)

	err = build(wrong, private+"/runtime:1", open+"/acme/marts")
	assert.ErrorContains(t, err, "image: pull the base image "+private+"/runtime:1: the registry refused the credentials (401)")
	err = build(nil, private+"/runtime:1", open+"/acme/marts")
	assert.ErrorContains(t, err, "the registry refused the credentials (401)", "anonymous")

	right := keychain{private, "bot", "s3cret-password"}
	require.NoError(t, build(right, private+"/runtime:1", private+"/acme/marts"), "the right credentials pass")
}

func TestAMissingBaseIsAClearErrorNamingTheRef(t *testing.T) {
	host := startRegistry(t, "", "")
	push(t, host+"/runtime:1", baseImage(t, true, "amd64"))
	for _, base := range []string{host + "/runtime:2", host + "/nothing:1"} {
		_, err := (&LayerBuilder{}).Build(context.Background(), Request{
			Base: base, Repository: host + "/acme/marts", Tag: "t", ProjectDir: project(t),
		})
		require.ErrorContains(t, err, "image: pull the base image "+base+": not found")
	}
	_, err := (&LayerBuilder{}).Build(context.Background(), Request{
		Base: host + "/runtime:1", Repository: host + "/acme/marts", Tag: "t", ProjectDir: filepath.Join(t.TempDir(), "gone"),
	})
	require.ErrorContains(t, err, "image: project directory")
}

func TestAnIndexGivesItsLinuxAmd64Image(t *testing.T) {
	host := startRegistry(t, "", "")
	arm, amd := baseImage(t, true, "arm64"), baseImage(t, true, "amd64")
	index := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
	)
	ref, err := name.ParseReference(host + "/runtime:multi")
	require.NoError(t, err)
	require.NoError(t, remote.WriteIndex(ref, index))
	armOnly := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}})
	armRef, err := name.ParseReference(host + "/runtime:arm")
	require.NoError(t, err)
	require.NoError(t, remote.WriteIndex(armRef, armOnly))

	res, err := (&LayerBuilder{}).Build(context.Background(), Request{
		Base: host + "/runtime:multi", Repository: host + "/acme/marts", Tag: "t", ProjectDir: project(t),
	})
	require.NoError(t, err)
	cf, err := pull(t, res.Reference).ConfigFile()
	require.NoError(t, err)
	assert.Equal(t, "amd64", cf.Architecture)
	amdLayers, err := amd.Layers()
	require.NoError(t, err)
	got, err := pull(t, res.Reference).Layers()
	require.NoError(t, err)
	wantFirst, _ := amdLayers[0].Digest()
	gotFirst, _ := got[0].Digest()
	assert.Equal(t, wantFirst, gotFirst, "the amd64 image's layers")

	_, err = (&LayerBuilder{}).Build(context.Background(), Request{
		Base: host + "/runtime:arm", Repository: host + "/acme/marts", Tag: "t", ProjectDir: project(t),
	})
	require.ErrorContains(t, err, "image: pull the base image "+host+"/runtime:arm")

	res, err = (&LayerBuilder{Platform: v1.Platform{OS: "linux", Architecture: "arm64"}}).Build(context.Background(), Request{
		Base: host + "/runtime:arm", Repository: host + "/acme/marts", Tag: "t", ProjectDir: project(t),
	})
	require.NoError(t, err, "a builder for arm64")
	cf, err = pull(t, res.Reference).ConfigFile()
	require.NoError(t, err)
	assert.Equal(t, "arm64", cf.Architecture)
}

func TestABadRequestIsRefusedBeforeAnyPull(t *testing.T) {
	for _, tc := range []struct {
		req  Request
		want string
	}{
		{Request{Repository: "r.example/a", Tag: "t"}, "no base image"},
		{Request{Base: "r.example/b:1", Repository: "r.example/a:tag", Tag: "t"}, `repository "r.example/a:tag"`},
		{Request{Base: "r.example/b:1", Repository: "r.example/a"}, "no tag"},
		{Request{Base: "r.example/b:1", Repository: "acme/marts", Tag: "t"}, "requires the registry to be explicitly defined"},
		{Request{Base: "r.example/b:1", Repository: "r.example/a", Tag: "-bad"}, `tag "-bad"`},
		{Request{Base: "r.example/b:1", Repository: "r.example/a", Tag: "t", ImagePath: "/"}, `image path "/" is the image's root`},
		{Request{Base: "r.example/b:1", Repository: "r.example/a", Tag: "t", ImagePath: "dbt"}, `image path "dbt" is not absolute`},
	} {
		// r.example does not resolve: a request that got as far as a pull would fail on the network instead.
		_, err := (&LayerBuilder{Transport: refuseAll{}}).Build(context.Background(), tc.req)
		assert.ErrorContains(t, err, tc.want)
		assert.NotContains(t, err.Error(), "no request may reach", tc.want)
	}
}

// refuseAll is a transport that fails every request, for requests refused before any.
type refuseAll struct{}

func (refuseAll) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("no request may reach a registry")
}
