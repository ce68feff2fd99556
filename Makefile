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

test: tools vet
	$(GO) test -race -count=1 ./...

## golden: run the real sqlmesh on examples/ and rewrite the golden files
golden: tools
	DAGCTL_UPDATE_GOLDEN=1 $(GO) test -count=1 ./internal/planner/...

bench: tools build
	$(GO) test -run '^$$' -bench . -benchmem ./bench/...

clean:
	rm -rf bin .cache
