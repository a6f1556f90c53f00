#!/usr/bin/env bash
# make bench-scheduler: scheduler_perf on 2 datacenters with three profiles in one run (stock +
# PodTopologySpread, DualDatacenter instead, DualDatacenter + IPPool), then the ratios.
#   BENCH_SCHEDULER_LABELS=short   the small shape (100 nodes / 500 pods) for a quick check
set -euo pipefail
cd "$(dirname "$0")/.."
labels=${BENCH_SCHEDULER_LABELS:-performance}
mkdir -p _out/bench-scheduler bin
# scheduler_perf execs etcd from PATH for every workload: build it from this module.
[ -x bin/etcd ] || CGO_ENABLED=0 go build -o bin/etcd go.etcd.io/etcd/server/v3
out=_out/bench-scheduler.txt
PATH="$PWD/bin:$PATH" go test -run '^$' -bench 'BenchmarkPerfScheduling' -benchtime=1x -timeout 60m \
  ./scheduler-plugins/bench/ -args -perf-scheduling-label-filter="$labels" -data-items-dir="$PWD/_out/bench-scheduler" 2>&1 | tee "$out" |
  grep -E '^(Benchmark|ok|FAIL|--- )' || true
grep -q '^ok' "$out" || { echo "bench-scheduler: benchmark failed, see $out" >&2; exit 1; }

# Each result line carries "<value> SchedulingThroughput/Average" (pods/s).
tput() {
  awk -v c="BenchmarkPerfScheduling/$1/" 'index($1, c) == 1 {
      for (i = 2; i < NF; i++) if ($(i+1) == "SchedulingThroughput/Average") { print $i; exit } }' "$out"
}
pts=$(tput PodTopologySpread); dd=$(tput DualDatacenter); ddip=$(tput DualDatacenterIPPool)
[ -n "$pts" ] && [ -n "$dd" ] && [ -n "$ddip" ] || { echo "bench-scheduler: missing throughput in $out" >&2; exit 1; }
echo "throughput pods/s (labels $labels): PodTopologySpread=$pts DualDatacenter=$dd DualDatacenter+IPPool=$ddip"
awk -v a="$dd" -v b="$pts" 'BEGIN { printf "RESULT dualdc_vs_pts_throughput_ratio=%.2f\n", a / b }'
awk -v a="$ddip" -v b="$dd" 'BEGIN { printf "RESULT ippool_overhead_ratio=%.2f\n", a / b }'
