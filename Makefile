# dagctl-bot. `make run` serves the bot on the embedded defaults (SQLite + local executor);
# `make test` runs every test with the real sqlmesh, dbt and SQLite. Both install what they need first.
SHELL := /bin/bash
GO ?= go
PYTHON ?= python3
VENV := $(CURDIR)/.venv
export DAGCTL_SQLMESH ?= $(VENV)/bin/sqlmesh

.PHONY: tools browser build run test test-lanes vet golden bench clean

## tools: the pinned sqlmesh, dbt-core and dbt-duckdb in .venv (fast when already installed)
tools: $(VENV)/.installed
$(VENV)/.installed: tools/requirements.txt
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tools/requirements.txt
	@touch $@

## browser: Debian's chromium for the browser tests (internal/web/browsertest), installed with apt-get when missing
## and running as root (CI; 26 s here: 115 packages, 155 MB); otherwise it says how, and the tests skip
## (under CI they fail instead)
browser:
	@if [ -n "$${DAGCTL_CHROMIUM:-}" ] || command -v chromium >/dev/null || command -v chromium-browser >/dev/null; then \
	  exit 0; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "== installing chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
	  echo "chromium is missing: install it (sudo apt-get install chromium) or set DAGCTL_CHROMIUM; the browser tests skip without it"; \
	  if [ -n "$${CI:-}" ]; then exit 1; fi; \
	fi

build:
	$(GO) build -o bin/dagctl-bot ./cmd/dagctl-bot

run: tools build
	./bin/dagctl-bot serve

vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.venv/*')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...

# The end-to-end suite runs the real sqlmesh dozens of times: under -race on two cores it nears go test's
# 10-minute default, so the timeout is raised (CI allows 90 minutes for everything).
#
# internal/server's scenarios run once per fake forge, chosen by DAGCTL_E2E_FORGES: GitHub's under -race, GitLab's
# without it (the same bot code again; the race detector would double its time, and GitHub's run already races
# it). Two lanes share the 2 cores: GitLab's scenarios start in the background, their output kept in a file;
# meanwhile every other package runs under -race as before, then GitHub's scenarios. The GitLab lane's output is
# printed when the race lane is done (go test prints a package's result at its end anyway), and a failure in any
# of the three invocations fails `make test` after all have ended.
# `make test-lanes` runs the lanes alone (tools and Kubernetes binaries already in place); TEST_PKGS and
# SERVER_PKG narrow them on the command line (not from the environment), e.g. to try the lanes on small packages.
GO_TEST := $(GO) test -count=1 -timeout 45m
TEST_PKGS := ./...
SERVER_PKG := github.com/dagctl/dagctl-bot/internal/server
test: tools browser vet
	@$(MAKE) --no-print-directory test-lanes

test-lanes:
	@set -u; status=0; gitlab_log=$$(mktemp -t dagctl-test-gitlab.XXXXXX); \
	echo "== $(SERVER_PKG) on GitLab (no -race), in the background; its output follows the race lane's"; \
	DAGCTL_E2E_FORGES=gitlab $(GO_TEST) $(SERVER_PKG) >"$$gitlab_log" 2>&1 & gitlab=$$!; \
	trap 'kill $$gitlab 2>/dev/null; rm -f "$$gitlab_log"' INT TERM; \
	echo "== every package but $(SERVER_PKG) (-race)"; \
	$(GO_TEST) -race $$($(GO) list $(TEST_PKGS) | grep -vx '$(SERVER_PKG)') || status=1; \
	echo "== $(SERVER_PKG) on GitHub (-race)"; \
	DAGCTL_E2E_FORGES=github $(GO_TEST) -race $(SERVER_PKG) || status=1; \
	wait $$gitlab || status=1; \
	echo "== $(SERVER_PKG) on GitLab (no -race):"; cat "$$gitlab_log"; rm -f "$$gitlab_log"; \
	if [ $$status -ne 0 ]; then echo "make test: FAILED (see the FAIL lines above)"; fi; \
	exit $$status

## golden: run the real sqlmesh and dbt on examples/ and rewrite the golden files (planner output, rendered comments, the
## end-to-end sticky comment, the handler tests' captured job output); read the diff before committing it
golden: tools
	DAGCTL_UPDATE_GOLDEN=1 $(GO) test -count=1 -timeout 30m ./internal/framework/sqlmesh/planner/... ./internal/framework/dbt/planner/... ./internal/comments/...
	DAGCTL_UPDATE_GOLDEN=1 $(GO) test -count=1 -timeout 30m -run '^(TestPullRequestGetsPlanChecksAndStickyComment|TestDBTASelectiveDeployWithoutProductionStateIsAFullBuildAndStoresIt)$$' ./internal/server/
	DAGCTL_REPLAY_CAPTURE=1 $(GO) test -count=1 -timeout 30m ./internal/handlertest/
	DAGCTL_REPLAY_CAPTURE=1 $(GO) test -count=1 -timeout 30m -run '^TestChaos' ./internal/server/chaos/

## bench: the figures of BENCHMARKS.md: the Go benchmarks (a 10,000-model plan; webhook to first check run; the
## soak of 2,000 PRs under retention; a plan printing 1 GiB, about 5 minutes of them), then
## `dagctl-bot plan` against the raw sqlmesh CLI, then the intake under load, then the intake under a flood of
## strangers' slow 25 MB bodies (35 s), then the long chaos run (50 PRs, a bot killed 25 times, 10 % of the
## forge's calls failing; BENCHMARKS.md §8, about 6 minutes). About 12 minutes on 2 cores.
bench: tools build
	$(GO) test -run '^$$' -bench . -benchmem -timeout 30m ./bench/...
	$(GO) run ./bench/cmd/planoverhead -sqlmesh "$(DAGCTL_SQLMESH)" -bot bin/dagctl-bot
	$(GO) run ./bench/cmd/loadtest
	$(GO) run ./bench/cmd/intakeflood
	$(GO) test -count=1 -timeout 30m -run '^TestChaos' -v ./internal/server/chaos/ -chaos.prs 50 -chaos.kills 25 -chaos.fail 0.1

clean:
	rm -rf bin .cache

# ---------------------------------------------------------------------------------------------------------------
# Kubernetes (internal/jobs/kube, charts/dagctl-bot): a real control plane for the tests, helm, the chart check.
# hack/k8s-bins.sh builds etcd, kube-apiserver, kube-controller-manager and helm from the Go module proxy into a
# cache outside the clone, which every clone on the machine shares; a binary is rebuilt only when it is missing
# (cold: about 15 min on 2 cores; then nothing). `make test` builds them first and points the tests at them.
K8S_VERSION := v1.33.13
K8S_CACHE ?= $(HOME)/.cache/dagctl-bot/k8s-$(K8S_VERSION)
K8S_BIN := $(K8S_CACHE)/bin
HELM := $(K8S_BIN)/helm
CHART := charts/dagctl-bot
K8S_BINS_ENV := K8S_CACHE="$(K8S_CACHE)" K8S_VERSION=$(K8S_VERSION) GO="$(GO)"

.PHONY: k8s-bins helm chart-check

## k8s-bins: etcd v3.5.35, kube-apiserver and kube-controller-manager $(K8S_VERSION) in $(K8S_BIN)
k8s-bins:
	@$(K8S_BINS_ENV) bash hack/k8s-bins.sh control-plane

## helm: helm v3.22.0 in $(K8S_BIN)
helm:
	@$(K8S_BINS_ENV) bash hack/k8s-bins.sh helm

## chart-check: helm lint and template, then a server-side dry-run apply of the rendered chart to a test API server
chart-check: k8s-bins helm
	$(HELM) lint --strict $(CHART)
	$(HELM) template dagctl-bot $(CHART) --namespace dagctl --kube-version $(K8S_VERSION) >/dev/null
	$(HELM) template dagctl-bot $(CHART) --namespace dagctl --kube-version $(K8S_VERSION) \
	  --set ingress.enabled=true --set secrets.existingSecret=app --set persistence.enabled=false >/dev/null
	$(HELM) template dagctl-bot $(CHART) --namespace dagctl --kube-version $(K8S_VERSION) \
	  --set metrics.serviceMonitor.enabled=true >/dev/null
	KUBEBUILDER_ASSETS="$(K8S_BIN)" $(GO) test -count=1 -run '^TestChart' ./internal/jobs/kube/

test: k8s-bins helm chart-check
test test-lanes: export KUBEBUILDER_ASSETS := $(K8S_BIN)
