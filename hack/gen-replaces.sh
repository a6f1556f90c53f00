#!/usr/bin/env bash
# Regenerates the Kubernetes pin in go.mod for a Kubernetes version.
#
#   hack/gen-replaces.sh 1.37.2            print the replace block
#   hack/gen-replaces.sh 1.37.2 --write    rewrite go.mod: require k8s.io/kubernetes v<ver>,
#                                          every staging module replaced to v0.<minor>.<patch>,
#                                          then `go mod tidy`
#
# Kubernetes' own go.mod replaces each staging module with ./staging/src/k8s.io/X, so a consumer
# must pin each one itself. The list is read from that go.mod (Go module proxy or module cache).
# sample-cli-plugin and sample-controller are skipped: they are staging directories but are not
# published as modules. The left-hand side carries no version because Kubernetes requires most
# staging modules as v0.0.0.
set -euo pipefail
KV=${1:?usage: hack/gen-replaces.sh <kubernetes version, e.g. 1.37.2> [--write]}
KV=${KV#v}
SV="v0.${KV#1.}"
SKIP='sample-cli-plugin|sample-controller'
cd "$(dirname "$0")/.."

modfile=$(go mod download -json "k8s.io/kubernetes@v$KV" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
[ -n "$modfile" ] || { echo "gen-replaces: could not download k8s.io/kubernetes@v$KV's go.mod" >&2; exit 1; }

block() {
  echo "replace ("
  awk '/^replace \(/{f=1;next} f&&/^\)/{f=0} f&&/=> \.\/staging/{print $1}' "$modfile" |
    grep -v -E "$SKIP" | sort |
    while read -r m; do printf '\t%s => %s %s\n' "$m" "$m" "$SV"; done
  echo ")"
}

if [ "${2:-}" != "--write" ]; then
  block
  exit 0
fi

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
# Drop the old replace block, append the new one.
awk '/^replace \(/{skip=1;next} skip&&/^\)/{skip=0;next} !skip' go.mod > "$tmp"
block >> "$tmp"
cp "$tmp" go.mod
go mod edit -require="k8s.io/kubernetes@v$KV"
for m in $(awk '/=> \.\/staging/{print $1}' "$modfile" | grep -v -E "$SKIP"); do
  if grep -q "^[[:space:]]*$m v" go.mod; then go mod edit -require="$m@$SV"; fi
done
go mod tidy
echo "go.mod now pins Kubernetes v$KV (staging $SV)"
