#!/usr/bin/env bash
# with-minio.sh: run a command with a private, throw-away MinIO server.
#
#   scripts/with-minio.sh CMD [ARGS...]
#
# It installs the pinned MinIO server into a cache directory outside the
# repository when it is missing (go install from the Go module proxy), starts
# it on 127.0.0.1 on a free port with a temporary data directory and freshly
# generated credentials, waits until /minio/health/live answers, runs CMD with
# these variables set, and stops the server afterwards, also when CMD fails or
# the script is interrupted. The exit status is CMD's.
#
#   TIERKV_TEST_MINIO_ENDPOINT    127.0.0.1:PORT (plain HTTP)
#   TIERKV_TEST_MINIO_ACCESS_KEY  generated access key
#   TIERKV_TEST_MINIO_SECRET_KEY  generated secret key
#   TIERKV_TEST_MINIO_BUCKET      "tierkv", an empty bucket created at start
#   TIERKV_TEST_REQUIRE_MINIO=1   tests fail instead of skipping without MinIO
#   AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION=us-east-1,
#   MINIO_ACCESS_KEY, MINIO_SECRET_KEY   the same credentials, for SDK defaults
#
# Settings (environment):
#   GO                       the go command (default: go on PATH, else /usr/local/go/bin/go)
#   TIERKV_CACHE             cache directory (default: ${XDG_CACHE_HOME:-$HOME/.cache}/tierkv)
#   TIERKV_MINIO_VERSION     module version of github.com/minio/minio to install
#   TIERKV_MINIO_BIN         use this minio binary instead of installing one
#   TIERKV_MINIO_START_TIMEOUT  seconds to wait for the server to become healthy (default 60)
#
# The secret key is never printed; the server log (shown on a failed start)
# has it replaced by [REDACTED].
set -euo pipefail

die() {
	printf 'with-minio: %s\n' "$*" >&2
	exit 1
}

