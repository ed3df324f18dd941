# TestbedOS. `make run` starts the server, `make test` runs the whole suite
# (as root: it installs the Debian packages the tests need and starts the
# services they use; vet, staticcheck and gofmt first), `make bench` measures.
#
# Integration tests skip when the machine lacks what they need (root,
# libvirtd, QEMU, a package). With TESTBEDOS_REQUIRE_INTEGRATION=1 in the
# environment each such skip is a failure with the same reason, so a run
# cannot pass without them; .ci/run sets it:
#   TESTBEDOS_REQUIRE_INTEGRATION=1 make test

GO        ?= go
BIN       := $(CURDIR)/bin
DATA_DIR  ?= $(if $(TESTBEDOS_DATA_DIR),$(TESTBEDOS_DATA_DIR),$(CURDIR)/.testbedos)
PKGS      := ./...
# Fuzz targets run briefly by `make test`: package:Target. The budget is a
# count of executions, not a duration: Go 1.26's fuzz coordinator can fail a
# time-bounded run at its deadline on a loaded machine (go.dev/issue/75804).
FUZZ      := ./internal/topology:FuzzParse ./internal/acl:FuzzCompile ./internal/api:FuzzActionRequest ./internal/store:FuzzCheckName ./internal/server:FuzzRequestBodies
FUZZTIME  ?= 40000x
# staticcheck, pinned; `make test` installs it with go install (a Go
# module, fetched through the module proxy like the project's own).
STATICCHECK_VERSION := v0.8.2
STATICCHECK := $(or $(shell $(GO) env GOBIN),$(shell $(GO) env GOPATH)/bin)/staticcheck
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X github.com/testbedos/testbedos/internal/server.Version=$(VERSION) \
             -X github.com/testbedos/testbedos/internal/cli.Version=$(VERSION)

.PHONY: all build run test test-deps gui-assets vet staticcheck staticcheck-install fmt-check unit fuzz bench clean

all: build

build: gui-assets
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/testbedos-server ./cmd/testbedos-server
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/kvm-compose ./cmd/kvm-compose

# The server in main mode with the file store; data under ./.testbedos unless
# TESTBEDOS_DATA_DIR says otherwise. It says first how kvm-compose in another
# shell finds this server's token for TCP (the unix socket needs none).
run: build
	@echo "make run: data folder $(DATA_DIR); for kvm-compose over TCP, in another shell:"
	@echo "  export PATH=$(BIN):\$$PATH TESTBEDOS_DATA_DIR=$(DATA_DIR)   # the CLI reads its config/token"
	TESTBEDOS_DATA_DIR=$(DATA_DIR) $(BIN)/testbedos-server main

test: test-deps vet staticcheck fmt-check unit fuzz

# The GUI's JavaScript libraries (xterm.js; axe-core for the browser test)
# come from npm, pinned by internal/gui/js/package-lock.json, into the
# git-ignored internal/gui/static/vendor/ that go:embed reads. A plain
# `go build` without them still compiles, but its console has no terminal.
gui-assets:
	scripts/gui-assets.sh

test-deps:
	@if [ "$$(id -u)" = 0 ]; then scripts/install-test-deps.sh && scripts/start-libvirt.sh && scripts/start-docker.sh; \
	else echo "make test: not root: integration tests that need root will be skipped (fail with TESTBEDOS_REQUIRE_INTEGRATION=1)"; fi

vet:
	$(GO) vet $(PKGS)

# Installs the pinned staticcheck unless that version is already there.
staticcheck-install:
	@if ! $(STATICCHECK) -version 2>/dev/null | grep -q '$(STATICCHECK_VERSION:v%=%)'; then \
		echo "installing staticcheck $(STATICCHECK_VERSION)"; \
		$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION); fi

# staticcheck's default checks over the whole tree; any finding fails.
staticcheck: staticcheck-install
	$(STATICCHECK) $(PKGS)

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

unit: gui-assets
	$(GO) test -race -timeout 30m $(PKGS)

fuzz:
	@set -e; for t in $(FUZZ); do pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "fuzz $$pkg $$fn, $(FUZZTIME) executions"; \
		$(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 2s $$pkg; done

# Component benchmarks three times each; the load test (50 clients, 30 s) and
# the VM boots once.
bench: build
	$(GO) test -run '^$$' -bench . -benchtime 3x -timeout 60m $$($(GO) list ./... | grep -v /test/e2e)
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 60m ./test/e2e

clean:
	rm -rf $(BIN)
