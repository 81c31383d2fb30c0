#!/usr/bin/env bash
# stress.sh: the body of `make stress`, run by scripts/with-minio.sh.
#
# The reliability and fault suites at full scale (TIERKV_STRESS=1: hundreds of
# kill -9s, thousands of corruptions, 1,000 snapshots under 10% faults, 1,000
# fencing races), then every fuzz target for FUZZTIME (default 30s) each.
# Every step runs even if an earlier one failed; the exit status is non-zero
# if any failed. Counts are printed by the tests (-v, filtered).
set -uo pipefail

GO=${GO:-go}
FUZZTIME=${FUZZTIME:-30s}
cd "$(dirname "$0")/.."
status=0

echo "== reliability and faults at stress scale"
TIERKV_STRESS=1 $GO test -count=1 -v -timeout 60m ./reliability/... ./faults/... 2>&1 |
	grep -Ev '^(=== (RUN|PAUSE|CONT|NAME)|    --- PASS|        --- PASS)'
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

echo "== fuzzing, $FUZZTIME per target"
# Every Fuzz function of the main module, found by name so new targets join.
while read -r file; do
	pkg=./$(dirname "$file")
	for target in $(grep -oE '^func Fuzz[A-Za-z0-9_]+' "$file" | sed 's/^func //'); do
		echo "-- $pkg $target"
		$GO test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" -parallel 2 "$pkg" 2>&1 | tail -3
		[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
	done
done < <(git ls-files '*_test.go' | xargs grep -l '^func Fuzz' | grep -v '^bench/')
exit $status
