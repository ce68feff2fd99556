// Package allowlist decides which repositories the bot serves (DAGCTL_REPO_ALLOWLIST, like Atlantis's
// --repo-allowlist). It is a pure matcher over forge names and repository paths; the server applies it to every
// event before the bot acts on it.
package allowlist

import (
	"fmt"
	"path"
	"strings"
)

// Forges are the forge names an entry may name.
var Forges = []string{"github", "gitlab"}

// Repos is a parsed allowlist. The zero value allows every repository.
type Repos struct {
	entries []entry
}

type entry struct {
	forge string
	// pattern is the path pattern, lower case; deep is true for a trailing "/**" (pattern is then the prefix).
	pattern string
	deep    bool
}

// Parse reads a comma-separated list of forge:path entries: github:acme/warehouse, github:acme/* (every
// repository of acme), github:** (every repository of the forge), gitlab:group/sub/* (every project directly in group/sub), gitlab:group/** (every project
// of group and of its subgroups, at any depth). `*` matches any characters within one path segment; `**` only
// as the last segment. Paths are matched ignoring case, as both forges treat them. Empty: every repository.
func Parse(s string) (Repos, error) {
	var out Repos
	for _, raw := range strings.Split(s, ",") {
		item := strings.TrimSpace(raw)
		if item == "" {
			continue
		}
		e, err := parseEntry(item)
		if err != nil {
			return Repos{}, fmt.Errorf("entry %q: %w", item, err)
		}
		out.entries = append(out.entries, e)
	}
	return out, nil
}

func parseEntry(item string) (entry, error) {
	forge, pattern, ok := strings.Cut(item, ":")
	forge = strings.ToLower(strings.TrimSpace(forge))
	if !ok || !known(forge) {
		return entry{}, fmt.Errorf("want forge:path, the forge one of %s (like github:acme/* or gitlab:group/sub/*)", strings.Join(Forges, ", "))
	}
	pattern = strings.ToLower(strings.TrimSpace(pattern))
	e := entry{forge: forge, pattern: pattern}
	if pattern == "**" {
		return entry{forge: forge, deep: true}, nil // every repository of the forge
	}
	if rest, found := strings.CutSuffix(pattern, "/**"); found {
		e.pattern, e.deep = rest, true
	}
	switch {
	case strings.ContainsAny(pattern, `?[]\`):
		return entry{}, fmt.Errorf("only * is a wildcard (no ?, [ ] or \\)")
	case strings.Contains(e.pattern, "**"):
		return entry{}, fmt.Errorf("** may only be the last segment (group/**)")
	case e.pattern == "" || strings.HasPrefix(e.pattern, "/") || strings.HasSuffix(e.pattern, "/") || strings.Contains(e.pattern, "//"):
		return entry{}, fmt.Errorf("the path must be owner/name segments, like acme/warehouse or group/sub/*")
	case !e.deep && !strings.Contains(e.pattern, "/"):
		return entry{}, fmt.Errorf("the path names no repository: write %s/* for every repository of %s", e.pattern, e.pattern)
	}
	return e, nil
}

func known(forge string) bool {
	for _, f := range Forges {
		if f == forge {
			return true
		}
	}
	return false
}

// All reports whether the list allows every repository (it is empty).
func (r Repos) All() bool { return len(r.entries) == 0 }

// Allows reports whether the repository fullName ("owner/name"; on GitLab "group/sub/project") of forge is on
// the list.
func (r Repos) Allows(forge, fullName string) bool {
	if r.All() {
		return true
	}
	forge, fullName = strings.ToLower(forge), strings.ToLower(fullName)
	for _, e := range r.entries {
		if e.forge == forge && e.matches(fullName) {
			return true
		}
	}
	return false
}

func (e entry) matches(fullName string) bool {
	if !e.deep {
		ok, _ := path.Match(e.pattern, fullName)
		return ok
	}
	if e.pattern == "" {
		return true
	}
	want := strings.Count(e.pattern, "/") + 1
	segments := strings.Split(fullName, "/")
	if len(segments) <= want {
		return false // ** stands for at least the project's own segment
	}
	ok, _ := path.Match(e.pattern, strings.Join(segments[:want], "/"))
	return ok
}

// String is the list as it would be written, for logs.
func (r Repos) String() string {
	var parts []string
	for _, e := range r.entries {
		p := e.pattern
		switch {
		case e.deep && p == "":
			p = "**"
		case e.deep:
			p += "/**"
		}
		parts = append(parts, e.forge+":"+p)
	}
	return strings.Join(parts, ",")
}
