# dagctl-bot. `make run` serves the bot on the embedded defaults (SQLite + local executor);
# `make test` runs every test with the real sqlmesh, dbt and SQLite. Both install what they need first.
SHELL := /bin/bash
GO ?= go
PYTHON ?= python3
VENV := $(CURDIR)/.venv
export DAGCTL_SQLMESH ?= $(VENV)/bin/sqlmesh

.PHONY: tools build run test vet golden bench clean

## tools: the pinned sqlmesh, dbt-core and dbt-duckdb in .venv (fast when already installed)
tools: $(VENV)/.installed
$(VENV)/.installed: tools/requirements.txt
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tools/requirements.txt
	@touch $@

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
test: tools vet
	$(GO) test -race -count=1 -timeout 45m ./...

## golden: run the real sqlmesh on examples/ and rewrite the golden files (planner output, rendered comments, the
## end-to-end sticky comment, the handler tests' captured job output); read the diff before committing it
golden: tools
	DAGCTL_UPDATE_GOLDEN=1 $(GO) test -count=1 -timeout 30m ./internal/framework/sqlmesh/planner/... ./internal/framework/dbt/planner/... ./internal/comments/...
	DAGCTL_UPDATE_GOLDEN=1 $(GO) test -count=1 -timeout 30m -run '^TestPullRequestGetsPlanChecksAndStickyComment$$' ./internal/server/
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
	KUBEBUILDER_ASSETS="$(K8S_BIN)" $(GO) test -count=1 -run '^TestChart' ./internal/jobs/kube/

test: k8s-bins helm chart-check
test: export KUBEBUILDER_ASSETS := $(K8S_BIN)
