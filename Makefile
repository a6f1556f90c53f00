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
BENCHES   := bench-scheduler bench-agent bench-cni bench-ipam

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
bench-scheduler: ## scheduler_perf: PodTopologySpread vs DualDatacenter vs DualDatacenter+IPPool (RESULT ratios)
	hack/bench-scheduler.sh

.PHONY: bench-agent
bench-agent: ## node agent: 500 real container cgroups, our collector vs cAdvisor's manager (CPU, peak RSS); root
	@mkdir -p $(BIN)
	$(GO) build -tags bench -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/bench-agent-collector ./node-agent/bench/collector
	$(GO) build -tags bench -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/bench-agent-cadvisor ./node-agent/bench/cadvisor
	$(GO) build -tags bench -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/bench-agent-driver ./node-agent/bench/driver
	$(BIN)/bench-agent-driver -bin $(BIN)

.PHONY: bench-cni
bench-cni: deps ## CNI ADD/DEL latency (real plugin, netd, OVS userspace datapath; root)
	@mkdir -p $(BIN); ECLOUD_BENCH=cni $(GO) test -count=1 -timeout 20m -run '^TestCNIBench$$' -v ./test/integration > $(BIN)/bench-cni.log 2>&1 || { tail -50 $(BIN)/bench-cni.log; exit 1; }
	@grep -E '^RESULT ' $(BIN)/bench-cni.log

.PHONY: bench-ipam
bench-ipam: ## IPAM allocate+release through the real apiserver (concurrency 1/16/64, 100 workloads x 10 pods)
	@out=$$(mktemp); \
	$(GO) test -run '^$$' -bench '^BenchmarkIPAM$$' -benchtime=1x -timeout 20m ./test/integration 2>/dev/null | tee $$out | grep -E '^(Benchmark|ipam |ok|FAIL|---)'; \
	rc=$${PIPESTATUS[0]}; grep '^RESULT' $$out; rm -f $$out; exit $$rc

.PHONY: up
up: ## start the local two-datacenter cluster on real kubelets (not yet: see issue "make up")
	@echo "make up: not implemented yet — the local two-datacenter cluster lands with the manifests/e2e issue." >&2; exit 2

.PHONY: down
down: ## stop the local cluster and remove everything it made (not yet)
	@echo "make down: not implemented yet — nothing was started by make up." >&2; exit 2

.PHONY: clean
clean: ## remove build outputs
	rm -rf $(BIN) _out
