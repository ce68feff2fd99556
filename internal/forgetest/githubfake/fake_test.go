package githubfake_test

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/forgetest/githubfake"
)

type harness struct {
	t    *testing.T
	fake *githubfake.Fake
	key  *rsa.PrivateKey
	git  *githubfake.GitRepo
	repo *githubfake.Repo
}

func newHarness(t *testing.T) *harness {
	pemBytes, pub, err := githubfake.GenerateAppKey()
	require.NoError(t, err)
	block, _ := pem.Decode(pemBytes)
	key, err := x509.ParsePKCS1PrivateKey(block.Bytes)
	require.NoError(t, err)
	h := &harness{t: t, fake: githubfake.New(t), key: key}
	h.fake.AddApp(1, "bot", pub)
	h.fake.AddInstallation(githubfake.Installation{ID: 10, AppID: 1, Account: "acme"})
	h.git = githubfake.NewGitRepo(t, "main")
	h.git.Commit("main", map[string]string{"README.md": strings.Repeat("hello world ", 10), "dir/a.txt": "a"}, "init")
	h.repo = h.fake.AddRepo("acme", "repo", h.git.Dir, "main")
	return h
}

// jwt signs an app JWT by hand, as GitHub documents it.
func (h *harness) jwt(iss any, iat, exp time.Time, key *rsa.PrivateKey) string {
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signing := enc(map[string]string{"alg": "RS256", "typ": "JWT"}) + "." +
		enc(map[string]any{"iss": iss, "iat": iat.Unix(), "exp": exp.Unix()})
	digest := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, digest[:])
	require.NoError(h.t, err)
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func (h *harness) do(method, path, auth string, body any) (*http.Response, []byte) {
	var reader io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(h.t, err)
		reader = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, h.fake.APIURL()+path, reader)
	require.NoError(h.t, err)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(h.t, err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	require.NoError(h.t, err)
	return resp, out
}

