package githubfake

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/http"
	"os/exec"
	"path"
	"strconv"
	"strings"
)

// foldedPermission is what GitHub's permission field says for a role: maintain folds to write, triage to read.
var foldedPermission = map[string]string{
	"admin": "admin", "maintain": "write", "write": "write", "triage": "read", "read": "read", "none": "none",
}

func (f *Fake) handlePermission(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	repo, _, ok := f.repoFor(w, r)
	if !ok {
		return
	}
	user := r.PathValue("user")
	role, ok := repo.permissions[strings.ToLower(user)]
	if !ok {
		// GitHub answers 404 for a login that is not a user; tests register the users they need.
		writeError(w, http.StatusNotFound, user+" is not a user", "https://docs.github.com/rest/collaborators/collaborators#get-repository-permissions-for-a-user")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"permission": foldedPermission[role],
		"role_name":  role,
		"user":       f.userJSON(user, false),
	})
}

func (f *Fake) handleTeamMembership(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	inst, ok := f.authInstallation(w, r)
	if !ok {
		return
	}
	org := r.PathValue("org")
	if !strings.EqualFold(org, inst.Account) {
		notFound(w)
		return
	}
	rateHeaders(w, f.now)
	state, ok := f.teams[strings.ToLower(org+"/"+r.PathValue("slug"))][strings.ToLower(r.PathValue("user"))]
	if !ok {
		notFound(w)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"url":   f.server.URL + apiPrefix + r.URL.Path,
		"role":  "member",
		"state": state,
	})
}

// maxInlineContent is the largest file the contents API returns inline (base64); larger files come with
// encoding "none" and must be fetched with the raw media type.
const maxInlineContent = 1 << 20

func (f *Fake) handleContents(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	repo, _, ok := f.repoFor(w, r)
	var gitDir, ref string
	if ok {
		gitDir, ref = repo.gitDir, repo.defaultBranch
	}
	f.mu.Unlock()
	if !ok {
		return
	}
	if gitDir == "" {
		writeError(w, http.StatusNotFound, "This repository is empty.", "")
		return
	}
	if q := r.URL.Query().Get("ref"); q != "" {
		ref = q
	}
	commit, err := resolveCommit(gitDir, ref)
	if err != nil {
		writeError(w, http.StatusNotFound, "No commit found for the ref "+ref, "https://docs.github.com/rest/repos/contents#get-repository-content")
		return
	}
	p := strings.Trim(r.PathValue("path"), "/")
	object := commit + ":" + p
	typ, err := git(gitDir, "cat-file", "-t", object)
	if err != nil {
		notFound(w)
		return
	}
	base := f.server.URL + apiPrefix + "/repos/" + repo.FullName() + "/contents/"
	switch strings.TrimSpace(string(typ)) {
	case "tree":
		out, err := git(gitDir, "ls-tree", "-l", object)
		if err != nil {
			writeError(w, http.StatusInternalServerError, err.Error(), "")
			return
		}
		var entries []map[string]any
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			meta, name, ok := strings.Cut(line, "\t")
			fields := strings.Fields(meta)
			if !ok || len(fields) != 4 {
				continue
			}
			kind := map[string]string{"blob": "file", "tree": "dir", "commit": "submodule"}[fields[1]]
			size, _ := strconv.Atoi(fields[3])
			entryPath := path.Join(p, name)
			entries = append(entries, map[string]any{
				"type": kind, "name": name, "path": entryPath, "sha": fields[2], "size": size,
				"url": base + entryPath + "?ref=" + ref,
			})
		}
		writeJSON(w, http.StatusOK, entries)
	case "blob":
		content, err := git(gitDir, "cat-file", "blob", object)
		if err != nil {
			writeError(w, http.StatusInternalServerError, err.Error(), "")
			return
		}
		if isRawMediaType(r.Header.Get("Accept")) {
			w.Header().Set("Content-Type", "application/vnd.github.raw")
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(content)
			return
		}
		blobSHA, _ := git(gitDir, "rev-parse", object)
		encoding, encoded := "base64", wrappedBase64(content)
		if len(content) > maxInlineContent {
			encoding, encoded = "none", ""
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"type": "file", "encoding": encoding, "size": len(content), "name": path.Base(p), "path": p,
			"content": encoded, "sha": strings.TrimSpace(string(blobSHA)), "url": base + p + "?ref=" + ref,
			"html_url": repo.HTMLURL() + "/blob/" + ref + "/" + p,
		})
	default:
		notFound(w)
	}
}

func isRawMediaType(accept string) bool {
	return strings.Contains(accept, "application/vnd.github.raw") || strings.Contains(accept, "application/vnd.github.v3.raw")
}

// wrappedBase64 is how GitHub encodes file contents: base64 with a newline every 60 characters.
func wrappedBase64(b []byte) string {
	enc := base64.StdEncoding.EncodeToString(b)
	var sb strings.Builder
	for len(enc) > 60 {
		sb.WriteString(enc[:60])
		sb.WriteByte('\n')
		enc = enc[60:]
	}
	sb.WriteString(enc)
	sb.WriteByte('\n')
	return sb.String()
}

// git runs git in gitDir and returns its standard output.
func git(gitDir string, args ...string) ([]byte, error) {
	cmd := exec.Command("git", append([]string{"-C", gitDir}, args...)...)
	cmd.Env = append(cmd.Environ(), gitSafeEnv...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// gitSafeEnv lets git read repositories owned by another user (test directories) and ignores the user's config.
var gitSafeEnv = []string{
	"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
	"GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=safe.directory", "GIT_CONFIG_VALUE_0=*",
}

// resolveCommit turns a branch, tag or SHA into a commit SHA.
func resolveCommit(gitDir, ref string) (string, error) {
	out, err := git(gitDir, "rev-parse", "--verify", "--quiet", ref+"^{commit}")
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}
