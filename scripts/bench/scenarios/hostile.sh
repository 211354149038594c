# shellcheck shell=bash
# hostile: what a stranger can do to one relay's memory and availability
# (issue 11), measured on loopback. relayd only. Three parts, each with a
# fresh relay:
#
#   hostile-reports  HOSTILE_REPORTS concurrent POST /-/report of
#                    HOSTILE_REPORT_MIB MiB each (~310k tiny child entries
#                    per 8 MiB) to a proxy relay; rise_mib = VmHWM during
#                    the flood (reset first) − VmRSS before; after_mib =
#                    VmRSS once it is over; statuses tallied. Target: rise
#                    ≤ 50 MiB, every report refused with 4xx. Without a
#                    credential ("unauth"); with --tree-key-file ("auth")
#                    when this relayd has it and the hostile helper can sign.
#   hostile-catalog  evilrelay (test/hostile/evilrelay) answers /-/tuf/timestamp.json
#                    with a body that never ends; peak RSS over
#                    HOSTILE_CATALOG_SECS of a --root proxy following it
#                    ("relay") and of `relayd fetch` reading it ("agent"),
#                    both with --catalog-max HOSTILE_CATALOG_MAX where they
#                    have the flag. Target: rise ≤ cap + 32 MiB.
#   hostile-streams  HOSTILE_STREAMS idle GET /-/events streams from
#                    127.0.0.2-4 against a relay started under
#                    prlimit --nofile=HOSTILE_NOFILE; /-/healthz and admin
#                    /v1/status probed on a new connection every 50 ms
#                    while they are opened and held (HOSTILE_HOLD_SECS):
#                    p50/p99/max ms and failures (2 s timeout); then the
#                    status a late stream from 127.0.0.1 gets. Target:
#                    healthz and status within 100 ms throughout.
#
# Needs prlimit (util-linux). The streams are opened by as many helper
# processes as the hard fd limit (ulimit -Hn) needs.

HOSTILE_PORT="${HOSTILE_PORT:-19540}" # origin; relay +1 (admin +2); evilrelay +3
HOSTILE_REPORTS="${HOSTILE_REPORTS:-10}"
HOSTILE_REPORT_MIB="${HOSTILE_REPORT_MIB:-8}"
HOSTILE_CATALOG_SECS="${HOSTILE_CATALOG_SECS:-20}"
HOSTILE_CATALOG_MAX="${HOSTILE_CATALOG_MAX:-64MiB}"
HOSTILE_STREAMS="${HOSTILE_STREAMS:-30000}"
HOSTILE_NOFILE="${HOSTILE_NOFILE:-20000}"
HOSTILE_HOLD_SECS="${HOSTILE_HOLD_SECS:-10}"
HOSTILE_PARTS="${HOSTILE_PARTS:-reports catalog streams}" # which parts, in this order

hostile_stop() {
	local k
	stop_client
	halt hostile-probe
	for k in "${!PIDS[@]}"; do [[ $k == hostile-streams-* ]] && halt "$k"; done
	halt hostile-agent
	halt hostile-relay
	halt hostile-evil
	halt hostile-origin
}

# has_flag SUBCOMMAND FLAG: `relayd SUBCOMMAND --help` lists --FLAG.
has_flag() {
	local help
	help="$("$RELAYD_BIN" "$1" --help 2>&1 || true)"
	grep -qE -- "^ +--?$2( |\$)" <<<"$help"
}

