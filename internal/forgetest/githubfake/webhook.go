package githubfake

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// SharedDir finds the project's shared directory (it holds payloads/github): $DAGCTL_SHARED_DIR, else
// ../shared beside the repository root, else /work/shared.
func SharedDir() (string, error) {
	var candidates []string
	if dir := os.Getenv("DAGCTL_SHARED_DIR"); dir != "" {
		candidates = append(candidates, dir)
	}
	if _, file, _, ok := runtime.Caller(0); ok {
		root := filepath.Join(filepath.Dir(file), "..", "..", "..")
		candidates = append(candidates, filepath.Join(root, "..", "shared"))
	}
	candidates = append(candidates, "/work/shared")
	for _, dir := range candidates {
		if st, err := os.Stat(filepath.Join(dir, "payloads", "github")); err == nil && st.IsDir() {
			return filepath.Clean(dir), nil
		}
	}
	return "", fmt.Errorf("shared directory with payloads/github not found (tried %s); set DAGCTL_SHARED_DIR",
		strings.Join(candidates, ", "))
}

// PayloadDir is shared/payloads/github.
func PayloadDir() (string, error) {
	dir, err := SharedDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "payloads", "github"), nil
}

// Payload is a real GitHub webhook payload, loaded from shared/payloads/github and patched by the test.
type Payload struct {
	// Event is the X-GitHub-Event header value, taken from the file name ("pull_request.opened.json").
	Event string
	doc   map[string]any
}

// LoadPayload reads a payload file from shared/payloads/github ("pull_request.opened.json").
func LoadPayload(t testing.TB, name string) *Payload {
	t.Helper()
	dir, err := PayloadDir()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	p := &Payload{Event: strings.SplitN(name, ".", 2)[0]}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // keep ids exact
	if err := dec.Decode(&p.doc); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return p
}

// Bytes is the payload as JSON, as it will be sent.
func (p *Payload) Bytes() []byte {
	b, err := json.Marshal(p.doc)
	if err != nil {
		panic(err)
	}
	return b
}

// Get returns the value at a dotted path ("pull_request.head.sha"; array elements by index), or nil.
func (p *Payload) Get(path string) any {
	var cur any = p.doc
	for _, key := range strings.Split(path, ".") {
		switch node := cur.(type) {
		case map[string]any:
			cur = node[key]
		case []any:
			i, err := strconv.Atoi(key)
			if err != nil || i < 0 || i >= len(node) {
				return nil
			}
			cur = node[i]
		default:
			return nil
		}
	}
	return cur
}

// Has reports whether a dotted path exists.
func (p *Payload) Has(path string) bool {
	parent, key := p.parent(path, false)
	if m, ok := parent.(map[string]any); ok {
		_, found := m[key]
		return found
	}
	return false
}

// Set sets the value at a dotted path, creating objects on the way.
func (p *Payload) Set(path string, value any) *Payload {
	parent, key := p.parent(path, true)
	switch node := parent.(type) {
	case map[string]any:
		node[key] = value
	case []any:
		if i, err := strconv.Atoi(key); err == nil && i >= 0 && i < len(node) {
			node[i] = value
		}
	}
	return p
}

// Delete removes the value at a dotted path.
func (p *Payload) Delete(path string) *Payload {
	if m, ok := p.parentMap(path); ok {
		delete(m, path[strings.LastIndex(path, ".")+1:])
	}
	return p
}

func (p *Payload) parentMap(path string) (map[string]any, bool) {
	parent, _ := p.parent(path, false)
	m, ok := parent.(map[string]any)
	return m, ok
}

func (p *Payload) parent(path string, create bool) (any, string) {
	keys := strings.Split(path, ".")
	var cur any = p.doc
	for _, key := range keys[:len(keys)-1] {
		switch node := cur.(type) {
		case map[string]any:
			next, ok := node[key]
			if !ok || next == nil {
				if !create {
					return nil, ""
				}
				next = map[string]any{}
				node[key] = next
			}
			cur = next
		case []any:
			i, err := strconv.Atoi(key)
			if err != nil || i < 0 || i >= len(node) {
				return nil, ""
			}
			cur = node[i]
		default:
			return nil, ""
		}
	}
	return cur, keys[len(keys)-1]
}

// Installation sets installation.id (the GitHub App path needs it; some fixtures lack it).
func (p *Payload) Installation(id int64) *Payload {
	return p.Set("installation.id", id)
}

// Repo points the payload at a repository on the fake: repository, the pull request's base (and head, unless
// the head is a fork), and an issue's URLs.
func (p *Payload) Repo(r *Repo) *Payload {
	return p.RepoNamed(r.owner, r.name, r.CloneURL(), r.defaultBranch, r.id)
}

// RepoNamed is Repo for a repository given by its parts.
func (p *Payload) RepoNamed(owner, name, cloneURL, defaultBranch string, id int64) *Payload {
	oldFullName, _ := p.Get("repository.full_name").(string)
	patch := func(prefix string) {
		if !p.Has(strings.TrimSuffix(prefix, ".")) {
			return
		}
		htmlURL := strings.TrimSuffix(cloneURL, ".git")
		p.Set(prefix+"id", id).Set(prefix+"name", name).Set(prefix+"full_name", owner+"/"+name).
			Set(prefix+"owner.login", owner).Set(prefix+"clone_url", cloneURL).Set(prefix+"html_url", htmlURL)
		if p.Has(prefix + "owner.name") { // push payloads carry owner.name
			p.Set(prefix+"owner.name", owner)
		}
		if defaultBranch != "" {
			p.Set(prefix+"default_branch", defaultBranch)
		}
	}
	patch("repository.")
	patch("pull_request.base.repo.")
	if head, _ := p.Get("pull_request.head.repo.full_name").(string); head != "" && head == oldFullName {
		patch("pull_request.head.repo.")
		p.Set("pull_request.head.user.login", owner)
	}
	if p.Has("pull_request.base.user") {
		p.Set("pull_request.base.user.login", owner)
	}
	if p.Has("issue.repository_url") {
		p.Set("issue.repository_url", "https://api.github.com/repos/"+owner+"/"+name)
	}
	return p
}

