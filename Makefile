# tinykube: one binary, one Makefile. `make help` lists the targets.
GO        ?= go
BIN       ?= bin/tinykube
PKGS      ?= ./...
# Packages whose tests are also run under the race detector (concurrency is
# their job); the rest run without it to keep CI short.
RACE_PKGS ?= ./storage/... ./scheduler/...
RUN_ARGS  ?=
# Packages with fuzz targets, and how long `make fuzz` fuzzes each target.
FUZZ_PKGS ?= ./apiserver
FUZZ_TIME ?= 10s

.PHONY: help build test unit race fuzz lint bench run deps

help:
	@echo "make build   build $(BIN)"
	@echo "make test    lint + every test (what CI runs)"
	@echo "make bench   benchmarks with figures"
	@echo "make run     install missing system packages, build, start a cluster (root)"
	@echo "make lint    gofmt -l and go vet"
	@echo "make fuzz    each fuzz target for FUZZ_TIME (10s)"

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

# go test fuzzes one target per run: build each package's instrumented test
# binary once, then fuzz its targets in turn (in the package's directory,
# where failing inputs land in testdata/fuzz; the corpus of interesting
# inputs is kept where go test keeps it).
fuzz:
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; \
	for pkg in $(FUZZ_PKGS); do \
	  $(GO) test -c -fuzz=. -o $$tmp/fuzz.test $$pkg; \
	  cache=$$($(GO) env GOCACHE)/fuzz/$$($(GO) list $$pkg); \
	  for target in $$(cd $$pkg && $$tmp/fuzz.test -test.list '^Fuzz'); do \
	    echo "fuzz $$pkg $$target ($(FUZZ_TIME))"; \
	    (cd $$pkg && $$tmp/fuzz.test -test.run '^$$' -test.fuzz "^$$target\$$" \
	      -test.fuzztime $(FUZZ_TIME) -test.fuzzcachedir $$cache); \
	  done; \
	done

test: lint unit race fuzz

bench:
	$(GO) test -run '^$$' -bench . -benchmem -count=1 $(PKGS)

deps:
	./scripts/install-deps.sh

run: deps build
	./$(BIN) server $(RUN_ARGS)
