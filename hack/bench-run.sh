#!/usr/bin/env bash
# Runs one benchmark command and prints its output with the conditions a figure is judged by:
# every line the command prints except its `RESULT name=value` lines, then the commit measured and
# the load average (1/5/15 min, /proc/loadavg) at start and at end, then the RESULT lines last.
# Every `make bench-*` target runs through this script.
#   hack/bench-run.sh <name> <command> [args...]
set -uo pipefail
name=$1; shift
root=$(cd "$(dirname "$0")/.." && pwd)
commit=$(git -C "$root" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
if [ "$commit" != unknown ] && [ -n "$(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
	commit="$commit+uncommitted-changes"
fi
load() { cut -d' ' -f1-3 /proc/loadavg; }
load_start=$(load); start=$(date -u +%Y-%m-%dT%H:%M:%SZ)
log=$(mktemp); trap 'rm -f "$log"' EXIT
"$@" | tee "$log" | grep -av '^RESULT '
rc=${PIPESTATUS[0]}
echo "bench $name: commit $commit, started $start on $(nproc) CPUs, load average at start $load_start, at end $(load)"
grep -a '^RESULT ' "$log"
exit "$rc"
