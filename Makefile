# ecloud — see README.md. On a fresh machine: `make up` (local cluster demo) and `make test`.
SHELL := /usr/bin/env bash -o pipefail
.DEFAULT_GOAL := help

GO        ?= go
# Nothing in this module needs cgo, and the images hold static binaries: building and testing
# everything without it (and without -trimpath) lets go vet, go test, the Kubernetes binaries and
# the images share one build cache, which saves minutes on a cold machine.
CGO_ENABLED ?= 0
export CGO_ENABLED
BIN       := $(CURDIR)/bin
K8S_VERSION := 1.37.2
# Binaries: every main package under a cmd/ folder of the components and the kubectl plugin.
CMDS       = $(shell $(GO) list -f '{{if eq .Name "main"}}{{.ImportPath}}{{end}}' ./scheduler-plugins/... ./cni/... ./node-agent/... ./kubectl-ecloud/... 2>/dev/null)
LDFLAGS   := -s -w
TEST_TIMEOUT ?= 45m
# Benchmarks: each component adds its bench-<name> target to this list.
BENCHES   := bench-scheduler bench-agent bench-cni bench-ipam bench-e2e bench-datapath bench-scale

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z][a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

.PHONY: build
build: ## build every binary into bin/
	@mkdir -p $(BIN)
	@cmds="$(CMDS)"; if [ -z "$$cmds" ]; then echo "build: no binaries yet"; exit 0; fi; \
	CGO_ENABLED=0 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ $$cmds && ls -1 $(BIN)

.PHONY: deps
deps: ## install what the tests need (apt packages, as root) when missing
	@hack/install-deps.sh test

.PHONY: test
test: deps ## every test: unit, integration (real apiserver in-process), root-only datapath tests, make fuzz, then make e2e with the fault matrix
	@t=$$(date +%s); $(GO) test -timeout $(TEST_TIMEOUT) ./... && echo "test: go test ./... $$(($$(date +%s) - t))s"
	@t=$$(date +%s); $(MAKE) --no-print-directory fuzz && echo "test: make fuzz $$(($$(date +%s) - t))s"
	@t=$$(date +%s); $(MAKE) --no-print-directory e2e ECLOUD_CHAOS=1 && echo "test: make e2e $$(($$(date +%s) - t))s"

# Fuzz targets as package:FuzzName. go test takes one -fuzz pattern per package run, so each runs
# alone, FUZZTIME long; a failing input is written to the package's testdata/fuzz/<FuzzName>/.
FUZZTIME ?= 15s
FUZZ_TARGETS := ./cni/netd:FuzzServeRequest ./cni/ipam:FuzzParseIntent ./cni/ipam:FuzzParseRanges \
	./cni/plugin:FuzzParseArgs ./cni/plugin:FuzzParseNetConf

.PHONY: fuzz
fuzz: ## run every fuzz target for FUZZTIME (default 15s) each: netd socket requests, IPAM annotations, pool ranges, CNI args and config
	@GO=$(GO) FUZZTIME=$(FUZZTIME) hack/fuzz.sh $(FUZZ_TARGETS)

.PHONY: generate
generate: $(BIN)/controller-gen ## regenerate deepcopy code and CRD manifests from cni/api
	$(BIN)/controller-gen object:headerFile=hack/boilerplate.go.txt paths=./cni/api/... \
		crd paths=./cni/api/... output:crd:artifacts:config=manifests/crds

$(BIN)/controller-gen: hack/tools/go.mod
	@mkdir -p $(BIN)
	cd hack/tools && $(GO) build -o $(BIN)/controller-gen sigs.k8s.io/controller-tools/cmd/controller-gen

.PHONY: verify
verify: $(BIN)/controller-gen $(BIN)/golangci-lint ## gofmt, go vet, golangci-lint, generated files fresh, go.mod tidy
	hack/verify.sh

# golangci-lint, pinned in a module of its own (its dependencies stay out of go.mod).
$(BIN)/golangci-lint: hack/tools/golangci-lint/go.mod
	@mkdir -p $(BIN)
	cd hack/tools/golangci-lint && $(GO) build -o $(BIN)/golangci-lint github.com/golangci/golangci-lint/v2/cmd/golangci-lint

.PHONY: mutation
mutation: ## flip one guard of the core rules at a time (go test -overlay) and show a test catches each (about 10 min; not in make test)
	@hack/mutation.sh

.PHONY: bench
bench: $(BENCHES) ## run every bench-* target
	@[ -n "$(BENCHES)" ] || echo "bench: no benchmarks yet"

.PHONY: bench-scheduler
bench-scheduler: ## scheduler_perf on 2 datacenters: PodTopologySpread vs DualDatacenter vs DualDatacenter+IPPool, 3 rounds in rotated order (RESULT lines; BENCH_SCHEDULER_SIZE=small|medium for a quicker run, BENCH_SCHEDULER_ROUNDS=N)
	@GO=$(GO) hack/bench-run.sh bench-scheduler scheduler-plugins/bench/run.sh

.PHONY: bench-agent
bench-agent: ## node agent: 500 real container cgroups, our collector vs cAdvisor's manager, same families and basic set (CPU after warm-up, peak RSS); root
	@mkdir -p $(BIN)
	$(GO) build -tags bench -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/bench-agent-collector ./node-agent/bench/collector
	$(GO) build -tags bench -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/bench-agent-cadvisor ./node-agent/bench/cadvisor
	$(GO) build -tags bench -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/bench-agent-driver ./node-agent/bench/driver
	@hack/bench-run.sh bench-agent $(BIN)/bench-agent-driver -bin $(BIN)

.PHONY: bench-cni
bench-cni: deps ## CNI ADD/DEL latency (real plugin, netd, OVS userspace datapath; root)
	@mkdir -p $(BIN); hack/bench-run.sh bench-cni bash -c "ECLOUD_BENCH=cni $(GO) test -count=1 -timeout 20m -run '^TestCNIBench\$$' -v ./test/integration > $(BIN)/bench-cni.log 2>&1 || { tail -50 $(BIN)/bench-cni.log; exit 1; }; grep -E '^(cni phase|cni cpu|cni order|RESULT) ' $(BIN)/bench-cni.log"

.PHONY: bench-ipam
bench-ipam: ## IPAM allocate+release through the real apiserver (concurrency 1/16/64, 100 workloads x 10 pods, open loop at 500/s)
	@hack/bench-run.sh bench-ipam bash -o pipefail -c "$(GO) test -run '^\$$' -bench '^BenchmarkIPAM\$$' -benchtime=1x -timeout 20m ./test/integration 2>/dev/null | grep -E '^(Benchmark|ipam |ok|FAIL|---|RESULT )'"

.PHONY: up
up: ## start the local two-datacenter cluster on real kubelets: two namespace hosts and, where QEMU runs, a guest node on Debian's kernel (ECLOUD_GUEST_NODE=0 skips it; root; see hack/cluster/lib.sh)
	@hack/cluster/up.sh

.PHONY: down
down: ## stop the local cluster and remove everything make up made (safe to repeat)
	@hack/cluster/down.sh

.PHONY: guest-datapath
guest-datapath: ## pod<->pod between the kernel OVS datapath in a QEMU guest (Debian's kernel) and the userspace datapath, over VXLAN and Geneve (root, QEMU; hack/guest-datapath)
	@hack/guest-datapath/run.sh

# ECLOUD_CHAOS=1: make e2e runs the fault matrix (make chaos) after the e2e, on the same cluster.
ECLOUD_CHAOS ?= 0

.PHONY: e2e
e2e: ## end-to-end tests on the local cluster (root, else they skip; reuse a running make up, else bring one up and down); ECLOUD_CHAOS=1 adds the fault matrix
	ECLOUD_E2E=1 ECLOUD_CHAOS=$(ECLOUD_CHAOS) $(GO) test -count=1 -v -timeout 60m ./test/e2e/

.PHONY: chaos
chaos: ## the fault matrix on the local cluster: netd, scheduler leader, apiserver, node, Odin killed or stopped, a "chaos NAME:" figure line each (root; about 10 min; ECLOUD_CHAOS_ODIN_OUTAGE=5m, ECLOUD_CHAOS_ONLY=netd-kill,...)
	ECLOUD_E2E=1 ECLOUD_CHAOS=1 $(GO) test -count=1 -v -timeout 40m -run '^TestFaultMatrix$$' ./test/e2e/

.PHONY: bench-scale
bench-scale: deps ## 5000 Nodes, 150k IPClaims: a real netd (OVS userspace) and simulated nodes follow 100 location changes/s, per-claim vs location-relay design (BENCH_SCALE_RELAY_SOURCE=claims|slices); IPAM and scheduler at 1k vs 150k claims (root; RESULT lines last; BENCH_SCALE_* sizes)
	@hack/bench-run.sh bench-scale hack/bench-scale.sh

.PHONY: bench-datapath
bench-datapath: ## TCP throughput (iperf3) and 1-byte RR p50/p99, pod<->pod same node/across nodes and host->pod, vs the wire and a Linux bridge+VXLAN reference: namespace hosts (netd, netdev) and two QEMU guests (kernel datapath, TCG); root, RESULT ratios last (BENCH_DP_PARTS="netns guests")
	@hack/install-deps.sh bench-datapath
	@GO=$(GO) hack/bench-run.sh bench-datapath hack/bench-datapath/run.sh

.PHONY: bench-e2e
bench-e2e: ## 100 pods at once on the local cluster, host network vs ecloud vs the reference CNI (bridge), mirrored order after a warm-up: create->scheduled/sandbox/running/Ready n, p50, p99 (root; RESULT lines last; ECLOUD_E2E_BENCH_PODS=N)
	@mkdir -p _out; hack/bench-run.sh bench-e2e bash -c "ECLOUD_E2E=1 ECLOUD_E2E_BENCH=1 $(GO) test -count=1 -v -timeout 60m -run TestBenchPodStartup ./test/e2e/ \
		>_out/bench-e2e.log 2>&1 || { tail -40 _out/bench-e2e.log; exit 1; }; \
	grep -E 'pods Ready in|^(warm-up|batch|stage) |SKIP|skip|^RESULT ' _out/bench-e2e.log || true"

.PHONY: kube-binaries
kube-binaries: ## build kube-*, kubelet, kubectl, etcd and the CNI reference plugins into bin/ (incremental)
	@hack/build-k8s.sh

.PHONY: images
images: build ## build the OCI image tarballs (pause, workload, ecloud components) into _out/images/
	@hack/build-images.sh

.PHONY: clean
clean: ## remove build outputs
	rm -rf $(BIN) _out
