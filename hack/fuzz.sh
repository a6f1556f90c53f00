#!/usr/bin/env bash
# make fuzz: runs each fuzz target (package:FuzzName) alone for FUZZTIME. A failing input is
# written to the package's testdata/fuzz/<FuzzName>/ and fails the run. A run that ends only with
# "context deadline exceeded" (Go's fuzz coordinator missing its own -fuzztime deadline while a
# worker is still busy; no input written) is run once more.
set -euo pipefail
go=${GO:-go}
fuzztime=${FUZZTIME:-15s}
for t in "$@"; do
	pkg=${t%%:*} name=${t##*:}
	for attempt in 1 2; do
		echo "fuzz: $name in $pkg for $fuzztime"
		out=$(mktemp)
		if $go test -run='^$' -fuzz="^$name\$" -fuzztime="$fuzztime" "$pkg" 2>&1 | tee "$out"; [ "${PIPESTATUS[0]}" -eq 0 ]; then
			rm -f "$out"
			break
		fi
		if [ "$attempt" = 1 ] && grep -q 'context deadline exceeded' "$out" && ! grep -q 'Failing input written' "$out"; then
			echo "fuzz: $name stopped on the fuzzer's own deadline with no failing input; once more"
			rm -f "$out"
			continue
		fi
		rm -f "$out"
		exit 1
	done
done
