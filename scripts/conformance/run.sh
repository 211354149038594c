#!/usr/bin/env bash
# run.sh (make conformance): the HTTP caching conformance suite
# (http-tests/cache-tests, the suite behind cache-tests.fyi) against relayd in
# proxy mode and, in the same job, squid, varnish and nginx configured as the
# suite's docker harness runs them. Everything listens on 127.0.0.1; the
# suite's origin server sits behind each cache, so its PUT /config and
# GET /state requests go through the cache under test, as the suite intends.
#
# Writes results/conformance-<date>.json and .md in the repository and prints
# the summary. See docs/conformance.md.
set -euo pipefail

DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$DIR/../.." && pwd)"
WORK="$(realpath -m "${CONFORMANCE_WORK:-${TMPDIR:-/tmp}/relayd-conformance}")"
case "$WORK/" in "$(realpath -m "$REPO_ROOT")"/*) echo "CONFORMANCE_WORK=$WORK is inside the repository" >&2; exit 1 ;; esac
RUN="$WORK/run" LOGS="$WORK/logs" STATE="$WORK/state" CONF="$WORK/conf" RAW="$WORK/raw"

IMPLS="${IMPLS:-relayd squid varnish nginx}"
RELAYD_BIN="${RELAYD_BIN:-$REPO_ROOT/bin/relayd}"
# The suite: a checkout (CACHE_TESTS_DIR, e.g. a clone of http-tests/cache-tests,
# its dependencies installed from npm here) or else the npm package.
CACHE_TESTS_DIR="${CACHE_TESTS_DIR:-}"
CACHE_TESTS_VERSION="${CACHE_TESTS_VERSION:-0.4.5}"
IMPL_TIMEOUT="${IMPL_TIMEOUT:-180}" # seconds for one implementation's whole run
# DIRECT_SETUP=1: a diagnostic, not the figures of record: the suite's
# PUT /config and GET /state go to its origin directly (direct-setup.mjs).
DIRECT_SETUP="${DIRECT_SETUP:-0}"

BASE_PORT="${CONFORMANCE_PORT:-19600}"
ORIGIN_PORT=$BASE_PORT
RELAYD_PORT=$((BASE_PORT + 1))
SQUID_PORT=$((BASE_PORT + 2))
VARNISH_PORT=$((BASE_PORT + 3))
NGINX_PORT=$((BASE_PORT + 4))

shopt -u patsub_replacement 2>/dev/null || true
log() { printf '%s %s\n' "$(date -u +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# render TEMPLATE OUT: {{NAME}} -> $NAME; an unset NAME is an error.
render() {
	local text name
	text="$(<"$1")"
	for name in $(grep -o '{{[A-Z_]*}}' "$1" | tr -d '{}' | sort -u); do
		[[ -v $name ]] || die "render $1: $name is not set"
		text="${text//"{{$name}}"/${!name}}"
	done
	printf '%s\n' "$text" >"$2"
}

# ------------------------------------------------------------ processes ---
declare -A PIDS=()
alive() { [[ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" =~ ^[^Z]$ ]]; }
spawn() { # spawn NAME CMD...: a server in the foreground of a background job
	local name="$1"
	shift
	"$@" >>"$LOGS/$name.log" 2>&1 </dev/null &
	PIDS[$name]=$!
	echo "$!" >"$RUN/$name.pid"
}
halt() { # halt NAME: SIGTERM, 10 s grace, SIGKILL; reap
	local name="$1" pid i
	pid="${PIDS[$name]:-}"
	[[ -n $pid ]] || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do alive "$pid" || break; sleep 0.1; done
	alive "$pid" && kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null || true
	unset "PIDS[$name]"
	rm -f "$RUN/$name.pid"
}
halt_all() { local n; for n in "${!PIDS[@]}"; do halt "$n"; done; }
# A run killed hard leaves PID files: stop only those processes whose command
# line names this job's work directory.
reap_stale() {
	local f pid
	for f in "$RUN"/*.pid; do
		[[ -e $f ]] || continue
		pid="$(<"$f")"
		if [[ $pid =~ ^[0-9]+$ ]] && alive "$pid" && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$WORK"; then
			log "stopping $(basename "$f" .pid) (pid $pid) left over from an earlier run"
			kill -TERM "$pid" 2>/dev/null || true
		fi
		rm -f "$f"
	done
}
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_listen() { # NAME PORT SECS
	local i
	for ((i = 0; i < $3 * 10; i++)); do
		listening "$2" && return 0
		alive "${PIDS[$1]}" || return 1
		sleep 0.1
	done
	return 1
}

# ------------------------------------------------------------ installing ---
need_apt=()
command -v node >/dev/null && command -v npm >/dev/null || need_apt+=(nodejs npm)
for impl in $IMPLS; do
	case $impl in
	squid) command -v squid >/dev/null || need_apt+=(squid) ;;
	varnish) command -v varnishd >/dev/null || need_apt+=(varnish) ;;
	nginx) command -v nginx >/dev/null || need_apt+=(nginx) ;;
	relayd) [[ -x $RELAYD_BIN ]] || die "no relayd at $RELAYD_BIN (make build)" ;;
	*) die "unknown implementation $impl (relayd squid varnish nginx)" ;;
	esac
done
if ((${#need_apt[@]})); then
	log "installing ${need_apt[*]} (apt-get)"
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

mkdir -p "$RUN" "$LOGS" "$CONF" "$RAW"
reap_stale
rm -rf "$STATE" "$RAW"/* "$LOGS"/*
mkdir -p "$STATE"
trap 'halt_all' EXIT
trap 'exit 130' INT TERM

if [[ -n $CACHE_TESTS_DIR ]]; then
	SUITE="$(realpath "$CACHE_TESTS_DIR")"
	[[ -f $SUITE/tests/index.mjs ]] || die "CACHE_TESTS_DIR=$SUITE is not a cache-tests checkout"
	if [[ ! -d $SUITE/node_modules/undici && ! -d $SUITE/node_modules/node-fetch ]]; then
		log "installing the suite's dependencies from npm into $SUITE"
		(cd "$SUITE" && npm install --omit=dev --no-audit --no-fund --silent) || die "npm install in $SUITE failed"
	fi
	SUITE_NAME="cache-tests $(git -C "$SUITE" describe --always --dirty 2>/dev/null || echo checkout)"
else
	NPM_DIR="$WORK/npm"
	SUITE="$NPM_DIR/node_modules/http-cache-tests"
	if [[ "$(node -p "require('$SUITE/package.json').version" 2>/dev/null)" != "$CACHE_TESTS_VERSION" ]]; then
		log "installing http-cache-tests@$CACHE_TESTS_VERSION from npm into $NPM_DIR"
		mkdir -p "$NPM_DIR"
		echo '{"name":"relayd-conformance","private":true}' >"$NPM_DIR/package.json"
		(cd "$NPM_DIR" && npm install --no-audit --no-fund --silent "http-cache-tests@$CACHE_TESTS_VERSION") ||
			die "npm install http-cache-tests@$CACHE_TESTS_VERSION failed"
	fi
	SUITE_NAME="http-cache-tests@$CACHE_TESTS_VERSION (npm)"
fi
if [[ -f $SUITE/test-engine/cli.mjs ]]; then ENGINE="$SUITE/test-engine"; else ENGINE="$SUITE"; fi
CLI_FLAGS=(--no-warnings)
if [[ $DIRECT_SETUP == 1 ]]; then
	[[ $ENGINE == "$SUITE/test-engine" ]] || die "DIRECT_SETUP=1 needs the current suite (CACHE_TESTS_DIR)"
	CLI_FLAGS+=(--import "file://$DIR/direct-setup.mjs")
	SUITE_NAME+=", DIAGNOSTIC: setup requests sent to the origin directly (DIRECT_SETUP=1)"
fi

# ------------------------------------------------------------ servers ---
start_origin() {
	(cd "$SUITE" && exec env npm_config_protocol=http npm_config_port="$ORIGIN_PORT" \
		npm_config_pidfile="$RUN/origin-self.pid" \
		node --import "file://$DIR/loopback.mjs" "$ENGINE/server/server.mjs" "$WORK") >>"$LOGS/origin.log" 2>&1 </dev/null &
	PIDS[origin]=$!
	echo "$!" >"$RUN/origin.pid"
	wait_listen origin "$ORIGIN_PORT" 20 || die "suite origin not listening on $ORIGIN_PORT (see $LOGS/origin.log)"
}

start_impl() {
	local impl="$1"
	mkdir -p "$STATE/$impl"
	case $impl in
	relayd)
		spawn relayd "$RELAYD_BIN" serve --mode proxy --node conformance --listen "127.0.0.1:$RELAYD_PORT" \
			--upstream "http://127.0.0.1:$ORIGIN_PORT" --forward-methods --data-dir "$STATE/relayd" --gossip "" --admin ""
		PORT=$RELAYD_PORT
		;;
	squid)
		render "$DIR/conf/squid.conf.in" "$CONF/squid.conf"
		chown -R proxy:proxy "$STATE/squid" "$LOGS" 2>/dev/null || chmod 0777 "$STATE/squid" "$LOGS"
		spawn squid squid -N -f "$CONF/squid.conf"
		PORT=$SQUID_PORT
		;;
	varnish)
		render "$DIR/conf/varnish.vcl.in" "$CONF/varnish.vcl"
		spawn varnish varnishd -F -n "$STATE/varnish/inst" -a "127.0.0.1:$VARNISH_PORT" -T none \
			-f "$CONF/varnish.vcl" -p default_ttl=0 -p default_grace=0 -p default_keep=3600 -s malloc,64M
		PORT=$VARNISH_PORT
		;;
	nginx)
		mkdir -p "$STATE/nginx"
		render "$DIR/conf/nginx.conf.in" "$CONF/nginx.conf"
		chown -R www-data "$STATE/nginx" 2>/dev/null || chmod 0777 "$STATE/nginx"
		spawn nginx nginx -c "$CONF/nginx.conf" -p "$STATE/nginx" -g 'daemon off;'
		PORT=$NGINX_PORT
		;;
	esac
	wait_listen "$impl" "$PORT" 30 || die "$impl not listening on $PORT (see $LOGS/$impl.log)"
}

version_of() {
	case $1 in
	relayd) "$RELAYD_BIN" --version 2>&1 | sed -n '1s/^relayd //p' ;;
	squid) squid -v | sed -n '1s/.*Version //p' ;;
	varnish) varnishd -V 2>&1 | sed -n '1s/^varnishd (varnish-\([^ ]*\).*/\1/p' ;;
	nginx) nginx -v 2>&1 | sed 's,.*nginx/,,' ;;
	esac
}

