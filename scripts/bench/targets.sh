# shellcheck shell=bash disable=SC2034 # variables here are used by the files that source this one
# targets.sh: the origin and the caches under test. Sourced by run.sh.
#
# A target is a name: nginx, nginx-sendfile, nginx-copy (the nginx
# proxy_cache peer with sendfile on/on/off), relayd, relayd-sendfile,
# relayd-copy (relayd plus --sendfile=true/false) or varnish. For each:
#   target_url NAME     base URL; objects are $URL/4k.bin, $URL/slow/64m.bin ...
#   target_fresh NAME   (re)start it with an empty cache: this is "purge"
#   target_stop NAME    stop it and delete its cache
#   target_pids NAME    the processes whose memory counts for the rss scenario
# Only one variant of a family runs at a time, on the family's port.

RELAYD_BIN="${RELAYD_BIN:-}"
RELAYD_ARGS="${RELAYD_ARGS:-}"
NGINX_ACCESS_LOG="${NGINX_ACCESS_LOG:-off}"
NGINX_SENDFILE_DEFAULT="${NGINX_SENDFILE:-on}" # for the plain nginx target
VARNISH_MEM="${VARNISH_MEM:-3G}"
RELAYD_SENDFILE_FLAG=unknown # set to "rejected" once relayd refuses --sendfile

family() { echo "${1%%-*}"; }

target_url() {
	case "$(family "$1")" in
	nginx) echo "http://127.0.0.1:$NGINX_PORT" ;;
	varnish) echo "http://127.0.0.1:$VARNISH_PORT" ;;
	relayd) echo "http://127.0.0.1:$RELAYD_PORT" ;;
	*) die "unknown target $1" ;;
	esac
}

# origin_start: the nginx origin (kept running for the whole run).
origin_start() {
	[[ -n ${PIDS[origin]:-} ]] && alive "${PIDS[origin]}" && return 0
	listening "$ORIGIN_PORT" && die "port $ORIGIN_PORT is in use by something else; set ORIGIN_PORT"
	mkdir -p "$STATE/origin"
	render "$BENCH_DIR/conf/origin.nginx.conf.tmpl" "$CONF/origin.conf"
	nginx_spawn origin "$CONF/origin.conf"
	wait_listen origin "$ORIGIN_PORT" 10 || die "origin nginx did not start; see $LOGS/origin-*.log"
	log "origin nginx on $ORIGIN_URL (pid ${PIDS[origin]})"
}

target_fresh() {
	target_stop "$1"
	origin_start
	case "$(family "$1")" in
	nginx) nginx_start "$1" ;;
	varnish) varnish_start ;;
	relayd) relayd_start "$1" ;;
	*) die "unknown target $1" ;;
	esac
}

target_stop() {
	local fam
	fam="$(family "$1")"
	halt "$fam"
	rm -rf "${STATE:?}/cache/$fam"
}

# target_pids NAME: relayd itself; nginx's worker processes (the master only
# forks and waits); varnish's child, which holds the storage and the threads.
target_pids() {
	local fam pid p
	fam="$(family "$1")"
	pid="${PIDS[$fam]:-}"
	[[ -n $pid ]] || return 0
	case "$fam" in
	relayd) echo "$pid" ;;
	nginx)
		for p in $(child_pids "$pid"); do
			grep -qa 'worker process' "/proc/$p/cmdline" 2>/dev/null && echo "$p"
		done
		;;
	varnish) child_pids "$pid" ;;
	esac
	return 0
}

# ----------------------------------------------------------------- nginx ---
# nginx_spawn NAME CONF: nginx in the foreground (daemon off in CONF), with
# its prefix under $STATE and, where nginx has -e (1.19.5+), its start-up
# error log in $LOGS instead of the distribution's /var/log path.
nginx_spawn() {
	local e=()
	[[ "$("$NGINX_BIN" -h 2>&1 || true)" == *"-e filename"* ]] && e=(-e "$LOGS/$1-error.log")
	spawn "$1" "$LOGS/$1-stderr.log" "$NGINX_BIN" -p "$STATE/$1/" "${e[@]}" -c "$2"
}