func (h *harness) token() string {
	now := time.Now()
	resp, body := h.do("POST", "/app/installations/10/access_tokens", "Bearer "+h.jwt(1, now.Add(-30*time.Second), now.Add(time.Minute), h.key), nil)
	require.Equal(h.t, http.StatusCreated, resp.StatusCode, string(body))
	var tok struct {
		Token     string    `json:"token"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	require.NoError(h.t, json.Unmarshal(body, &tok))
	assert.Equal(h.t, h.fake.Now().Add(time.Hour), tok.ExpiresAt)
	return tok.Token
}

func TestAppJWTIsVerified(t *testing.T) {
	h := newHarness(t)
	now := time.Now()
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)

	for name, tc := range map[string]struct {
		auth string
		want int
	}{
		"valid, iss as number":   {"Bearer " + h.jwt(1, now.Add(-30*time.Second), now.Add(time.Minute), h.key), 201},
		"valid, iss as string":   {"Bearer " + h.jwt("1", now.Add(-30*time.Second), now.Add(time.Minute), h.key), 201},
		"signed by another key":  {"Bearer " + h.jwt(1, now, now.Add(time.Minute), other), 401},
		"expired":                {"Bearer " + h.jwt(1, now.Add(-5*time.Minute), now.Add(-time.Minute), h.key), 401},
		"lives over ten minutes": {"Bearer " + h.jwt(1, now, now.Add(11*time.Minute), h.key), 401},
		"unknown app":            {"Bearer " + h.jwt(2, now, now.Add(time.Minute), h.key), 401},
		"not a JWT":              {"Bearer nonsense", 401},
		"no authorization":       {"", 401},
	} {
		resp, body := h.do("POST", "/app/installations/10/access_tokens", tc.auth, nil)
		assert.Equal(t, tc.want, resp.StatusCode, "%s: %s", name, body)
	}
	resp, _ := h.do("POST", "/app/installations/99/access_tokens", "Bearer "+h.jwt(1, now, now.Add(time.Minute), h.key), nil)
	assert.Equal(t, 404, resp.StatusCode, "unknown installation")
}

func TestTokensExpireOnTheFakeClock(t *testing.T) {
	h := newHarness(t)
	token := h.token()
	resp, _ := h.do("GET", "/repos/acme/repo/contents/README.md", "token "+token, nil)
	assert.Equal(t, 200, resp.StatusCode)
	resp, _ = h.do("GET", "/repos/acme/repo/contents/README.md", "Bearer "+token, nil)
	assert.Equal(t, 200, resp.StatusCode, "GitHub accepts both schemes")

	h.fake.Advance(time.Hour)
	resp, body := h.do("GET", "/repos/acme/repo/contents/README.md", "token "+token, nil)
	assert.Equal(t, 401, resp.StatusCode)
	assert.JSONEq(t, `{"message":"Bad credentials","documentation_url":"https://docs.github.com/rest","status":"401"}`, string(body))

	resp, _ = h.do("GET", "/repos/acme/repo/contents/README.md", "token ghs_1_unknown", nil)
	assert.Equal(t, 401, resp.StatusCode)
}

func TestContentsAreBase64LikeGitHub(t *testing.T) {
	h := newHarness(t)
	token := h.token()
	resp, body := h.do("GET", "/repos/acme/repo/contents/README.md?ref=main", "token "+token, nil)
	require.Equal(t, 200, resp.StatusCode, string(body))
	var file struct {
		Type, Encoding, Content, Name, Path, SHA string
		Size                                     int
	}
	require.NoError(t, json.Unmarshal(body, &file))
	assert.Equal(t, "file", file.Type)
	assert.Equal(t, "base64", file.Encoding)
	assert.Equal(t, 120, file.Size)
	assert.Equal(t, h.git.Git("rev-parse", "main:README.md"), file.SHA)
	lines := strings.Split(strings.TrimSuffix(file.Content, "\n"), "\n")
	assert.Len(t, lines[0], 60, "wrapped every 60 characters")
	decoded, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(file.Content, "\n", ""))
	require.NoError(t, err)
	assert.Equal(t, strings.Repeat("hello world ", 10), string(decoded))

	resp, body = h.do("GET", "/repos/acme/repo/contents/dir", "token "+token, nil)
	require.Equal(t, 200, resp.StatusCode)
	var entries []struct{ Type, Name, Path string }
	require.NoError(t, json.Unmarshal(body, &entries))
	assert.Equal(t, []struct{ Type, Name, Path string }{{"file", "a.txt", "dir/a.txt"}}, entries)

	resp, _ = h.do("GET", "/repos/acme/repo/contents/nope.txt", "token "+token, nil)
	assert.Equal(t, 404, resp.StatusCode)
	resp, _ = h.do("GET", "/repos/other/repo/contents/README.md", "token "+token, nil)
	assert.Equal(t, 404, resp.StatusCode, "a repository outside the installation is hidden")
}

func TestCheckRunRules(t *testing.T) {
	h := newHarness(t)
	token := "token " + h.token()
	sha := h.git.SHA("main")
	h.repo.SetPR(githubfake.PR{Number: 3, Author: "alice", HeadRef: "main", HeadSHA: sha})

	resp, body := h.do("POST", "/repos/acme/repo/check-runs", token, map[string]any{
		"name": "dagctl/plan: prod", "head_sha": sha, "status": "completed",
	})
	assert.Equal(t, 422, resp.StatusCode, "completed needs a conclusion: %s", body)
	resp, _ = h.do("POST", "/repos/acme/repo/check-runs", token, map[string]any{
		"name": "dagctl/plan: prod", "head_sha": sha, "output": map[string]any{"title": "only a title"},
	})
	assert.Equal(t, 422, resp.StatusCode, "output needs title and summary")
	resp, body = h.do("POST", "/repos/acme/repo/check-runs", token, map[string]any{
		"name": "dagctl/plan: prod", "head_sha": sha,
		"output": map[string]any{"title": "t", "summary": strings.Repeat("x", 65536)},
	})
	assert.Equal(t, 422, resp.StatusCode)
	assert.Contains(t, string(body), "Only 65535 characters are allowed; 65536 were supplied.")

	for range 2 {
		resp, body = h.do("POST", "/repos/acme/repo/check-runs", token, map[string]any{
			"name": "dagctl/plan: prod", "head_sha": sha, "conclusion": "success",
		})
		require.Equal(t, 201, resp.StatusCode, string(body))
	}
	var created struct {
		Status       string
		PullRequests []struct{ Number int } `json:"pull_requests"`
	}
	require.NoError(t, json.Unmarshal(body, &created))
	assert.Equal(t, "completed", created.Status, "a conclusion completes the run")
	assert.Equal(t, 3, created.PullRequests[0].Number)

	var list struct {
		TotalCount int `json:"total_count"`
	}
	_, body = h.do("GET", "/repos/acme/repo/commits/main/check-runs", token, nil)
	require.NoError(t, json.Unmarshal(body, &list))
	assert.Equal(t, 1, list.TotalCount, "the default filter keeps the latest run per name")
	_, body = h.do("GET", "/repos/acme/repo/commits/"+sha+"/check-runs?filter=all", token, nil)
	require.NoError(t, json.Unmarshal(body, &list))
	assert.Equal(t, 2, list.TotalCount)
}

func TestPaginationLinks(t *testing.T) {
	h := newHarness(t)
	token := "token " + h.token()
	h.repo.SetPR(githubfake.PR{Number: 1, Author: "alice"})
	for i := range 5 {
		h.repo.AddComment(1, "alice", fmt.Sprint(i))
	}
	resp, body := h.do("GET", "/repos/acme/repo/issues/1/comments?per_page=2&page=2", token, nil)
	require.Equal(t, 200, resp.StatusCode)
	var comments []struct{ Body string }
	require.NoError(t, json.Unmarshal(body, &comments))
	assert.Equal(t, []struct{ Body string }{{"2"}, {"3"}}, comments)
	link := resp.Header.Get("Link")
	assert.Contains(t, link, `page=3&per_page=2>; rel="next"`)
	assert.Contains(t, link, `page=3&per_page=2>; rel="last"`)
	assert.Contains(t, link, `page=1&per_page=2>; rel="first"`)
	assert.Contains(t, link, `page=1&per_page=2>; rel="prev"`)
	assert.Contains(t, link, "/api/v3/repos/acme/repo/issues/1/comments")
}

func TestTheAppKnowsItselfAndAuthorsItsCommentsAsItsBot(t *testing.T) {
	h := newHarness(t)
	now := time.Now()
	resp, body := h.do("GET", "/app", "Bearer "+h.jwt(1, now.Add(-30*time.Second), now.Add(time.Minute), h.key), nil)
	require.Equal(t, 200, resp.StatusCode, string(body))
	var app struct {
		ID   int64  `json:"id"`
		Slug string `json:"slug"`
	}
	require.NoError(t, json.Unmarshal(body, &app))
	assert.Equal(t, int64(1), app.ID)
	assert.Equal(t, "bot", app.Slug)
	token := "token " + h.token()
	resp, _ = h.do("GET", "/app", token, nil)
	assert.Equal(t, 401, resp.StatusCode, "GET /app takes the app's JWT, not an installation token")

	h.repo.SetPR(githubfake.PR{Number: 1, Author: "alice"})
	h.repo.AddComment(1, "alice", "mine")
	h.repo.AddComment(1, "bot[bot]", "a person cannot be a Bot")
	resp, body = h.do("POST", "/repos/acme/repo/issues/1/comments", token, map[string]string{"body": "the app's"})
	require.Equal(t, 201, resp.StatusCode, string(body))
	resp, body = h.do("GET", "/repos/acme/repo/issues/1/comments", token, nil)
	require.Equal(t, 200, resp.StatusCode, string(body))
	var list []struct {
		Body string `json:"body"`
		User struct {
			Login string `json:"login"`
			Type  string `json:"type"`
		} `json:"user"`
	}
	require.NoError(t, json.Unmarshal(body, &list))
	require.Len(t, list, 3)
	assert.Equal(t, [2]string{"alice", "User"}, [2]string{list[0].User.Login, list[0].User.Type})
	assert.Equal(t, "User", list[1].User.Type)
	assert.Equal(t, [2]string{"bot[bot]", "Bot"}, [2]string{list[2].User.Login, list[2].User.Type}, "GitHub authors an app's comments as <slug>[bot], a Bot")
}

func TestBotCannotEditSomeoneElsesComment(t *testing.T) {
	h := newHarness(t)
	token := "token " + h.token()
	h.repo.SetPR(githubfake.PR{Number: 1, Author: "alice"})
	id := h.repo.AddComment(1, "alice", "mine")
	resp, _ := h.do("PATCH", fmt.Sprintf("/repos/acme/repo/issues/comments/%d", id), token, map[string]string{"body": "yours"})
	assert.Equal(t, 403, resp.StatusCode)
	resp, _ = h.do("POST", fmt.Sprintf("/repos/acme/repo/issues/comments/%d/reactions", id), token, map[string]string{"content": "tada"})
	assert.Equal(t, 422, resp.StatusCode, "not a GitHub reaction")
}

func TestFailuresAndRequestLog(t *testing.T) {
	h := newHarness(t)
	token := "token " + h.token()
	h.fake.FailNext("GET", "/repos/acme/*/contents/*", 1, githubfake.PrimaryRateLimit(429, time.Minute))
	resp, body := h.do("GET", "/repos/acme/repo/contents/README.md", token, nil)
	assert.Equal(t, 429, resp.StatusCode)
	assert.Equal(t, "0", resp.Header.Get("X-RateLimit-Remaining"))
	assert.Equal(t, fmt.Sprint(h.fake.Now().Add(time.Minute).Unix()), resp.Header.Get("X-RateLimit-Reset"))
	assert.Contains(t, string(body), "API rate limit exceeded")
	resp, _ = h.do("GET", "/repos/acme/repo/contents/README.md", token, nil)
	assert.Equal(t, 200, resp.StatusCode, "only the next request fails")

	reqs := h.fake.RequestsMatching("GET", "/repos/acme/repo/contents/README.md")
	require.Len(t, reqs, 2)
	assert.Equal(t, []int{429, 200}, []int{reqs[0].Status, reqs[1].Status})
	assert.Equal(t, "token", reqs[0].Auth)
	assert.True(t, reqs[0].API)
}

func TestPayloadPatching(t *testing.T) {
	f := githubfake.New(t)
	repo := f.AddRepo("acme", "warehouse", "", "main")
	p := githubfake.LoadPayload(t, "pull_request.opened.json").Installation(7).Repo(repo).
		PullRequest(12, "head-sha", "base-sha")
	assert.Equal(t, "pull_request", p.Event)
	var doc struct {
		Number       int
		Installation struct{ ID int64 }
		Repository   struct {
			FullName string `json:"full_name"`
			CloneURL string `json:"clone_url"`
		}
		PullRequest struct {
			Head struct {
				SHA  string
				Repo struct {
					FullName string `json:"full_name"`
				}
			}
			Base struct{ SHA string }
		} `json:"pull_request"`
	}
	require.NoError(t, json.Unmarshal(p.Bytes(), &doc))
	assert.Equal(t, 12, doc.Number)
	assert.Equal(t, int64(7), doc.Installation.ID)
	assert.Equal(t, "acme/warehouse", doc.Repository.FullName)
	assert.Equal(t, repo.CloneURL(), doc.Repository.CloneURL)
	assert.Equal(t, "acme/warehouse", doc.PullRequest.Head.Repo.FullName)
	assert.Equal(t, "head-sha", doc.PullRequest.Head.SHA)
	assert.Equal(t, "base-sha", doc.PullRequest.Base.SHA)

	install := githubfake.LoadPayload(t, "installation.created.json").Repo(repo)
	assert.Nil(t, install.Get("pull_request"), "patching does not invent objects a payload lacks")
	// GitHub's documented example (docs: validating webhook deliveries).
	assert.Equal(t, "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
		githubfake.Sign("It's a Secret to Everybody", []byte("Hello, World!")))
}

func TestRandomFailuresAnswer502BeforeOrAfterHandling(t *testing.T) {
	h := newHarness(t)
	token := "token " + h.token()
	create := func(body string) int {
		resp, _ := h.do("POST", "/repos/acme/repo/issues/1/comments", token, map[string]string{"body": body})
		return resp.StatusCode
	}
	h.repo.SetPR(githubfake.PR{Number: 1, Title: "t", Author: "alice", HeadRef: "x", HeadSHA: h.git.SHA("main"), BaseRef: "main", BaseSHA: h.git.SHA("main")})

	h.fake.FailRandomly(githubfake.RandomFailures{Share: 1, Seed: 1})
	assert.Equal(t, http.StatusBadGateway, create("before"))
	assert.Empty(t, h.repo.Comments(1), "failed before it was handled")

	h.fake.FailRandomly(githubfake.RandomFailures{Share: 1, AfterHandling: 1, Seed: 1})
	assert.Equal(t, http.StatusBadGateway, create("after"))
	require.Len(t, h.repo.Comments(1), 1, "handled, its answer lost")

	h.fake.FailRandomly(githubfake.RandomFailures{})
	assert.Equal(t, http.StatusCreated, create("healthy"))

	h.fake.FailRandomly(githubfake.RandomFailures{Share: 0.25, Seed: 7})
	failed := 0
	for i := 0; i < 400; i++ {
		resp, _ := h.do("GET", "/repos/acme/repo/contents/README.md", token, nil)
		if resp.StatusCode == http.StatusBadGateway {
			failed++
		}
	}
	assert.InDelta(t, 100, failed, 40, "about a quarter of the calls fail")
	assert.Equal(t, failed, h.fake.RandomlyFailed(), "the fake counts what it failed")
}
