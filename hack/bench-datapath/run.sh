#!/usr/bin/env bash
# run.sh: make bench-datapath. Two parts, each measuring ecloud's datapath against baselines on
# the same nodes in the same run: the namespace hosts with netd on the userspace datapath
# (netdev; TestDatapathBench in test/integration), then two QEMU guests on Debian's kernel with
# the kernel datapath (system; guests.sh, emulated by TCG). Prints each part's lines, then every
# RESULT line, the ratios (…_vs_…) last.
#   BENCH_DP_PARTS="netns guests"  (default both)
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
GO=${GO:-go}
parts=${BENCH_DP_PARTS:-netns guests}
log=$(mktemp); trap 'rm -f "$log"' EXIT
mkdir -p "$ROOT/_out"
rc=0
for part in $parts; do
  case $part in
    netns)
      ECLOUD_BENCH=datapath "$GO" -C "$ROOT" test -count=1 -timeout 20m -run '^TestDatapathBench$' -v ./test/integration \
        >"$ROOT/_out/bench-datapath-netns.log" 2>&1 || { tail -40 "$ROOT/_out/bench-datapath-netns.log"; rc=1; }
      grep -aE '^(datapath|iteration|  [a-z]|RESULT) ' "$ROOT/_out/bench-datapath-netns.log" | tee -a "$log" | grep -av '^RESULT ' ;;
    guests)
      "$ROOT/hack/bench-datapath/guests.sh" >"$ROOT/_out/bench-datapath-guests.log" 2>&1 || { tail -40 "$ROOT/_out/bench-datapath-guests.log"; rc=1; }
      grep -aE '^(datapath|iteration|  [a-z]|guest[01]:|RESULT) ' "$ROOT/_out/bench-datapath-guests.log" | tee -a "$log" | grep -av '^RESULT ' ;;
    *) echo "bench-datapath: unknown part $part"; exit 2 ;;
  esac
done
grep -a '^RESULT ' "$log" | grep -av '_vs_'
grep -a '^RESULT ' "$log" | grep -a '_vs_'
exit $rc
