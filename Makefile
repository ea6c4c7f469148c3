# tinykube: one binary, one Makefile. `make help` lists the targets.
GO        ?= go
BIN       ?= bin/tinykube
PKGS      ?= ./...
# Packages whose tests are also run under the race detector (concurrency is
# their job); the rest run without it to keep CI short.
RACE_PKGS ?= ./storage/... ./scheduler/...
RUN_ARGS  ?=

.PHONY: help build test unit race lint bench run deps

help:
	@echo "make build   build $(BIN)"
	@echo "make test    lint + every test (what CI runs)"
	@echo "make bench   benchmarks with figures"
	@echo "make run     install missing system packages, build, start a cluster (root)"
	@echo "make lint    gofmt -l and go vet"

# The ldflags stamp the built-in kubectl's client version (see the script).
build:
	$(GO) build -ldflags "$$(./scripts/version-ldflags.sh)" -o $(BIN) ./cmd/tinykube

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

unit:
	$(GO) test -count=1 $(PKGS)

race:
	$(GO) test -count=1 -race $(RACE_PKGS)

test: lint unit race

bench:
	$(GO) test -run '^$$' -bench . -benchmem -count=1 $(PKGS)

deps:
	./scripts/install-deps.sh

run: deps build
	./$(BIN) server $(RUN_ARGS)
