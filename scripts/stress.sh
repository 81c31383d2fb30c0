#!/usr/bin/env bash
# stress.sh: the body of `make stress`, run by scripts/with-minio.sh.
#
# The reliability and fault suites at full scale (TIERKV_STRESS=1: hundreds of
# kill -9s, thousands of corruptions, 1,000 snapshots under 10% faults, 1,000
# fencing races), then every fuzz target for FUZZTIME (default 30s) each.
# Every step runs even if an earlier one failed; the exit status is non-zero
# if any failed. Counts are printed by the tests (-v, filtered). Each fuzz
# run's output is kept in FUZZLOGS (default: a new directory under TMPDIR).
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
# Each target's whole output goes to a log under $FUZZLOGS. A passing target
# prints its last progress line and result; a failing one prints its output
# without the progress lines (the reason: the failing input and message, or
# why the fuzzing process died, e.g. "terminated by unexpected signal" when
# the kernel killed a worker, which saves no input), the log's path and any
# crasher the run saved under testdata/fuzz.
FUZZLOGS=${FUZZLOGS:-$(mktemp -d "${TMPDIR:-/tmp}/tierkv-fuzz.XXXXXX")}
mkdir -p "$FUZZLOGS"
echo "fuzz logs: $FUZZLOGS"
# Every Fuzz function of the main module, found by name so new targets join.
while read -r file; do
	pkg=./$(dirname "$file")
	for target in $(grep -oE '^func Fuzz[A-Za-z0-9_]+' "$file" | sed 's/^func //'); do
		echo "-- $pkg $target"
		log=$FUZZLOGS/$(echo "${pkg#./}" | tr / _)_$target.log
		corpus=$(dirname "$file")/testdata/fuzz/$target
		before=$(ls "$corpus" 2>/dev/null)
		if $GO test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" -parallel 2 "$pkg" >"$log" 2>&1; then
			tail -2 "$log"
			continue
		fi
		status=1
		grep -v '^fuzz: elapsed:' "$log"
		echo "FAILED: $pkg $target; full output in $log"
		if grep -qE 'no crash will be recorded|terminated (unexpectedly|without fuzzing)' "$log"; then
			echo "hint: a fuzzing process died without a failing input (killed from outside, e.g. by the OOM killer: see dmesg); rerun: $GO test -run '^\$' -fuzz '^${target}\$' -fuzztime $FUZZTIME $pkg"
		fi
		for f in $(ls "$corpus" 2>/dev/null); do
			grep -qxF "$f" <<<"$before" || echo "crasher: $corpus/$f"
		done
	done
done < <(git ls-files '*_test.go' | xargs grep -l '^func Fuzz' | grep -v '^bench/')
exit $status