[ $# -gt 0 ] || die "no command given: usage: scripts/with-minio.sh CMD [ARGS...]"

minio_version=${TIERKV_MINIO_VERSION:-v0.0.0-20260212201848-7aac2a2c5b7c}
cache=${TIERKV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tierkv}
start_timeout=${TIERKV_MINIO_START_TIMEOUT:-60}

# The go command: $GO, then go on PATH, then the standard install location.
if [ -z "${GO:-}" ]; then
	if command -v go >/dev/null 2>&1; then
		GO=$(command -v go)
	elif [ -x /usr/local/go/bin/go ]; then
		GO=/usr/local/go/bin/go
	else
		die "no go command found: install Go 1.26 or set GO=/path/to/go"
	fi
fi
if [[ "$GO" == */* ]]; then
	# Make the same toolchain visible to CMD (tests that run "go" themselves).
	PATH="$(cd "$(dirname "$GO")" && pwd):$PATH"
	export PATH
fi

# installed_version prints the module version a minio binary was built from.
installed_version() {
	"$GO" version -m "$1" 2>/dev/null | awk '$1 == "mod" && $2 == "github.com/minio/minio" { print $3; exit }'
}

install_minio() {
	local bin=$cache/bin/minio
	mkdir -p "$cache/bin"
	# One build at a time per cache directory: a second caller waits for the
	# first build instead of starting its own (it takes minutes).
	exec 9>"$cache/bin/.minio-install.lock"
	if command -v flock >/dev/null 2>&1; then
		flock 9
	fi
	if [ -x "$bin" ] && [ "$(installed_version "$bin")" = "$minio_version" ]; then
		exec 9>&-
		return
	fi
	printf 'with-minio: installing MinIO %s into %s (first run only; takes a few minutes)\n' "$minio_version" "$cache/bin" >&2
	if ! GOBIN="$cache/bin" "$GO" install "github.com/minio/minio@$minio_version" >"$cache/minio-install.log" 2>&1; then
		tail -n 20 "$cache/minio-install.log" >&2
		die "go install github.com/minio/minio@$minio_version failed (log: $cache/minio-install.log): check network access to the Go module proxy"
	fi
	exec 9>&-
}

if [ -n "${TIERKV_MINIO_BIN:-}" ]; then
	minio_bin=$TIERKV_MINIO_BIN
	[ -x "$minio_bin" ] || die "TIERKV_MINIO_BIN=$minio_bin is not an executable file"
else
	install_minio
	minio_bin=$cache/bin/minio
fi

# random_hex N prints N random bytes as 2N hex digits.
random_hex() {
	od -An -N "$1" -tx1 /dev/urandom | tr -d ' \n'
}

bucket=tierkv
access_key=tierkv$(random_hex 8)
secret_key=$(random_hex 24)

workdir=$(mktemp -d "${TMPDIR:-/tmp}/tierkv-minio.XXXXXX")
server_log=$workdir/minio.log
server_pid=
cmd_pid=

cleanup() {
	if [ -n "$cmd_pid" ] && kill -0 "$cmd_pid" 2>/dev/null; then
		kill -TERM "$cmd_pid" 2>/dev/null || true
		wait "$cmd_pid" 2>/dev/null || true
	fi
	if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
		kill -TERM "$server_pid" 2>/dev/null || true
		# Give it a few seconds to shut down cleanly, then insist.
		for _ in $(seq 1 50); do
			kill -0 "$server_pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
	rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# show_log prints the tail of the server log with the secret removed.
show_log() {
	printf 'with-minio: last lines of the server log:\n' >&2
	tail -n 30 "$server_log" 2>/dev/null | sed "s/$secret_key/[REDACTED]/g" >&2 || true
}

# port_free PORT succeeds when nothing accepts connections on 127.0.0.1:PORT.
port_free() {
	! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# pick_port prints a port in 20000..59999 that is free right now.
pick_port() {
	local p
	for _ in $(seq 1 100); do
		p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
		if port_free "$p"; then
			echo "$p"
			return
		fi
	done
	die "found no free TCP port on 127.0.0.1"
}

# healthy PORT succeeds when GET /minio/health/live answers 200.
healthy() {
	local status
	(
		exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
		printf 'GET /minio/health/live HTTP/1.0\r\nHost: 127.0.0.1:%s\r\n\r\n' "$1" >&3
		IFS= read -r -t 2 status <&3 || exit 1
		case "$status" in
		"HTTP/1."[01]" 200"*) exit 0 ;;
		esac
		exit 1
	) 2>/dev/null
}

# start_server tries once to start MinIO on a fresh pair of ports. It returns
# 0 once healthy, 2 when the server exited early (for example because another
# process took the port meanwhile), and exits on a timeout.
start_server() {
	port=$(pick_port)
	console_port=$(pick_port)
	[ "$port" != "$console_port" ] || return 2
	rm -rf "$workdir/data"
	# A top-level directory of a fresh single-drive data directory is a
	# bucket: this pre-creates the bucket "tierkv" without a client.
	mkdir -p "$workdir/data/$bucket"
	MINIO_ROOT_USER=$access_key MINIO_ROOT_PASSWORD=$secret_key \
		MINIO_BROWSER=off MINIO_UPDATE=off MINIO_CI_CD=1 \
		"$minio_bin" server --quiet --address "127.0.0.1:$port" \
		--console-address "127.0.0.1:$console_port" "$workdir/data" >"$server_log" 2>&1 &
	server_pid=$!
	local deadline=$((SECONDS + start_timeout))
	while ((SECONDS < deadline)); do
		if ! kill -0 "$server_pid" 2>/dev/null; then
			wait "$server_pid" 2>/dev/null || true
			server_pid=
			return 2
		fi
		if healthy "$port"; then
			return 0
		fi
		sleep 0.1
	done
	show_log
	die "MinIO did not become healthy on 127.0.0.1:$port within ${start_timeout}s: raise TIERKV_MINIO_START_TIMEOUT or check the log above"
}

started=0
for _ in 1 2 3 4 5; do
	rc=0
	start_server || rc=$?
	if [ "$rc" -eq 0 ]; then
		started=1
		break
	fi
done
if [ "$started" -ne 1 ]; then
	show_log
	die "MinIO ($minio_bin) exited during start-up five times: see the log above"
fi
printf 'with-minio: MinIO ready on 127.0.0.1:%s (pid %s, data %s)\n' "$port" "$server_pid" "$workdir/data" >&2

export TIERKV_TEST_MINIO_ENDPOINT=127.0.0.1:$port
export TIERKV_TEST_MINIO_ACCESS_KEY=$access_key
export TIERKV_TEST_MINIO_SECRET_KEY=$secret_key
export TIERKV_TEST_MINIO_BUCKET=$bucket
export TIERKV_TEST_REQUIRE_MINIO=1
export AWS_ACCESS_KEY_ID=$access_key
export AWS_SECRET_ACCESS_KEY=$secret_key
export AWS_REGION=us-east-1
export MINIO_ACCESS_KEY=$access_key
export MINIO_SECRET_KEY=$secret_key

# Run CMD in the background and wait for it, so that the INT/TERM traps run
# (and stop the server) while it is still running. The explicit <&0 keeps
# the caller's standard input (a background job would get /dev/null).
"$@" <&0 &
cmd_pid=$!
rc=0
wait "$cmd_pid" || rc=$?
cmd_pid=
exit "$rc"
