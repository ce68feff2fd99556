package server_test

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/forgetest/e2e"
	"github.com/dagctl/dagctl-bot/internal/server"
	"github.com/dagctl/dagctl-bot/internal/serverconfig"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// tokenProbe is a python model that looks for the forge's credentials wherever PR code could find them: its
// environment, the parent's environment and command line, and every file of the checkout (.git included, where a
// clone could have left a token in the remote's URL or a credential file). It knows the credentials only by
// their SHA-256 and prints where one was found, never a value.
func tokenProbe(digests []string) string {
	var quoted []string
	for _, d := range digests {
		quoted = append(quoted, strconv.Quote(d))
	}
	return `import hashlib
import os
import re
import sys
import typing as t
from datetime import datetime

import pandas as pd
from sqlmesh import ExecutionContext, model

DIGESTS = {` + strings.Join(quoted, ", ") + `}
WORD = re.compile(rb"[A-Za-z0-9_+/=.-]{8,}")
found = []


def scan(where, data):
    for word in WORD.findall(data):
        for part in {word, word.rstrip(b"="), word.strip(b".")}:
            if hashlib.sha256(part).hexdigest() in DIGESTS:
                found.append(where)


for name, value in os.environ.items():
    scan("env " + name, value.encode())
for path in ["/proc/%d/environ" % os.getppid(), "/proc/%d/cmdline" % os.getppid(), "/proc/self/cmdline"]:
    try:
        with open(path, "rb") as f:
            scan(path, f.read().replace(b"\0", b" "))
    except OSError:
        pass
root = os.getcwd()
while root != "/" and not os.path.exists(os.path.join(root, ".git")):
    root = os.path.dirname(root)
files = 0
for dirpath, _, names in os.walk(root if root != "/" else os.getcwd()):
    for n in names:
        path = os.path.join(dirpath, n)
        try:
            with open(path, "rb") as f:
                scan(path, f.read(4 << 20))
            files += 1
        except OSError:
            pass
print("token-probe: scanned %d files under %s, .git there: %s" % (files, root, os.path.exists(os.path.join(root, ".git"))), file=sys.stderr, flush=True)
for where in sorted(set(found)):
    print("token-probe: FOUND a credential in " + where, file=sys.stderr, flush=True)


@model("dagctl_example.token_probe", kind="FULL", columns={"one": "int"})
def execute(context: ExecutionContext, start: datetime, end: datetime, execution_time: datetime, **kwargs: t.Any) -> pd.DataFrame:
    return pd.DataFrame([{"one": 1}])
`
}

// forgeCredentials are the secrets the bot holds for its forge, as configured: GitLab's api and clone tokens and
// webhook secret; GitHub's webhook secret and the lines of the app's private key.
func forgeCredentials(cfg serverconfig.Config) []string {
	var out []string
	for _, s := range []serverconfig.Secret{cfg.GitLab.Token, cfg.GitLab.CloneToken, cfg.GitLab.WebhookSecret, cfg.GitHub.WebhookSecret} {
		if s.IsSet() {
			out = append(out, s.Reveal())
		}
	}
	for _, line := range strings.Split(cfg.GitHub.PrivateKey.Reveal(), "\n") {
		if len(line) >= 40 && !strings.HasPrefix(line, "-----") {
			out = append(out, line)
		}
	}
	return out
}

// The PR's code runs in a checkout the bot fetched with the forge's token (GitLab: the clone token as oauth2's
// password), yet finds no credential of the bot's: not in its environment, its parent's, nor any file of the
// checkout.
func TestAPRsCodeCannotReadTheForgesTokens(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		var creds []string
		w := newWorld(t, forge, worldOptions{configure: func(_ *world, cfg *serverconfig.Config, _ *server.Options) {
			creds = forgeCredentials(*cfg)
		}})
		require.NotEmpty(t, creds)
		if w.Name() == "gitlab" {
			require.Len(t, creds, 3, "the api token, the clone token and the webhook secret")
			require.NotEqual(t, creds[0], creds[1], "jobs clone with a token of their own")
		}
		var digests []string
		for _, c := range creds {
			sum := sha256.Sum256([]byte(c))
			digests = append(digests, hex.EncodeToString(sum[:]))
		}
		// The probe finds what it looks for: the test's own word, hashed the same way.
		canary := "canary-" + strings.Repeat("7", 20)
		sum := sha256.Sum256([]byte(canary))
		digests = append(digests, hex.EncodeToString(sum[:]))

		head := w.PR(1, "probe", "mallory", map[string]string{"models/token_probe.py": tokenProbe(digests),
			"models/canary.txt": canary + "\n"})
		w.SetPermission("mallory", vcs.PermissionWrite)
		w.send(w.PREvent(vcs.PROpened, 1))
		check, ok := w.Status("dagctl/plan: prod", head)
		require.True(t, ok, "checks: %v", w.Statuses())
		log := runLog(t, w, check)
		require.Contains(t, log, "token-probe: scanned", "the PR's model ran")
		assert.Contains(t, log, ".git there: True", "the checkout's git directory was searched")
		assert.Contains(t, log, "token-probe: FOUND a credential in ", "the probe finds the canary")
		for _, line := range strings.Split(log, "\n") {
			if strings.Contains(line, "token-probe: FOUND") {
				assert.Contains(t, line, "models/canary.txt", "a credential of the bot's reached the PR's code")
			}
		}
		for _, c := range creds {
			assert.NotContains(t, log, c)
			assert.NotContains(t, w.Sticky(1), c)
		}
	})
}