# hostile_relay ARGS...: start the relay under test (content HOSTILE_PORT+1,
# admin +2) with `prlimit --nofile=$HOSTILE_RELAY_NOFILE` when that is set.
hostile_relay() {
	local port=$((HOSTILE_PORT + 1)) args pre=()
	args=(serve --mode proxy --node hostile --group hostile --data-dir "$STATE/hostile/relay"
		--listen "127.0.0.1:$port" --admin "127.0.0.1:$((HOSTILE_PORT + 2))" --gossip= --log-level warn "$@")
	rm -rf "$STATE/hostile/relay" && mkdir -p "$STATE/hostile/relay"
	[[ -n ${HOSTILE_RELAY_NOFILE:-} ]] && pre=(prlimit "--nofile=$HOSTILE_RELAY_NOFILE:$HOSTILE_RELAY_NOFILE" --)
	echo "--- $(date +%T) ${pre[*]} $RELAYD_BIN ${args[*]}" >>"$LOGS/hostile-relay.log"
	spawn hostile-relay "$LOGS/hostile-relay.log" "${pre[@]}" "$RELAYD_BIN" "${args[@]}"
	if ! wait_http hostile-relay "http://127.0.0.1:$port/-/healthz" 30; then
		warn "hostile relay did not start; last lines of $LOGS/hostile-relay.log:"
		tail -n 8 "$LOGS/hostile-relay.log" >&2 || true
		halt hostile-relay
		return 1
	fi
	HOSTILE_RELAY_CMD="${pre[*]}${pre[*]:+ }$RELAYD_BIN ${args[*]}"
}

# hostile_setup: a small published tree, its relayd origin, evilrelay.
hostile_setup() {
	local d="$STATE/hostile" i
	rm -rf "$d" && mkdir -p "$d/tree/security" "$d/origin"
	for ((i = 1; i <= 10; i++)); do head -c $((4096 * i)) /dev/urandom >"$d/tree/security/kb-$i.patch"; done
	tuf_init "$d/keys" "$d/tree" &&
		"$RELAYD_BIN" publish "$d/tree" --keys "$d/keys" >/dev/null || return 1
	relayd_spawn hostile-origin --healthz "$HOSTILE_PORT" serve --mode origin --node hostile-origin --group "$BENCH_ORIGIN_GROUP" \
		--root "$d/tree" --data-dir "$d/origin" --listen "127.0.0.1:$HOSTILE_PORT" --admin= --gossip= --log-level warn || return 1
	spawn hostile-evil "$LOGS/hostile-evil.log" "$BIN/evilrelay" --dir "$d/tree" --listen "127.0.0.1:$((HOSTILE_PORT + 3))" \
		--evil /-/tuf/timestamp.json=endless --endless-for "$((HOSTILE_CATALOG_SECS + 30))s"
	wait_http hostile-evil "http://127.0.0.1:$((HOSTILE_PORT + 3))/-/healthz" 10
}

scenario_hostile() {
	relayd_only hostile || return 0
	command -v prlimit >/dev/null || warn "hostile: prlimit (util-linux) is missing; hostile-streams is skipped"
	log "hostile: building evilrelay"
	(cd "$REPO_ROOT" && go build -o "$BIN/evilrelay" ./test/hostile/evilrelay) || {
		result hostile-reports relayd error=evilrelay_build_failed
		return 0
	}
	hostile_stop
	hostile_setup || {
		result hostile-reports relayd error=setup_failed
		hostile_stop
		return 0
	}
	local part
	for part in $HOSTILE_PARTS; do
		case "$part" in
		reports) hostile_reports ;;
		catalog) hostile_catalog ;;
		streams) command -v prlimit >/dev/null && hostile_streams ;;
		*) warn "hostile: unknown part '$part' (reports, catalog, streams)" ;;
		esac
	done
	hostile_stop
}

# hostile_reports: the report flood, without a credential ("unauth") and,
# when this relayd has a tree credential (--tree-key-file) and the helper
# can sign with it (-tree-key), signed but oversized ("auth"). Where there
# is a tree key, both floods go to a relay that holds it (as deployed).
hostile_reports() {
	local keydir="$STATE/hostile/treekey" key="" helper
	describe hostile-reports "$HOSTILE_REPORTS concurrent POST /-/report of $HOSTILE_REPORT_MIB MiB each (~39k tiny child entries per MiB) to a fresh proxy relay (with --tree-key-file where relayd has it): unauth without a credential; auth signed with the relay's tree key, oversized all the same. idle = VmRSS before; rise = VmHWM during the flood (reset first) − idle; after = VmRSS 2 s after the flood. Target (issue 11): rise ≤ 50 MiB, every report refused with 4xx."
	helper="$("$BIN/hostile" reports -h 2>&1 || true)"
	if has_flag serve tree-key-file && [[ $helper == *-tree-key* ]]; then
		rm -rf "$keydir"
		"$RELAYD_BIN" keygen --tree --out "$keydir" >"$LOGS/hostile-keygen.out" 2>&1 || true
		key="$keydir/tree.key" # pkg/treeauth's KeyFile
		if [[ ! -f $key ]]; then
			result hostile-reports auth error=tree_keygen_failed
			key=""
		else
			command_line hostile-reports "$RELAYD_BIN keygen --tree --out $keydir"
		fi
	else
		log "hostile reports: no tree credential in this relayd (--tree-key-file) or helper: the signed flood is skipped"
	fi
	hostile_report_flood unauth "$key" ""
	[[ -z $key ]] || hostile_report_flood auth "$key" "$key"
}

