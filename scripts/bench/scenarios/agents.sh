# shellcheck shell=bash
# agents: AGENTS_N agents hold a push stream (GET /-/events) open to one
# relay. A relayd origin serves a small published tree; one relayd proxy
# (--root, security/** mirrored) follows it; `relayd loadgen --watch`
# runs the agents in one process (each its own pkg/agent: stream, relay
# order, catalog check, sync on announcement, objects verified and
# discarded). Measured on the relay, once every agent is connected and at
# the newest generation:
#
#   rss_mib / hwm_mib   VmRSS with all streams open / VmHWM to the end
#   idle_cpu_pct        relay CPU over AGENTS_IDLE_SECS with nothing to
#                       announce (pings only), from /proc/PID/stat
#   publish_to_all_ms   from `relayd publish` returning to the last agent
#                       notified of the new generation (origin polls its
#                       catalog every 250 ms, the relay syncs, then fans out)
#   fanout_ms           first to last agent notified (the relay's fan-out)
#   updated_ms          first notification to the last agent synced
#
# Targets: RSS ≤ 400 MiB, publish_to_all_ms ≤ 2000 with 10,000 agents.

AGENTS_N="${AGENTS_N:-10000}"
AGENTS_ORIGIN_PORT="${AGENTS_ORIGIN_PORT:-19500}"
AGENTS_PORT="${AGENTS_PORT:-19501}" # admin API on AGENTS_PORT+1
AGENTS_RATE="${AGENTS_RATE:-2000}"  # agents started per second
AGENTS_IDLE_SECS="${AGENTS_IDLE_SECS:-10}"
AGENTS_WAIT="${AGENTS_WAIT:-120}" # s for every agent to connect and sync

# agents_doc FIELD: a number from the relay's GET /v1/agents.
agents_doc() {
	curl -s -m 10 "http://127.0.0.1:$((AGENTS_PORT + 1))/v1/agents" 2>/dev/null |
		head -c 4096 | grep -o "\"$1\":[0-9]*" | head -n 1 | cut -d: -f2
}

agents_stop() {
	stop_client
	halt agents-loadgen
	halt agents-relay
	halt agents-origin
	rm -rf "${STATE:?}/agents"
}