nginx_start() {
	# nginx-sendfile and nginx-copy force sendfile on and off (copying
	# through output_buffers); plain nginx follows NGINX_SENDFILE (on).
	case "$1" in
	nginx-sendfile) NGINX_SENDFILE=on ;;
	nginx-copy) NGINX_SENDFILE=off ;;
	*) NGINX_SENDFILE="${NGINX_SENDFILE_DEFAULT:-on}" ;;
	esac
	CACHE_DIR="$STATE/cache/nginx"
	listening "$NGINX_PORT" && die "port $NGINX_PORT is in use by something else; set NGINX_PORT"
	mkdir -p "$CACHE_DIR" "$STATE/nginx"
	render "$BENCH_DIR/conf/cache.nginx.conf.tmpl" "$CONF/nginx.conf"
	nginx_spawn nginx "$CONF/nginx.conf"
	wait_listen nginx "$NGINX_PORT" 10 || {
		warn "nginx did not start; $LOGS/nginx-error.log says:"
		tail -n 5 "$LOGS/nginx-error.log" >&2 || true
		return 1
	}
	log "$1 on $(target_url "$1") (pid ${PIDS[nginx]}, sendfile $NGINX_SENDFILE)"
}

# --------------------------------------------------------------- varnish ---
varnish_start() {
	listening "$VARNISH_PORT" && die "port $VARNISH_PORT is in use by something else; set VARNISH_PORT"
	mkdir -p "$STATE/varnish"
	render "$BENCH_DIR/conf/varnish.vcl.tmpl" "$CONF/varnish.vcl"
	# -F: stay in the foreground so we own the PID; -T none: no CLI port.
	# The storage is malloc, so a restart is a purge.
	spawn varnish "$LOGS/varnish.log" "$VARNISHD_BIN" -F -n "$STATE/varnish" \
		-a "127.0.0.1:$VARNISH_PORT" -T none -f "$CONF/varnish.vcl" \
		-s "malloc,$VARNISH_MEM" -t 604800 -p thread_pool_min=200 -p thread_pool_max=2000
	wait_listen varnish "$VARNISH_PORT" 30 || {
		warn "varnish did not start; $LOGS/varnish.log says:"
		tail -n 5 "$LOGS/varnish.log" >&2 || true
		return 1
	}
	log "varnish on $(target_url varnish) (pid ${PIDS[varnish]})"
}

# ---------------------------------------------------------------- relayd ---
# relayd_start NAME: relayd-sendfile and relayd-copy add --sendfile=true or
# --sendfile=false to RELAYD_ARGS. Ready = GET /-/healthz answers 200.
# --default-ttl 168h (7 d) is the peers' freshness for the origin's answers, which
# carry no expiry (nginx proxy_cache_valid 200 7d, varnish -t 604800):
# without it a corpus written minutes ago is fresh for seconds only by
# RFC 9111's heuristic, and relayd alone would revalidate during the run.
relayd_start() {
	local dir="$STATE/cache/relayd" args extra=()
	read -r -a extra <<<"$RELAYD_ARGS"
	case "$1" in
	relayd-sendfile) extra+=(--sendfile=true) ;;
	relayd-copy) extra+=(--sendfile=false) ;;
	esac
	listening "$RELAYD_PORT" && die "port $RELAYD_PORT is in use by something else; set RELAYD_PORT"
	mkdir -p "$dir"
	args=(serve --mode proxy --node bench --gossip= --listen "127.0.0.1:$RELAYD_PORT"
		--admin "127.0.0.1:$((RELAYD_PORT + 1))" --upstream "$ORIGIN_URL"
		--data-dir "$dir" --cache-max 20GiB --default-ttl 168h --log-level warn "${extra[@]}")
	echo "--- $(date +%T) $1: $RELAYD_BIN ${args[*]}" >>"$LOGS/relayd.log"
	spawn relayd "$LOGS/relayd.log" "$RELAYD_BIN" "${args[@]}"
	if ! wait_http relayd "$(target_url "$1")/-/healthz" 30; then
		warn "$1 did not become healthy on $(target_url "$1")/-/healthz; last lines of $LOGS/relayd.log:"
		tail -n 8 "$LOGS/relayd.log" >&2 || true
		halt relayd
		return 1
	fi
	log "$1 on $(target_url "$1") (pid ${PIDS[relayd]})"
	loopback_only relayd
}

# loopback_only NAME: warn if the server listens anywhere but 127.0.0.1
# (e.g. a gossip port on all interfaces by default).
loopback_only() {
	local pid="${PIDS[$1]}" socks
	socks="$(ss -Hlntup 2>/dev/null | grep "pid=$pid," | awk '$5 !~ /^127\.0\.0\.1:/ { print $1, $5 }' || true)"
	[[ -z $socks ]] || warn "$1 listens beyond loopback: $(tr '\n' ' ' <<<"$socks")"
}

# relayd_rejected_sendfile: the last start failed because of --sendfile.
relayd_rejected_sendfile() {
	local tail
	tail="$(tail -n 8 "$LOGS/relayd.log" 2>/dev/null || true)"
	grep -qiE 'sendfile|unknown flag|flag provided but not defined' <<<"$tail"
}
