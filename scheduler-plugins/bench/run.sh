#!/usr/bin/env bash
# make bench-scheduler: the upstream scheduler_perf harness with ecloud's plugins on two
# datacenters. Builds etcd from this module (scheduler_perf execs `etcd` from PATH for every
# workload) and runs the three test cases of performance-config.yaml at the selected size, one
# process per case, in rounds:
#   - BENCH_SCHEDULER_ROUNDS (default 3, at least 1) rounds; every round runs each case once.
#   - The case order rotates every round (first PTS DualDC IPPool, then DualDC IPPool PTS, then
#     IPPool PTS DualDC, ...), so no case always runs first (cold) or last (after the
#     others heated the machine).
#   - A ratio is computed within each round (the two cases ran minutes apart under the same
#     load), printed per round with its min and max, and the RESULT is the mean of the rounds:
#   RESULT dualdc_vs_pts_throughput_ratio=<DualDatacenter / PodTopologySpread pods/s>
#   RESULT ippool_overhead_ratio=<DualDatacenterIPPool / DualDatacenter pods/s>
# BENCH_SCHEDULER_SIZE selects the workload: performance (default, 5000 nodes / 10000 pods, about
# 2 min per case on the 2-core machine), medium (2000 nodes / 4000 pods) or small (500 nodes /
# 1000 pods).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
go=${GO:-go}
size=${BENCH_SCHEDULER_SIZE:-performance}
rounds=${BENCH_SCHEDULER_ROUNDS:-3}
case "$rounds" in '' | *[!0-9]* | 0) echo "BENCH_SCHEDULER_ROUNDS=$rounds: want a whole number >= 1" >&2; exit 2 ;; esac
cases=(PodTopologySpread DualDatacenter DualDatacenterIPPool)
mkdir -p "$root/bin"
if [ ! -x "$root/bin/etcd" ]; then
	(cd "$root" && CGO_ENABLED=0 $go build -o bin/etcd go.etcd.io/etcd/server/v3)
fi
export PATH="$root/bin:$PATH"
work=$(mktemp -d /tmp/ecloud-bench-scheduler.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$root/scheduler-plugins/bench"
$go test -tags schedulerperf -c -o "$work/bench.test" .
echo "bench-scheduler: size $size, $rounds rounds, case order rotated every round"
for round in $(seq 1 "$rounds"); do
	order=()
	for i in "${!cases[@]}"; do order+=("${cases[$(((i + round - 1) % ${#cases[@]}))]}"); done
	echo "round $round: ${order[*]}"
	for c in "${order[@]}"; do
		log="$work/log.$round.$c"
		"$work/bench.test" -test.run '^$' -test.bench "^BenchmarkPerfScheduling\$/^$c\$/" -test.benchtime=1x -test.timeout 60m \
			-perf-scheduling-label-filter="$size" -data-items-dir="$work" >"$log" 2>&1 || {
			grep -a -- '--- FAIL\|FAIL\|Error' "$log" | tail -20 >&2
			exit 1
		}
		# "BenchmarkPerfScheduling/<case>/<workload>-N 1 ... <v> SchedulingThroughput/Average ..."
		line=$(grep -a "^BenchmarkPerfScheduling/$c/" "$log" || true)
		[ -n "$line" ] || { echo "round $round: case $c printed no benchmark line (size $size)" >&2; tail -20 "$log" >&2; exit 1; }
		echo "$line" | awk -v r="$round" '{ split($1, name, "/"); for (i = 2; i < NF; i++) if ($(i+1) == "SchedulingThroughput/Average") v = $i
			printf "round %d %-22s %-22s %8.1f pods/s\n", r, name[2], name[3], v }'
	done
done | tee "$work/rounds"
awk -v rounds="$rounds" '
	$1 == "round" && $4 != "" && $NF == "pods/s" { tput[$2, $3] = $(NF-1) }
	function ratio(name, num, den,    r, v, sum, min, max, list) {
		for (r = 1; r <= rounds; r++) {
			v = tput[r, num] / tput[r, den]; sum += v; list = list sprintf(" %.3f", v)
			if (r == 1 || v < min) min = v
			if (r == 1 || v > max) max = v
		}
		printf "ratio %s per round:%s  (min %.3f, max %.3f, mean of %d rounds %.3f)\n", name, list, min, max, rounds, sum / rounds
		res[name] = sum / rounds; rmin[name] = min; rmax[name] = max
	}
	END {
		ratio("dualdc_vs_pts_throughput_ratio", "DualDatacenter", "PodTopologySpread")
		ratio("ippool_overhead_ratio", "DualDatacenterIPPool", "DualDatacenter")
		printf "RESULT dualdc_vs_pts_throughput_ratio=%.3f min=%.3f max=%.3f rounds=%d\n", res["dualdc_vs_pts_throughput_ratio"], rmin["dualdc_vs_pts_throughput_ratio"], rmax["dualdc_vs_pts_throughput_ratio"], rounds
		printf "RESULT ippool_overhead_ratio=%.3f min=%.3f max=%.3f rounds=%d\n", res["ippool_overhead_ratio"], rmin["ippool_overhead_ratio"], rmax["ippool_overhead_ratio"], rounds
	}' "$work/rounds"