# hostile_report_flood TARGET RELAY_KEY SIGN_KEY: one fresh relay (with
# --tree-key-file RELAY_KEY if not empty), one flood (signed with SIGN_KEY
# if not empty), one RESULT row.
hostile_report_flood() {
	local target="$1" pid idle hwm after out reset=yes rargs=() hargs=()
	[[ -z $2 ]] || rargs=(--tree-key-file "$2")
	[[ -z $3 ]] || hargs=(-tree-key "$3")
	hostile_relay --upstream "http://127.0.0.1:$HOSTILE_PORT" "${rargs[@]}" || {
		result hostile-reports "$target" error=relay_start_failed
		return 0
	}
	command_line hostile-reports "$HOSTILE_RELAY_CMD"
	pid="${PIDS[hostile-relay]}"
	quiet
	echo 5 2>/dev/null >"/proc/$pid/clear_refs" || reset=no
	idle="$(mem_sum VmRSS "$pid")"
	out="$LOGS/hostile-reports-$target.out"
	client "$out" "$BIN/hostile" reports -url "http://127.0.0.1:$((HOSTILE_PORT + 1))/-/report" -c "$HOSTILE_REPORTS" \
		-size "$((HOSTILE_REPORT_MIB << 20))" "${hargs[@]}" || true
	command_line hostile-reports "$BIN/hostile reports -url http://127.0.0.1:$((HOSTILE_PORT + 1))/-/report -c $HOSTILE_REPORTS -size $((HOSTILE_REPORT_MIB << 20)) ${hargs[*]}"
	hwm="$(mem_sum VmHWM "$pid")"
	sleep 2
	after="$(mem_sum VmRSS "$pid")"
	out="$(grep -h '^REPORTS ' "$out" || echo "REPORTS failed")"
	log "hostile reports ($target): idle $idle MiB, peak $hwm MiB, after $after MiB; $out"
	result hostile-reports "$target" "reports=$HOSTILE_REPORTS mib_per_report=$HOSTILE_REPORT_MIB idle_mib=$idle peak_mib=$hwm" \
		"rise_mib=$(num 'b-a' a="$idle" b="$hwm") after_mib=$after statuses=$(kv statuses "$out") errors=$(kv errors "$out") hwm_reset=$reset"
	halt hostile-relay
}