// PullRequest sets the pull request number and head and base SHAs wherever the event carries them (pull
// request events, issue comments, check runs' pull_requests).
func (p *Payload) PullRequest(number int, headSHA, baseSHA string) *Payload {
	if p.Has("number") {
		p.Set("number", number)
	}
	if p.Has("pull_request.number") {
		p.Set("pull_request.number", number).Set("pull_request.head.sha", headSHA).Set("pull_request.base.sha", baseSHA)
	}
	if p.Has("review.commit_id") {
		p.Set("review.commit_id", headSHA)
	}
	if p.Has("issue.number") {
		p.Set("issue.number", number)
	}
	if p.Event == "pull_request" && p.Has("after") {
		p.Set("after", headSHA)
	}
	return p
}

// Merged turns a pull_request closed payload into a merge: merged, merged_at, merged_by and the merge commit.
func (p *Payload) Merged(mergeCommitSHA string) *Payload {
	return p.Set("action", "closed").Set("pull_request.state", "closed").Set("pull_request.merged", true).
		Set("pull_request.merged_at", time.Now().UTC().Format(time.RFC3339)).
		Set("pull_request.merged_by", map[string]any{"login": "merger", "id": 4242, "type": "User"}).
		Set("pull_request.merge_commit_sha", mergeCommitSHA)
}

// Fork makes the pull request's head live in a fork owned by forkOwner.
func (p *Payload) Fork(forkOwner, cloneURL string) *Payload {
	name, _ := p.Get("repository.name").(string)
	return p.Set("pull_request.head.repo.full_name", forkOwner+"/"+name).
		Set("pull_request.head.repo.owner.login", forkOwner).
		Set("pull_request.head.repo.clone_url", cloneURL).
		Set("pull_request.head.repo.fork", true).
		Set("pull_request.head.user.login", forkOwner).
		Set("pull_request.head.label", forkOwner+":"+fmt.Sprint(p.Get("pull_request.head.ref")))
}

// Sign is the X-Hub-Signature-256 value for body: sha256=<hex HMAC-SHA256(secret, body)>.
func Sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Delivery is the bot's answer to a webhook.
type Delivery struct {
	ID     string
	Status int
	Body   string
}

// Send POSTs the payload to url as GitHub does: signed with secret, with X-GitHub-Event and a fresh
// X-GitHub-Delivery.
func (p *Payload) Send(url, secret string) (Delivery, error) {
	return p.SendAs(url, secret, newDeliveryID())
}

// SendAs is Send with a given delivery id (GitHub reuses it on redelivery).
func (p *Payload) SendAs(url, secret, deliveryID string) (Delivery, error) {
	body := p.Bytes()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return Delivery{}, err
	}
	req.Header = p.Header(body, secret, deliveryID)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Delivery{ID: deliveryID}, err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	return Delivery{ID: deliveryID, Status: resp.StatusCode, Body: string(answer)}, err
}

// Header is what GitHub sends with body: the event, the delivery id and, with a secret, the signature.
func (p *Payload) Header(body []byte, secret, deliveryID string) http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "GitHub-Hookshot/fake")
	h.Set("X-GitHub-Event", p.Event)
	h.Set("X-GitHub-Delivery", deliveryID)
	h.Set("X-GitHub-Hook-ID", "1")
	if id := p.Get("installation.id"); id != nil {
		h.Set("X-GitHub-Hook-Installation-Target-ID", fmt.Sprint(id))
	}
	h.Set("X-GitHub-Hook-Installation-Target-Type", "integration")
	if secret != "" {
		h.Set("X-Hub-Signature-256", Sign(secret, body))
	}
	return h
}

// NewDeliveryID is a fresh X-GitHub-Delivery value.
func NewDeliveryID() string { return newDeliveryID() }

// SendT is Send that fails the test on a transport error.
func (p *Payload) SendT(t testing.TB, url, secret string) Delivery {
	t.Helper()
	d, err := p.Send(url, secret)
	if err != nil {
		t.Fatalf("sending %s webhook: %v", p.Event, err)
	}
	return d
}

func newDeliveryID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(errors.Join(errors.New("delivery id"), err))
	}
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// SignedPayload is one of the real payloads, signed, ready to send.
type SignedPayload struct {
	Event, Signature string
	Body             []byte
}

// SignedPayloads reads every payload in dir (PayloadDir when "") and signs it with secret; the event is the file
// name's first part (pull_request.opened.json → pull_request).
func SignedPayloads(dir, secret string) ([]SignedPayload, error) {
	if dir == "" {
		var err error
		if dir, err = PayloadDir(); err != nil {
			return nil, err
		}
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("no payloads in %s", dir)
	}
	sort.Strings(files)
	var out []SignedPayload
	for _, f := range files {
		body, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		event, _, _ := strings.Cut(filepath.Base(f), ".")
		out = append(out, SignedPayload{Event: event, Body: body, Signature: Sign(secret, body)})
	}
	return out, nil
}
