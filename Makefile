# relayd — the documented entry points. Each target is one line.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: build test demo fleet bench fuzz lint cross

build: ## build bin/relayd (says so: a first build on a fresh machine compiles every dependency for minutes)
	@echo "building bin/relayd (the first build on a machine downloads and compiles the dependencies: a few minutes)..." >&2; $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/relayd ./cmd/relayd && echo "built bin/relayd" >&2

test: ## the whole test suite (unit, integration, end-to-end)
	$(GO) test -race -timeout 15m ./...

demo: build ## the whole tree on loopback: origin, mirror group, branches, 300 agents, a publish, a failure
	./scripts/demo.sh

fleet: build ## a fleet on this machine: 1+3+10+36 relays, 100,000 agents, a publish, 10 kills, a publish; report in fleet-report/ (FLEET="--agents 2000 --relays 1,1,2,4 --netns ..." for others; docs/fleet.md)
	$(GO) run ./scripts/fleet --relayd bin/relayd $(FLEET)

bench: build ## benchmarks side by side with nginx proxy_cache (see docs/benchmarks.md)
	RELAYD_BIN=$(CURDIR)/bin/relayd ./scripts/bench/run.sh

fuzz: ## run each fuzz target for FUZZTIME (default 30s)
	./scripts/fuzz.sh $(FUZZTIME)

lint: ## formatting and vet
	test -z "$$(gofmt -l .)" && $(GO) vet ./...

cross: ## build relayd and vet the agent for windows/amd64, darwin/arm64, linux/arm64
	GO=$(GO) ./scripts/cross.sh

conformance: build ## HTTP caching conformance suite (http-tests/cache-tests) against relayd, squid, varnish, nginx: results/conformance-<date>.json (docs/conformance.md)
	RELAYD_BIN=$(CURDIR)/bin/relayd ./scripts/conformance/run.sh
