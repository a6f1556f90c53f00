#!/usr/bin/env bash
# make bench-scheduler: the upstream scheduler_perf harness with ecloud's plugins on two
# datacenters. Builds etcd from this module (scheduler_perf execs `etcd` from PATH for every
# workload), runs every test case of performance-config.yaml at the selected size, and prints the
# throughput ratios as the last lines:
#   RESULT dualdc_vs_pts_throughput_ratio=<DualDatacenter / PodTopologySpread pods/s>
#   RESULT ippool_overhead_ratio=<DualDatacenterIPPool / DualDatacenter pods/s>  (once that case exists)
# BENCH_SCHEDULER_SIZE selects the workload: performance (default, 5000 nodes / 10000 pods, 6 min
# on the 2-core machine), medium (2000 nodes / 4000 pods) or small (500 nodes / 1000 pods).
# BENCH_SCHEDULER_ROUNDS (default 1) runs every test case that many times (round after round) and
# averages each case's throughput: on a machine shared with other work, load drifts between the
# cases of one round.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
go=${GO:-go}
size=${BENCH_SCHEDULER_SIZE:-performance}
rounds=${BENCH_SCHEDULER_ROUNDS:-1}
mkdir -p "$root/bin"
if [ ! -x "$root/bin/etcd" ]; then
	(cd "$root" && CGO_ENABLED=0 $go build -o bin/etcd go.etcd.io/etcd/server/v3)
fi
export PATH="$root/bin:$PATH"
work=$(mktemp -d /tmp/ecloud-bench-scheduler.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$root/scheduler-plugins/bench"
$go test -tags schedulerperf -c -o "$work/bench.test" .
for round in $(seq 1 "$rounds"); do
	"$work/bench.test" -test.run '^$' -test.bench 'BenchmarkPerfScheduling' -test.benchtime=1x -test.timeout 60m \
		-perf-scheduling-label-filter="$size" -data-items-dir="$work" >"$work/log.$round" 2>&1 || {
		grep -a -- '--- FAIL\|FAIL\|Error' "$work/log.$round" | tail -20 >&2
		exit 1
	}
done
# One benchmark line per test case: "BenchmarkPerfScheduling/<case>/<workload>-N 1 ... <v> SchedulingThroughput/Average ..."
for round in $(seq 1 "$rounds"); do grep -a '^BenchmarkPerfScheduling/' "$work/log.$round"; done | awk '
	{ split($1, name, "/"); for (i = 2; i < NF; i++) if ($(i+1) == "SchedulingThroughput/Average") v = $i
	  sum[name[2]] += v; n[name[2]]++; tput[name[2]] = sum[name[2]] / n[name[2]]
	  printf "%-24s %-24s %8.1f pods/s\n", name[2], name[3], v }
	END {
		for (c in tput) if (n[c] > 1) printf "%-24s mean of %d rounds        %8.1f pods/s\n", c, n[c], tput[c]
		if (tput["PodTopologySpread"] > 0 && tput["DualDatacenter"] > 0)
			printf "RESULT dualdc_vs_pts_throughput_ratio=%.3f\n", tput["DualDatacenter"] / tput["PodTopologySpread"]
		if (tput["DualDatacenter"] > 0 && tput["DualDatacenterIPPool"] > 0)
			printf "RESULT ippool_overhead_ratio=%.3f\n", tput["DualDatacenterIPPool"] / tput["DualDatacenter"]
	}'
