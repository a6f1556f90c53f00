# ecloud — see README.md. On a fresh machine: `make up` (local cluster demo) and `make test`.
SHELL := /usr/bin/env bash -o pipefail
.DEFAULT_GOAL := help

GO        ?= go
BIN       := $(CURDIR)/bin
K8S_VERSION := 1.37.2
# Binaries: every main package under a cmd/ folder of the three components.
CMDS       = $(shell $(GO) list -f '{{if eq .Name "main"}}{{.ImportPath}}{{end}}' ./scheduler-plugins/... ./cni/... ./node-agent/... 2>/dev/null)
LDFLAGS   := -s -w
TEST_TIMEOUT ?= 45m
# Benchmarks: each component adds its bench-<name> target to this list.
BENCHES   :=
BENCHES   += bench-scheduler

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z][a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

.PHONY: build
build: ## build every binary into bin/
	@mkdir -p $(BIN)
	@cmds="$(CMDS)"; if [ -z "$$cmds" ]; then echo "build: no binaries yet"; exit 0; fi; \
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ $$cmds && ls -1 $(BIN)

.PHONY: deps
deps: ## install what the tests need (apt packages, as root) when missing
	@hack/install-deps.sh test

.PHONY: test
test: deps ## run every test: unit, integration (real apiserver in-process), root-only datapath tests
	$(GO) test -timeout $(TEST_TIMEOUT) ./...

.PHONY: generate
generate: $(BIN)/controller-gen ## regenerate deepcopy code and CRD manifests from cni/api
	$(BIN)/controller-gen object:headerFile=hack/boilerplate.go.txt paths=./cni/api/... \
		crd paths=./cni/api/... output:crd:artifacts:config=manifests/crds

$(BIN)/controller-gen: hack/tools/go.mod
	@mkdir -p $(BIN)
	cd hack/tools && $(GO) build -o $(BIN)/controller-gen sigs.k8s.io/controller-tools/cmd/controller-gen

.PHONY: verify
verify: $(BIN)/controller-gen ## gofmt, go vet, generated files fresh, go.mod tidy
	hack/verify.sh

.PHONY: bench
bench: $(BENCHES) ## run every bench-* target
	@[ -n "$(BENCHES)" ] || echo "bench: no benchmarks yet"

.PHONY: bench-scheduler
bench-scheduler: ## scheduler_perf on 2 datacenters: DualDatacenter vs PodTopologySpread (RESULT lines; BENCH_SCHEDULER_SIZE=small for a quick run)
	GO=$(GO) scheduler-plugins/bench/run.sh

.PHONY: up
up: ## start the local two-datacenter cluster on real kubelets (not yet: see issue "make up")
	@echo "make up: not implemented yet — the local two-datacenter cluster lands with the manifests/e2e issue." >&2; exit 2

.PHONY: down
down: ## stop the local cluster and remove everything it made (not yet)
	@echo "make down: not implemented yet — nothing was started by make up." >&2; exit 2

.PHONY: clean
clean: ## remove build outputs
	rm -rf $(BIN) _out
