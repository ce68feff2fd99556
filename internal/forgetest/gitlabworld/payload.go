package gitlabworld

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dagctl/dagctl-bot/internal/forgetest/githubfake"
)

// payload is a real GitLab webhook payload from shared/payloads/gitlab, patched by the world.
type payload struct {
	event string // the X-Gitlab-Event header value
	doc   map[string]any
}

// loadPayload reads shared/payloads/gitlab/<name>; event is the hook's X-Gitlab-Event.
func loadPayload(t testing.TB, name, event string) *payload {
	t.Helper()
	shared, err := githubfake.SharedDir()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(shared, "payloads", "gitlab", name))
	if err != nil {
		t.Fatal(err)
	}
	p := &payload{event: event}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&p.doc); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return p
}

func (p *payload) bytes() []byte {
	b, err := json.Marshal(p.doc)
	if err != nil {
		panic(err)
	}
	return b
}

// set sets the value at a dotted path, creating objects on the way (a non-object on the way is replaced).
func (p *payload) set(path string, value any) *payload {
	keys := strings.Split(path, ".")
	cur := p.doc
	for _, key := range keys[:len(keys)-1] {
		next, ok := cur[key].(map[string]any)
		if !ok {
			next = map[string]any{}
			cur[key] = next
		}
		cur = next
	}
	cur[keys[len(keys)-1]] = value
	return p
}
