#!/usr/bin/env bash
# test.sh: the body of `make test`, run by scripts/with-minio.sh so that the
# TIERKV_TEST_MINIO_* variables point at a live server.
#
#   scripts/test.sh [PKG...]     default: ./...
#
# 1. go test $TEST_FLAGS on the main module's packages except integration/;
# 2. go test $TEST_FLAGS -v on integration/ (when selected), so the output
#    shows which server and client libraries the end-to-end tests used;
# 3. go vet and go test on the bench module (its own go.mod), when all
#    packages are selected;
# 4. staticcheck on the main module (as `make lint`), when all packages are
#    selected, at TIERKV_STATICCHECK_VERSION (default v0.8.2, the Makefile's
#    STATICCHECK_VERSION) through `go run pkg@version`, so it stays out of
#    go.mod.
# Every step runs even if an earlier one failed; the exit status is non-zero
# if any failed.
set -uo pipefail

GO=${GO:-go}
TEST_FLAGS=${TEST_FLAGS:--race -count=1}
cd "$(dirname "$0")/.."

pkgs=("$@")
[ ${#pkgs[@]} -gt 0 ] || pkgs=(./...)

if ! list=$($GO list "${pkgs[@]}"); then
	echo "test.sh: go list ${pkgs[*]} failed" >&2
	exit 1
fi
mapfile -t selected <<<"$list"
if [ -z "$list" ]; then
	echo "test.sh: no packages match ${pkgs[*]}" >&2
	exit 1
fi
main=()
integration=()
for p in "${selected[@]}"; do
	case "$p" in
	*/integration) integration+=("$p") ;;
	*) main+=("$p") ;;
	esac
done

status=0
if [ ${#main[@]} -gt 0 ]; then
	# shellcheck disable=SC2086
	$GO test $TEST_FLAGS "${main[@]}" || status=1
fi
if [ ${#integration[@]} -gt 0 ]; then
	# shellcheck disable=SC2086
	$GO test $TEST_FLAGS -v "${integration[@]}" 2>&1 | grep -Ev '^(=== (RUN|PAUSE|CONT|NAME)|    --- PASS|        --- PASS)' 
	[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
fi
if [ "${pkgs[*]}" = "./..." ]; then
	(cd bench && $GO vet ./... && $GO test -count=1 ./...) || status=1
	$GO run "honnef.co/go/tools/cmd/staticcheck@${TIERKV_STATICCHECK_VERSION:-v0.8.2}" ./... || status=1
fi
exit $status