# hostile_catalog: the endless catalog against a relay and an agent.
hostile_catalog() {
	local pid idle hwm cap=none rargs=() fargs=() i t0 agent_hwm=NA agent_status=NA evil
	evil="http://127.0.0.1:$((HOSTILE_PORT + 3))"
	describe hostile-catalog "evilrelay answers /-/tuf/timestamp.json with a body that never ends. relay: a --root proxy with it as upstream, peak = VmHWM over ${HOSTILE_CATALOG_SECS}s, idle = VmRSS of the same relay against the honest origin 2 s after it started (the baseline: against evilrelay it reads from the first instant), rise = peak − idle; agent: relayd fetch --relay evilrelay, peak = highest VmHWM seen (sampled every 0.2 s) until it gives up or ${HOSTILE_CATALOG_SECS}s. cap = --catalog-max where the command has it. Target (issue 11): rise ≤ cap + 32 MiB."
	if has_flag serve catalog-max; then
		rargs=(--catalog-max "$HOSTILE_CATALOG_MAX")
		cap="$HOSTILE_CATALOG_MAX"
	fi
	# The baseline: the same relay in front of the honest origin.
	hostile_relay --upstream "http://127.0.0.1:$HOSTILE_PORT" --root "$STATE/hostile/keys/root.json" "${rargs[@]}" || {
		result hostile-catalog relay error=relay_start_failed
		return 0
	}
	sleep 2
	idle="$(mem_sum VmRSS "${PIDS[hostile-relay]}")"
	halt hostile-relay
	hostile_relay --upstream "$evil" --root "$STATE/hostile/keys/root.json" "${rargs[@]}" || {
		result hostile-catalog relay error=relay_start_failed
		return 0
	}
	command_line hostile-catalog "$BIN/evilrelay --dir $STATE/hostile/tree --listen 127.0.0.1:$((HOSTILE_PORT + 3)) --evil /-/tuf/timestamp.json=endless"
	command_line hostile-catalog "$HOSTILE_RELAY_CMD"
	pid="${PIDS[hostile-relay]}"
	t0=$SECONDS
	while ((SECONDS - t0 < HOSTILE_CATALOG_SECS)) && alive "$pid"; do sleep 0.5; done
	hwm="$(mem_sum VmHWM "$pid")"
	alive "$pid" || warn "hostile catalog: the relay exited under the endless catalog"
	log "hostile catalog relay: idle $idle MiB, peak $hwm MiB (cap $cap)"
	result hostile-catalog relay "cap=$cap idle_mib=$idle peak_mib=$hwm rise_mib=$(num 'b-a' a="$idle" b="$hwm")" \
		"alive=$(alive "$pid" && echo yes || echo no) watched_for_s=$HOSTILE_CATALOG_SECS"
	halt hostile-relay

	has_flag fetch catalog-max && fargs=(--catalog-max "$HOSTILE_CATALOG_MAX")
	rm -rf "$STATE/hostile/agent-out"
	spawn hostile-agent "$LOGS/hostile-agent.log" "$RELAYD_BIN" fetch --relay "$evil" --root "$STATE/hostile/keys/root.json" \
		--out "$STATE/hostile/agent-out" --retry-budget "${HOSTILE_CATALOG_SECS}s" --quiet "${fargs[@]}" security/kb-1.patch
	command_line hostile-catalog "$RELAYD_BIN fetch --relay $evil --root $STATE/hostile/keys/root.json --out $STATE/hostile/agent-out --retry-budget ${HOSTILE_CATALOG_SECS}s --quiet ${fargs[*]} security/kb-1.patch"
	pid="${PIDS[hostile-agent]}"
	for ((i = 0; i < HOSTILE_CATALOG_SECS * 5; i++)); do
		alive "$pid" || break
		hwm="$(mem_sum VmHWM "$pid")"
		if [[ $agent_hwm == NA ]] || ((hwm > agent_hwm)); then agent_hwm=$hwm; fi
		sleep 0.2
	done
	if alive "$pid"; then
		agent_status=still_reading
	else
		agent_status=0
		wait "$pid" 2>/dev/null || agent_status=$?
	fi
	halt hostile-agent
	log "hostile catalog agent: peak $agent_hwm MiB, exit $agent_status"
	result hostile-catalog agent "cap=$(((${#fargs[@]})) && echo "$HOSTILE_CATALOG_MAX" || echo none) peak_mib=$agent_hwm exit_status=$agent_status"
}

