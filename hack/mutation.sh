#!/usr/bin/env bash
# make mutation: flips one guard of ecloud's core rules at a time and shows that the tests catch it.
# Each mutation replaces one line of one file at build time (go test -overlay: the work tree is never
# touched) and runs the tests that guard that rule; a mutation is CAUGHT when at least one of them
# fails, MISSED when they all pass. First the same tests run unmutated, and must pass (a test
# that fails anyway catches nothing). Exit status 0 only if every mutation is caught.
# Root for the integration tests' real apiserver is not needed; it takes about 10 minutes on two
# cores (one build of the integration test binary per mutation).
#   hack/mutation.sh            every mutation
#   hack/mutation.sh gc-seen    the mutations whose name contains the argument
set -uo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
root=$PWD
work=$(mktemp -d /tmp/ecloud-mutation.XXXXXX)
trap 'rm -rf "$work"' EXIT

# mutation NAME FILE LINE-AS-SHIPPED MUTATED-LINE PACKAGE TESTS: one guard flipped. The line must
# occur exactly once in FILE (whole line, tabs included); TESTS is go test's -run pattern.
names=(); declare -A mfile mfrom mto mpkg mrun
mutation() { names+=("$1"); mfile[$1]=$2; mfrom[$1]=$3; mto[$1]=$4; mpkg[$1]=$5; mrun[$1]=$6; }
T=$'\t'
mutation dualdc-filter scheduler-plugins/dualdatacenter/filter.go \
  "${T}if reason != \"\" {" "${T}if false && reason != \"\" {" \
  ./scheduler-plugins/dualdatacenter '^TestPreFilterAndFilter$'
mutation ippool-free-ip-filter scheduler-plugins/ippool/filter.go \
  "${T}${T}if s.held != nil || c.free > 0 {" "${T}${T}if s.held != nil || c.free >= 0 {" \
  ./scheduler-plugins/ippool '^TestFilter$'
mutation claim-unique-on-alreadyexists cni/ipam/allocate.go \
  "${T}${T}${T}a.markTaken(ip, pool)" "${T}${T}${T}return newClaim(ip.String(), pool, in, st), nil" \
  ./test/integration '^TestIPAMConcurrentExhaustion$'
mutation gc-seen-twice cni/controller/gc/gc.go \
  "${T}${T}if s.seen < 2 || now.Sub(s.first) < c.cfg.Grace {" "${T}${T}if s.seen < 1 || now.Sub(s.first) < c.cfg.Grace {" \
  ./test/integration '^TestGCFreesALeakOnlyOnItsSecondSighting$'
mutation sticky-lookup cni/ipam/allocate.go \
  "${T}${T}if in.Mode == v1alpha1.ModeSticky && c.Spec.Mode == v1alpha1.ModeSticky {" "${T}${T}if false && in.Mode == v1alpha1.ModeSticky && c.Spec.Mode == v1alpha1.ModeSticky {" \
  ./test/integration '^TestIPAMStickyFollowsPod$'
split() { name=$1; file=${mfile[$1]}; from=${mfrom[$1]}; to=${mto[$1]}; pkg=${mpkg[$1]}; run=${mrun[$1]}; }

filter=${1:-}
selected=()
for m in "${names[@]}"; do
  split "$m"
  [[ -z "$filter" || "$name" == *"$filter"* ]] && selected+=("$m")
done
[ ${#selected[@]} -gt 0 ] || { echo "mutation: nothing matches '$filter'" >&2; exit 2; }

# Baseline: the guarding tests pass as shipped, one go test per package.
declare -A runs
for m in "${selected[@]}"; do split "$m"; runs[$pkg]+="${runs[$pkg]:+|}$run"; done
for pkg in "${!runs[@]}"; do
  echo "mutation: baseline $pkg -run '${runs[$pkg]}'"
  if ! $GO test -count=1 -timeout 20m -run "${runs[$pkg]}" "$pkg" >"$work/baseline.log" 2>&1; then
    tail -30 "$work/baseline.log"
    echo "mutation: the guarding tests fail unmutated: fix them first" >&2
    exit 1
  fi
done

results=()
missed=0
for m in "${selected[@]}"; do
  split "$m"
  src=$root/$file
  n=$(grep -cxF -- "$from" "$src" || true)
  if [ "$n" != 1 ]; then
    echo "mutation $name: the line to mutate occurs $n times in $file (want once): update this table" >&2
    exit 2
  fi
  mutated=$work/$name.go
  # Replace the one line (literal match of the whole line).
  awk -v from="$from" -v to="$to" '$0 == from { print to; next } { print }' "$src" >"$mutated"
  printf '{"Replace":{"%s":"%s"}}\n' "$src" "$mutated" >"$work/$name.json"
  start=$SECONDS
  if $GO test -count=1 -timeout 20m -overlay "$work/$name.json" -run "$run" "$pkg" >"$work/$name.log" 2>&1; then
    verdict=MISSED; missed=$((missed + 1))
  elif grep -q -- '--- FAIL' "$work/$name.log"; then
    verdict=CAUGHT
  else
    tail -20 "$work/$name.log"
    echo "mutation $name: the build or run failed without a test failing: fix the mutation" >&2
    exit 2
  fi
  failed=$(grep -o -- '--- FAIL: [^ ]*' "$work/$name.log" | sed 's/--- FAIL: //' | grep -v / | sort -u | paste -sd, -)
  results+=("$(printf '%-30s %-7s %s: "%s" -> "%s" (%ds; failing: %s)' "$name" "$verdict" "$file" "${from//$'\t'/}" "${to//$'\t'/}" $((SECONDS - start)) "${failed:-none}")")
  echo "${results[-1]}"
done
echo "mutation: ${#selected[@]} mutations, $missed missed"
[ "$missed" -eq 0 ]
