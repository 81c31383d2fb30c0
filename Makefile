# tierkv build and test entry points. Nothing needs to be installed by hand
# besides Go: `make test` installs the pinned MinIO server into a cache
# directory outside the repository on first use and runs the whole test suite
# against a private server (see scripts/with-minio.sh).

SHELL := /usr/bin/env bash

# The go command: GO from the environment or command line, else go on PATH,
# else the standard install location.
GO ?= $(or $(shell command -v go 2>/dev/null),/usr/local/go/bin/go)

# Cache for tools built by the Makefile (the MinIO server). Not tracked.
CACHE ?= $(or $(TIERKV_CACHE),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/tierkv)
# Module version of github.com/minio/minio that `make test` installs (from the
# Go module proxy); it honours If-None-Match: * on PUT, which tierkv relies on.
MINIO_VERSION ?= v0.0.0-20260212201848-7aac2a2c5b7c
# staticcheck version `make lint` (and so `make test`) runs, fetched through
# the Go module proxy by `go run pkg@version`; it never enters go.mod.
STATICCHECK_VERSION ?= v0.8.2

TEST_FLAGS ?= -race -count=1
# Packages `make test` runs, e.g. make test PKGS=./tiered/...
PKGS ?= ./...
BIN := bin

export GO
export TIERKV_CACHE := $(CACHE)
export TIERKV_MINIO_VERSION := $(MINIO_VERSION)
export TIERKV_STATICCHECK_VERSION := $(STATICCHECK_VERSION)

.PHONY: build test stress vet lint demo clean bench bench-quick

## build: compile every package and the tierkv CLI into ./bin/tierkv
build:
	$(GO) build ./...
	$(GO) build -o $(BIN)/tierkv ./cmd/tierkv

## test: all tests with the race detector against a throw-away MinIO server,
## then staticcheck (as make lint) when all packages are selected
test:
	TEST_FLAGS='$(TEST_FLAGS)' scripts/with-minio.sh scripts/test.sh $(PKGS)

## stress: the reliability suite at full scale and every fuzz target (FUZZTIME each, default 30s)
stress:
	scripts/with-minio.sh scripts/stress.sh

## vet: go vet and a gofmt check
vet:
	$(GO) vet ./...
	@unformatted=$$("$$($(GO) env GOROOT)/bin/gofmt" -l .); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi

## lint: staticcheck, pinned to STATICCHECK_VERSION, on the main module
lint:
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

## demo: the crash-and-recover streaming demo against a local file:// remote
demo: build
	$(BIN)/tierkv demo

## clean: remove build outputs
clean:
	rm -rf $(BIN)

# The benchmark suite is its own module (bench/), so Pebble, Badger and gonum
# stay out of the main go.mod. Results (CSV, PNG, summary.md) go to
# bench/results. With a MinIO server already installed in the cache the
# snapshot experiment also runs against it; otherwise against file:// only
# (`make test` installs the server once).
BENCH_RUN = cd bench && $(GO) run ./cmd/tierkv-bench
ifneq ($(wildcard $(CACHE)/bin/minio),)
BENCH_WRAP = scripts/with-minio.sh
endif

## bench-quick: every experiment at small scale (under 3 minutes on 2 cores)
bench-quick:
	$(BENCH_WRAP) bash -c '$(BENCH_RUN) -quick -out results'

## bench: full scale (1 GiB snapshot state, 10M-key reopen; hours on 2 cores)
bench:
	$(BENCH_WRAP) bash -c '$(BENCH_RUN) -out results'