# hostile_streams: the idle stream flood under an fd limit, with probes.
# The streams are opened by as many `hostile streams` processes as the
# hard fd limit needs (each holds at most that many), all at once; a
# `hostile probe` runs from before the flood until the streams have been
# held HOSTILE_HOLD_SECS; then `hostile late` opens one more stream from
# 127.0.0.1 and everything is let go.
hostile_streams() {
	local HOSTILE_RELAY_NOFILE="$HOSTILE_NOFILE" url admin hard per procs k n i t0 opened probe late sum pids=()
	describe hostile-streams "$HOSTILE_STREAMS idle GET /-/events streams (never read) from 127.0.0.2, .3 and .4 against a proxy relay started under prlimit --nofile=$HOSTILE_NOFILE; GET /-/healthz and admin GET /v1/status on a new connection every 50 ms from before the flood until the streams have been held ${HOSTILE_HOLD_SECS}s: p50/p99/max ms and fail (errors or over 2 s) over all probes, and *_hold_* over those made while every stream was open and held (the flood itself shares the 2 cores with the relay); late_stream_status = what one more stream from 127.0.0.1 gets then (200: a legitimate agent still gets in). Target (issue 11): healthz and status within 100 ms throughout."
	# The stream budget (--events-max, --events-per-addr), where this relayd
	# has it, at its defaults: what an operator gets without tuning.
	has_flag serve events-max || log "hostile streams: this relayd has no --events-max (no stream budget)"
	hostile_relay --upstream "http://127.0.0.1:$HOSTILE_PORT" || {
		result hostile-streams relayd error=relay_start_failed
		return 0
	}
	command_line hostile-streams "$HOSTILE_RELAY_CMD"
	url="http://127.0.0.1:$((HOSTILE_PORT + 1))"
	admin="http://127.0.0.1:$((HOSTILE_PORT + 2))"
	hard="$(ulimit -Hn)"
	[[ $hard == unlimited ]] && hard=1048576
	per=$((hard - 1024))
	procs=$(((HOSTILE_STREAMS + per - 1) / per))
	quiet
	spawn hostile-probe "$LOGS/hostile-probe.out" "$BIN/hostile" probe -url "$url" -admin "$admin"
	command_line hostile-streams "$BIN/hostile probe -url $url -admin $admin   # until the streams have been held ${HOSTILE_HOLD_SECS}s"
	for ((k = 0; k < procs; k++)); do
		n=$(((HOSTILE_STREAMS - k * HOSTILE_STREAMS / procs) - (HOSTILE_STREAMS - (k + 1) * HOSTILE_STREAMS / procs)))
		: >"$LOGS/hostile-streams-$k.out"
		spawn "hostile-streams-$k" "$LOGS/hostile-streams-$k.out" "$BIN/hostile" streams -url "$url" -n "$n"
		pids+=("hostile-streams-$k")
		command_line hostile-streams "$BIN/hostile streams -url $url -n $n   # $procs of these at once (hard fd limit $hard)"
	done
	# Wait until every flooder has opened what it could (bounded).
	t0=$SECONDS
	while :; do
		opened=0
		for ((k = 0; k < procs; k++)); do grep -q '^OPENED ' "$LOGS/hostile-streams-$k.out" && opened=$((opened + 1)); done
		((opened == procs)) && break
		if ((SECONDS - t0 > 600)); then
			warn "hostile streams: the flood did not end within 600 s"
			break
		fi
		sleep 0.5
	done
	log "hostile streams: opened after $((SECONDS - t0)) s; holding ${HOSTILE_HOLD_SECS}s"
	kill -USR1 "${PIDS[hostile-probe]}" 2>/dev/null || true # the probes from now on are the hold's
	sleep "$HOSTILE_HOLD_SECS"
	late="$("$BIN/hostile" late -url "$url" 2>>"$LOGS/hostile-late.err" || echo "LATE status=NA")"
	command_line hostile-streams "$BIN/hostile late -url $url   # after the hold, before the streams are let go"
	halt hostile-probe
	for k in "${pids[@]}"; do halt "$k"; done
	sum="$(cat "$LOGS"/hostile-streams-*.out | awk '/^OPENED / {
		for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == "open_secs") { if (kv[2] > s) s = kv[2] } else v[kv[1]] += kv[2] }
	} END { printf "tried=%d ok=%d refused=%d other=%d dial_errors=%d open_secs=%s", v["tried"], v["ok"], v["refused"], v["other"], v["dial_errors"], s }')"
	probe="$(grep -h '^PROBE ' "$LOGS/hostile-probe.out" || echo "PROBE failed")"
	log "hostile streams: $sum; $probe; $late"
	result hostile-streams relayd "nofile=$HOSTILE_NOFILE flooders=$procs $sum ${probe#PROBE } late_stream_status=$(kv status "$late")" \
		"alive=$(alive "${PIDS[hostile-relay]}" && echo yes || echo no)"
	halt hostile-relay
}
