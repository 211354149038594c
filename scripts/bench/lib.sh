# shellcheck shell=bash disable=SC2034 # variables here are used by the files that source this one
# lib.sh: settings and helpers shared by run.sh, targets.sh and scenarios/*.
# Sourced, never run. Everything generated lives under $BENCH_WORK.

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$BENCH_DIR/../.." && pwd)"
BENCH_WORK="${BENCH_WORK:-${TMPDIR:-/tmp}/relayd-bench}"
BENCH_WORK="$(realpath -m "$BENCH_WORK")" # absolute: it ends up in server configs
case "$BENCH_WORK/" in
"$(realpath -m "$REPO_ROOT")"/*)
	echo "BENCH_WORK=$BENCH_WORK is inside the repository; point it elsewhere" >&2
	exit 1
	;;
esac
BIN="$BENCH_WORK/bin"      # fetch, gendata, report, relayd (built here)
CORPUS="$BENCH_WORK/corpus" # origin document root
CONF="$BENCH_WORK/conf"     # rendered server configs
RUN="$BENCH_WORK/run"       # PID files of the servers this harness started
LOGS="$BENCH_WORK/logs"     # server logs and raw client output
STATE="$BENCH_WORK/state"   # cache directories and server scratch space

# Loopback only. A block of ports nothing else on a dev box tends to use.
ORIGIN_PORT="${ORIGIN_PORT:-19480}"
NGINX_PORT="${NGINX_PORT:-19481}"
VARNISH_PORT="${VARNISH_PORT:-19482}"
RELAYD_PORT="${RELAYD_PORT:-19484}" # admin API on RELAYD_PORT+1
ORIGIN_URL="http://127.0.0.1:$ORIGIN_PORT"
# The relayd origins of the publish/mirror/group scenarios run in a group of
# their own. Since the loop guard (X-Relay-Path), a relay refuses with 508
# any request that has crossed its own group, and an origin and a relay
# both left in the default group ("default") refuse every object.
BENCH_ORIGIN_GROUP="${BENCH_ORIGIN_GROUP:-bench-origin}"

SLOW_RATE="${SLOW_RATE:-50000000}" # bytes/s per connection under /slow/
QUIET_PCT="${QUIET_PCT:-10}"       # "quiet" = machine CPU busy below this %
QUIET_WAIT="${QUIET_WAIT:-60}"     # give up waiting for quiet after this many s

NGINX_BIN="${NGINX_BIN:-$(command -v nginx || echo /usr/sbin/nginx)}"
VARNISHD_BIN="${VARNISHD_BIN:-$(command -v varnishd || echo /usr/sbin/varnishd)}"

# Values with '&' must not turn into "the matched text" in ${x//a/b}.
shopt -u patsub_replacement 2>/dev/null || true

log() { printf '%s %s\n' "$(date +%T)" "$*" >&2; }
warn() { log "WARNING: $*"; }
die() {
	log "ERROR: $*"
	exit 1
}

# render TEMPLATE OUT: copy TEMPLATE to OUT with each {{NAME}} replaced by
# the value of the shell variable NAME (unset variables are an error, so a
# typo cannot produce a half-configured server).
render() {
	local text name
	text="$(<"$1")"
	for name in $(grep -o '{{[A-Z_]*}}' "$1" | tr -d '{}' | sort -u); do
		[[ -v $name ]] || die "render $1: variable $name is not set"
		text="${text//"{{$name}}"/${!name}}"
	done
	printf '%s\n' "$text" >"$2"
}

# ------------------------------------------------------------ processes ---
# Servers run in the foreground of a background job, so their PID is $!.
# PIDS maps a server name to that PID; PID files in $RUN let the next run
# clean up after a run that was killed with SIGKILL.
declare -A PIDS=()

# alive PID: the process exists and is not a zombie waiting to be reaped.
alive() {
	local st
	[[ -r /proc/$1/stat ]] || return 1
	st="$(</proc/"$1"/stat)"
	st="${st##*) }"
	[[ ${st:0:1} != Z ]]
}

# spawn NAME LOGFILE CMD...: start a server in the background.
spawn() {
	local name="$1" logf="$2"
	shift 2
	"$@" >>"$logf" 2>&1 </dev/null &
	PIDS[$name]=$!
	echo "$!" >"$RUN/$name.pid"
}

# halt NAME [KILL]: SIGTERM, 10 s grace, then SIGKILL (at once with KILL);
# reap it.
halt() {
	local name="$1" pid i
	pid="${PIDS[$name]:-}"
	[[ -n $pid ]] || return 0
	[[ ${2:-} == KILL ]] && kill -KILL "$pid" 2>/dev/null
	if alive "$pid"; then
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 100; i++)); do
			alive "$pid" || break
			sleep 0.1
		done
		if alive "$pid"; then
			warn "$name (pid $pid) ignored SIGTERM; killing it"
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	wait "$pid" 2>/dev/null || true
	unset "PIDS[$name]"
	rm -f "$RUN/$name.pid"
}

halt_all() {
	local name
	for name in "${!PIDS[@]}"; do halt "$name"; done
}

# reap_stale: stop servers left behind by an earlier run that was killed
# hard. Only PIDs from our own PID files whose command line mentions
# $BENCH_WORK are touched.
reap_stale() {
	local f pid cmd
	for f in "$RUN"/*.pid; do
		[[ -e $f ]] || continue
		pid="$(<"$f")"
		cmd=""
		[[ $pid =~ ^[0-9]+$ ]] && alive "$pid" && cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
		if [[ -n $cmd && $cmd == *"$BENCH_WORK"* ]]; then
			warn "stopping $(basename "$f" .pid) (pid $pid) left over from an earlier run"
			kill -TERM "$pid" 2>/dev/null || true
			sleep 1
			if alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
		fi
		rm -f "$f"
	done
}

# listening PORT: something accepts TCP connections on 127.0.0.1:PORT.
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_listen NAME PORT SECS: until PORT accepts, or fail early if the
# server NAME exited.
wait_listen() {
	local name="$1" port="$2" i
	for ((i = 0; i < $3 * 10; i++)); do
		listening "$port" && return 0
		alive "${PIDS[$name]}" || return 1
		sleep 0.1
	done
	return 1
}

# wait_http NAME URL SECS: until URL answers 200, or NAME exited.
wait_http() {
	local name="$1" url="$2" i
	for ((i = 0; i < $3 * 10; i++)); do
		[[ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$url" || true)" == 200 ]] && return 0
		alive "${PIDS[$name]}" || return 1
		sleep 0.1
	done
	return 1
}

# child_pids PID: direct children of PID (nginx workers, varnish child).
child_pids() { ps -o pid= --ppid "$1" | tr -d ' ' || true; }

# ------------------------------------------------------------ measuring ---
# cpu_busy_pct SECS: % of all CPUs busy (not idle/iowait) during SECS.
cpu_busy_pct() {
	local t0 i0 t1 i1
	read -r t0 i0 < <(cpu_snapshot)
	sleep "$1"
	read -r t1 i1 < <(cpu_snapshot)
	echo $(((t1 - t0) > 0 ? 100 * ((t1 - t0) - (i1 - i0)) / (t1 - t0) : 0))
}
cpu_snapshot() { awk '$1 == "cpu" { t = 0; for (i = 2; i <= 9; i++) t += $i; print t, $5 + $6; exit }' /proc/stat; }

# quiet: before a timed part, wait up to QUIET_WAIT s until the machine is
# idle (our servers included), so a compile or a lingering writeback does
# not end up in the numbers. Sets BG_CPU to the last 1 s sample.
BG_CPU=NA
quiet() {
	local t0=$SECONDS
	while :; do
		BG_CPU="$(cpu_busy_pct 1)"
		((BG_CPU < QUIET_PCT)) && break
		if ((SECONDS - t0 >= QUIET_WAIT)); then
			warn "machine still ${BG_CPU}% busy after ${QUIET_WAIT}s; numbers may be disturbed"
			break
		fi
	done
	log "background CPU ${BG_CPU}% (waited $((SECONDS - t0))s)"
}

# The origin's access log counts the requests that reached it, for every
# cache alike. A mark is a line count; origin_count A [B] prints "GETs bytes"
# logged between marks A and B (B = now, after letting a fill that just
# ended reach the log).
ORIGIN_LOG="$LOGS/origin-access.log"
origin_mark() { if [[ -f $ORIGIN_LOG ]]; then wc -l <"$ORIGIN_LOG"; else echo 0; fi; }
origin_count() {
	local b="${2:-}"
	if [[ -z $b ]]; then
		sleep 0.3
		b="$(origin_mark)"
	fi
	head -n "$b" "$ORIGIN_LOG" 2>/dev/null | tail -n +"$(($1 + 1))" |
		awk '$2 == "GET" { n++; b += $5 } END { printf "%d %d\n", n, b }'
}

# kv KEY LINE: the value of KEY=... in a line of key=value fields (NA).
kv() {
	local f fields
	read -r -a fields <<<"$2"
	for f in "${fields[@]}"; do
		if [[ $f == "$1="* ]]; then
			echo "${f#*=}"
			return
		fi
	done
	echo NA
}

# num EXPR VAR=VALUE...: evaluate an awk expression over the given values
# and print it with NUM_DP (2) decimals; NA if a value is not a number or
# the expression divides by zero.
num() {
	local expr="$1" a args=()
	shift
	for a in "$@"; do
		[[ ${a#*=} =~ ^-?[0-9]+([.][0-9]+)?$ ]] || {
			echo NA
			return
		}
		args+=(-v "$a")
	done
	a="$(awk "${args[@]}" "BEGIN { printf \"%.${NUM_DP:-2}f\", $expr }" 2>/dev/null)" || a=NA
	[[ $a =~ ^-?[0-9] ]] || a=NA # mawk prints inf/nan for x/0
	echo "$a"
}

# --------------------------------------------------------------- output ---
# result SCENARIO TARGET k=v...: the one line per scenario and target, on
# stdout and appended to the run's results file.
result() {
	local line="RESULT $1 target=$2 ${*:3}"
	echo "$line"
	echo "$line" >>"$RESULTS_FILE"
}

# describe SCENARIO TEXT: a one-line description for the report.
describe() { echo "DESC $1 $2" >>"$RESULTS_FILE"; }

# ------------------------------------------------------------ scenarios ---
# client OUTFILE CMD...: run a load client (fetch, wrk) with its stdout in
# OUTFILE and its stderr appended to OUTFILE.err. It runs as a background
# job that we wait for: a trapped Ctrl-C interrupts `wait` at once, whereas
# a foreground wrk catches SIGINT itself, exits 0, and bash would then
# carry on as if nothing happened.
CLIENT_PID=""
client() {
	local out="$1" rc=0
	shift
	"$@" >"$out" 2>>"$out.err" </dev/null &
	CLIENT_PID=$!
	wait "$CLIENT_PID" || rc=$?
	CLIENT_PID=""
	return "$rc"
}

stop_client() {
	[[ -n $CLIENT_PID ]] || return 0
	kill -TERM "$CLIENT_PID" 2>/dev/null || true
	wait "$CLIENT_PID" 2>/dev/null || true
	CLIENT_PID=""
}

# wrk_line FILE: the summary line our wrk scripts print (wrk-*.lua done()).
wrk_line() { grep -h '^WRK ' "$1" || echo "WRK failed"; }

# warm URL: GET an object twice: the first GET fills the cache, the second
# should already be a hit. Logs what the cache said.
warm() {
	local out
	client "$LOGS/warm.out" "$BIN/fetch" -url "$1" -n 2 -timeout 120s || warn "warming $1 failed: $(cat "$LOGS/warm.out.err")"
	out="$(<"$LOGS/warm.out")"
	echo "$(date +%T) $1 $out" >>"$LOGS/warm.log"
	log "warmed $1 (cache: $(kv cache "$out"))"
}

# fresh SCENARIO TARGET: start TARGET with an empty cache; on failure print
# an error RESULT line so the report shows the gap, and return 1.
fresh() {
	target_fresh "$2" && return 0
	result "$1" "$2" error=start_failed
	target_stop "$2"
	return 1
}

# command_line SCENARIO CMD...: record a measured command for the report
# (shown under the scenario's table), with $BENCH_WORK abbreviated.
command_line() {
	local s="$1" line
	shift
	line="$*"
	line="${line//"$BENCH_WORK"/\$BENCH_WORK}"
	echo "CMD $s $line" >>"$RESULTS_FILE"
}

# timed NAME CMD...: run CMD like client (stdout in $LOGS/NAME.out, stderr
# in $LOGS/NAME.out.err) under `timeout TIMED_LIMIT` and set T_REAL (wall
# s), T_CPU (user+sys s of CMD and every child it waited for) and T_RC (its
# exit status; 124 = timed out). timeout runs CMD in a process group of
# its own and passes our SIGTERM on to all of it, so stopping the client
# stops a whole pipeline.
TIMED_LIMIT="${TIMED_LIMIT:-300}" # s
T_REAL=NA T_CPU=NA T_RC=0
timed() {
	local name="$1" TIMEFORMAT='%3R %3U %3S' real user sys
	shift
	T_RC=0
	{ time client "$LOGS/$name.out" timeout "$TIMED_LIMIT" "$@"; } 2>"$LOGS/$name.time" || T_RC=$?
	((T_RC != 124)) || warn "$name: $* did not end within ${TIMED_LIMIT}s"
	read -r real user sys < <(tail -n 1 "$LOGS/$name.time")
	T_REAL="$(num 'r' r="$real")"
	T_CPU="$(num 'u+s' u="$user" s="$sys")"
}

# proc_cpu PID: user+sys CPU seconds PID has used so far (NA if gone).
proc_cpu() {
	local st f
	st="$(cat "/proc/$1/stat" 2>/dev/null)" || {
		echo NA
		return
	}
	read -r -a f <<<"${st##*) }"
	num '(u+s)/t' u="${f[11]}" s="${f[12]}" t="$(getconf CLK_TCK)"
}

# now_ms: wall-clock time in ms.
now_ms() { date +%s%3N; }

# relayd_only SCENARIO: the scenario measures relayd alone; say so and
# return 1 when relayd is not among the targets.
relayd_only() {
	[[ " $TARGET_LIST " == *" relayd "* ]] && return 0
	log "$1 measures relayd only and relayd is not among the targets ($TARGET_LIST): skipping it"
	return 1
}

# relayd_spawn NAME [--healthz PORT] ARGS...: start `relayd ARGS...` as
# server NAME, its output in $LOGS/NAME.log. With --healthz, wait until
# GET http://127.0.0.1:PORT/-/healthz answers 200 (30 s) and warn if it
# listens beyond loopback.
relayd_spawn() {
	local name="$1" port=""
	shift
	if [[ $1 == --healthz ]]; then
		port="$2"
		shift 2
		if listening "$port"; then
			warn "port $port is in use by something else; cannot start $name"
			return 1
		fi
	fi
	echo "--- $(date +%T) $RELAYD_BIN $*" >>"$LOGS/$name.log"
	spawn "$name" "$LOGS/$name.log" "$RELAYD_BIN" "$@"
	[[ -n $port ]] || return 0
	if ! wait_http "$name" "http://127.0.0.1:$port/-/healthz" 30; then
		warn "$name did not become healthy on 127.0.0.1:$port; last lines of $LOGS/$name.log:"
		tail -n 8 "$LOGS/$name.log" >&2 || true
		halt "$name"
		return 1
	fi
	loopback_only "$name"
}

# relayd_log_mark LOG / relayd_requests LOG FROM [TO]: the requests a relayd
# logged (JSON, "message":"request") between two line marks, as
# "objects object_bytes catalogs catalog_statuses object_statuses": objects
# are requests for paths outside /-/, catalogs those for /-/tuf/ (metadata);
# statuses are tallied as "status:count,..." ("-": none). Other /-/ paths
# (health checks) are not counted. TO defaults to now, after letting the
# log settle.
relayd_log_mark() { if [[ -f $1 ]]; then wc -l <"$1"; else echo 0; fi; }
relayd_requests() {
	local logf="$1" from="$2" to="${3:-}"
	if [[ -z $to ]]; then
		sleep 0.3
		to="$(relayd_log_mark "$logf")"
	fi
	head -n "$to" "$logf" 2>/dev/null | tail -n +"$((from + 1))" | awk '
		function field(k, numeric,   re) {
			re = numeric ? "\"" k "\":[0-9]+" : "\"" k "\":\"[^\"]*\""
			if (!match($0, re)) return ""
			return numeric ? substr($0, RSTART + length(k) + 3, RLENGTH - length(k) - 3) \
				: substr($0, RSTART + length(k) + 4, RLENGTH - length(k) - 5)
		}
		/"message":"request"/ {
			p = field("path", 0)
			if (index(p, "/-/tuf/") == 1) { meta++; cst[field("status", 1)]++; next }
			if (substr(p, 1, 3) == "/-/") next
			n++; b += field("bytes", 1); ost[field("status", 1)]++
		}
		function tally(a,   k, s) {
			s = ""
			for (k in a) s = s (s == "" ? "" : ",") k ":" a[k]
			return s == "" ? "-" : s
		}
		END { printf "%d %d %d %s %s\n", n, b, meta, tally(cst), tally(ost) }'
}

# tuf_init KEYS TREE: a key per top-level role in KEYS (made once) and
# TREE's TUF repository (TREE/-/tuf/1.root.json, relayd tuf init), its
# trusted root copied to KEYS/root.json for relays (--root) and agents.
tuf_init() {
	local keys="$1" tree="$2" r
	mkdir -p "$tree" || return 1
	for r in root targets snapshot timestamp; do
		[[ -f $keys/$r.key ]] || "$RELAYD_BIN" keygen --role "$r" --out "$keys" >/dev/null || return 1
	done
	[[ -f $tree/-/tuf/1.root.json ]] || "$RELAYD_BIN" tuf init "$tree" --keys "$keys" >/dev/null || return 1
	cp "$tree/-/tuf/1.root.json" "$keys/root.json"
}