# ------------------------------------------------------------ the run ---
t0=$SECONDS
log "suite: $SUITE_NAME; work dir $WORK"
start_origin
declare -A VERSIONS=()
for impl in $IMPLS; do
	VERSIONS[$impl]="$(version_of "$impl")"
	start_impl "$impl"
	log "$impl ${VERSIONS[$impl]} on 127.0.0.1:$PORT: running the suite (at most ${IMPL_TIMEOUT}s)"
	t1=$SECONDS
	if (cd "$SUITE" && npm_config_base="http://127.0.0.1:$PORT" npm_config_id="" npm_package_config_id="" \
		CONFORMANCE_ORIGIN="http://127.0.0.1:$ORIGIN_PORT" timeout -k 5 "$IMPL_TIMEOUT" node "${CLI_FLAGS[@]}" "$ENGINE/cli.mjs") >"$RAW/$impl.json.tmp" 2>"$RAW/$impl-cli.log"; then
		mv "$RAW/$impl.json.tmp" "$RAW/$impl.json"
		log "$impl done in $((SECONDS - t1))s"
	else
		log "$impl: the suite's client failed or timed out after $((SECONDS - t1))s (see $RAW/$impl-cli.log)"
	fi
	halt "$impl"
done
halt origin

DATE="$(date -u +%Y-%m-%d)"
# The commit measured: relayd's own version (git describe of its build), else this checkout's.
COMMIT="${VERSIONS[relayd]:-$(git -C "$REPO_ROOT" describe --always --dirty 2>/dev/null || echo unknown)}"
versions_json="{"
for impl in $IMPLS; do versions_json+="\"$impl\":\"${VERSIONS[$impl]}\","; done
versions_json="${versions_json%,}}"
COMMAND="make conformance"
[[ $IMPLS == "relayd squid varnish nginx" ]] || COMMAND="IMPLS=\"$IMPLS\" $COMMAND"
[[ $DIRECT_SETUP == 1 ]] && COMMAND="DIRECT_SETUP=1 $COMMAND"
node -e '
const [date, commit, suite, seconds, versions, command] = process.argv.slice(1)
process.stdout.write(JSON.stringify({ date, time: new Date().toISOString(), commit, suite,
  command, seconds: +seconds, versions: JSON.parse(versions) }))' \
	"$DATE" "$COMMIT" "$SUITE_NAME" "$((SECONDS - t0))" "$versions_json" "$COMMAND" >"$WORK/meta.json"
OUT="${CONFORMANCE_OUT:-$REPO_ROOT/results/conformance-$DATE}"
node "$DIR/summarize.mjs" --suite "$SUITE" --raw "$RAW" --impls "$IMPLS" --meta "$WORK/meta.json" \
	--out "$OUT.json" --md "$OUT.md"
log "wrote $OUT.json and $OUT.md in $((SECONDS - t0))s"