scenario_agents() {
	local dir="$STATE/agents" hard need rss hwm cpu0 cpu1 idle t0 t_pub out line last pid i gen2
	relayd_only agents || return 0
	describe agents "$AGENTS_N agents (relayd loadgen --watch, one process) hold GET /-/events open to one relayd proxy (--root, security/** mirrored) in front of a relayd origin. rss/hwm: the relay's VmRSS with every stream open and at the newest generation / VmHWM at the end; idle_cpu_pct: relay CPU over ${AGENTS_IDLE_SECS}s with nothing to announce; then one file is published: publish_to_all_ms = relayd publish returned → last agent notified (includes the origin's 250 ms catalog poll and the relay's sync); fanout_ms = first → last agent notified; updated_ms = first notification → last agent synced. Targets: RSS ≤ 400 MiB, publish_to_all_ms ≤ 2000."
	# Both the relay and the agents need a descriptor per stream.
	hard="$(ulimit -Hn)"
	need=$((AGENTS_N + 2048))
	if [[ $hard != unlimited ]] && ((hard < need)); then
		warn "agents: the hard file descriptor limit is $hard, $need needed for $AGENTS_N agents: raise it (ulimit -Hn, /etc/security/limits.conf)"
		result agents relayd "agents=$AGENTS_N error=fd_hard_limit_$hard"
		return 0
	fi
	ulimit -n "$hard"
	agents_stop
	mkdir -p "$dir/tree/security" "$dir/origin" "$dir/relay"
	# Ten patches of 1–10 KiB: the scenario measures push, not transfer.
	for ((i = 1; i <= 10; i++)); do
		head -c $((1024 * i)) "$CORPUS/1g.bin" >"$dir/tree/security/kb-$i.patch"
	done
	tuf_init "$dir/keys" "$dir/tree" || {
		result agents relayd error=tuf_init_failed
		return 0
	}
	"$RELAYD_BIN" publish "$dir/tree" --keys "$dir/keys" >/dev/null || {
		result agents relayd error=publish_failed
		return 0
	}
	local oargs rargs largs
	oargs=(serve --mode origin --node bench-agents-origin --group "$BENCH_ORIGIN_GROUP" --root "$dir/tree"
		--data-dir "$dir/origin" --listen "127.0.0.1:$AGENTS_ORIGIN_PORT" --admin= --gossip= --log-level warn)
	relayd_spawn agents-origin --healthz "$AGENTS_ORIGIN_PORT" "${oargs[@]}" || {
		result agents relayd error=origin_start_failed
		agents_stop
		return 0
	}
	rargs=(serve --mode proxy --node bench-agents --group bench-agents --upstream "http://127.0.0.1:$AGENTS_ORIGIN_PORT"
		--root "$dir/keys/root.json" --mirror-include 'security/**' --data-dir "$dir/relay"
		--listen "127.0.0.1:$AGENTS_PORT" --admin "127.0.0.1:$((AGENTS_PORT + 1))" --gossip= --log-level warn)
	relayd_spawn agents-relay --healthz "$AGENTS_PORT" "${rargs[@]}" || {
		result agents relayd error=relay_start_failed
		agents_stop
		return 0
	}
	pid="${PIDS[agents-relay]}"
	command_line agents "tuf_init $dir/keys $dir/tree (relayd keygen --role, relayd tuf init) && $RELAYD_BIN publish $dir/tree --keys $dir/keys"
	command_line agents "$RELAYD_BIN ${oargs[*]}"
	command_line agents "$RELAYD_BIN ${rargs[*]}"
	out="$LOGS/agents-loadgen.out"
	: >"$out"
	largs=(loadgen --relay "http://127.0.0.1:$AGENTS_PORT" --root "$dir/keys/root.json" --agents "$AGENTS_N"
		--duration "$((AGENTS_WAIT + AGENTS_IDLE_SECS + 60))s" --watch --stop-after-updates 1 --rate "$AGENTS_RATE" --include 'security/**')
	spawn agents-loadgen "$out" "$RELAYD_BIN" "${largs[@]}"
	command_line agents "$RELAYD_BIN ${largs[*]}"
	command_line agents "$RELAYD_BIN publish $dir/tree --keys $dir/keys   # after ${AGENTS_IDLE_SECS}s idle, one new patch"
	t0=$SECONDS
	while :; do
		if [[ "$(agents_doc at_newest)" == "$AGENTS_N" && "$(agents_doc agents)" == "$AGENTS_N" ]]; then break; fi
		if ((SECONDS - t0 >= AGENTS_WAIT)) || ! alive "${PIDS[agents-loadgen]}"; then
			warn "agents: after $((SECONDS - t0))s the relay has $(agents_doc agents) agents, $(agents_doc at_newest) at the newest generation; loadgen says: $(tail -n 3 "$out" | tr '\n' ' ')"
			result agents relayd "agents=$AGENTS_N connected=$(agents_doc agents) error=agents_did_not_connect"
			agents_stop
			return 0
		fi
		sleep 0.5
	done
	log "agents: $AGENTS_N agents connected and synced after $((SECONDS - t0))s"
	rss="$(mem_sum VmRSS "$pid")"
	cpu0="$(proc_cpu "$pid")"
	sleep "$AGENTS_IDLE_SECS"
	cpu1="$(proc_cpu "$pid")"
	idle="$(num '100*(b-a)/s' a="$cpu0" b="$cpu1" s="$AGENTS_IDLE_SECS")"
	head -c 8192 "$CORPUS/4k.bin" >"$dir/tree/security/kb-new.patch" 2>/dev/null || head -c 8192 "$CORPUS/1g.bin" >"$dir/tree/security/kb-new.patch"
	"$RELAYD_BIN" publish "$dir/tree" --keys "$dir/keys" >/dev/null
	t_pub="$(now_ms)"
	for ((i = 0; i < 600; i++)); do
		alive "${PIDS[agents-loadgen]}" || break
		sleep 0.1
	done
	hwm="$(mem_sum VmHWM "$pid")"
	halt agents-loadgen
	line="$(grep -h '^LOADGEN ' "$out" || echo "LOADGEN failed")"
	gen2="$(grep -h 'first notified at' "$out" | tail -n 1)"
	last="$(sed -E 's/.*last notified at ([0-9]+) ms.*/\1/' <<<"$gen2")"
	[[ $last =~ ^[0-9]+$ ]] || last=NA
	log "agents: $line"
	result agents relayd "agents=$AGENTS_N connected=$(kv connected "$line") rss_mib=$rss hwm_mib=$hwm idle_cpu_pct=$idle" \
		"publish_to_all_ms=$(num 'b-a' a="$t_pub" b="$last") fanout_ms=$(kv fanout_ms "$line") updated_ms=$(kv updated_ms "$line")" \
		"syncs_ok=$(kv ok "$line") syncs_failed=$(kv failed "$line") failovers=$(kv failovers "$line")"
	agents_stop
}
