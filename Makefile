# wxnotify — run `make help` for the targets.

GO        ?= go
BIN       ?= bin/wxnotify
PKGS      := ./...
# Tests run with the race detector; set RACE= to run without it.
RACE      ?= -race

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z][a-z-]*:.*## / {printf "  make %-8s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: demo
demo: ## run the in-process demo: embedded Redis, fake WeChat, a worker, a few reminders
	@$(GO) run ./cmd/wxnotify demo

.PHONY: test
test: ## run every test against a real Redis (starts a throwaway one if none answers)
	@scripts/with-redis.sh $(GO) test $(RACE) -count=1 $(PKGS)

.PHONY: build
build: ## build bin/wxnotify
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/wxnotify

.PHONY: vet
vet: ## go vet and gofmt check
	$(GO) vet $(PKGS)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }

.PHONY: bench
bench: ## measure throughput, latency, tokens, rate limit, enqueue, cost into docs/benchmarks.md; then gobench
	$(GO) run ./bench/harness bench -out docs/benchmarks.md
	@$(MAKE) --no-print-directory gobench

.PHONY: gobench
gobench: ## run the Go benchmarks of the hot paths (allocations reported)
	@scripts/with-redis.sh $(GO) test -run '^$$' -bench . -benchmem $(PKGS)

.PHONY: chaos
chaos: ## run the fault suite (worker kills, Redis restart, WeChat faults) into docs/benchmarks.md
	$(GO) run ./bench/harness chaos -out docs/benchmarks.md

.PHONY: bench-smoke
bench-smoke: ## CI form of bench and chaos: tiny N, the quick fault scenarios, seconds
	$(GO) run ./bench/harness smoke -out $${TMPDIR:-/tmp}/wxnotify-bench-smoke.md
	@scripts/with-redis.sh $(GO) test -run '^$$' -bench . -benchtime 1x -benchmem $(PKGS)
