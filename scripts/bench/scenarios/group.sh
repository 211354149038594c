# shellcheck shell=bash
# group: the origin (WAN) bytes a relay group spends per object. A relayd
# origin serves the corpus and logs every request with its bytes
# (--log-level info). GROUP_RELAYS relayd proxies start with empty caches:
#
#   relayd-group     one group (--group bench, gossip on loopback, the 2nd
#                    and later relays --join the 1st); timed only once every
#                    relay's GET /-/relays lists all of them
#   relayd-nogroup   the same relays without a group (--gossip=), the
#                    comparison: each one fills on its own
#
# Then GROUP_CLIENTS_PER_RELAY clients per relay (one fetch process, one
# barrier) GET the same cold GROUP_OBJECT. origin_x_object = origin bytes ÷
# object size: 1.0 when the group fetched it once, GROUP_RELAYS without.

GROUP_ORIGIN_PORT="${GROUP_ORIGIN_PORT:-19493}"
GROUP_PORT="${GROUP_PORT:-19494}"               # relay i listens on GROUP_PORT+i
GROUP_GOSSIP_PORT="${GROUP_GOSSIP_PORT:-19497}" # relay i gossips on GROUP_GOSSIP_PORT+i
GROUP_RELAYS="${GROUP_RELAYS:-3}"
GROUP_CLIENTS_PER_RELAY="${GROUP_CLIENTS_PER_RELAY:-10}"
GROUP_OBJECT="${GROUP_OBJECT:-64m.bin}"
GROUP_JOIN_WAIT="${GROUP_JOIN_WAIT:-30}" # s for every relay to see the whole group

# group_members PORT: how many relays GET /-/relays lists on that relay.
group_members() {
	curl -s -m 2 "http://127.0.0.1:$1/-/relays" 2>/dev/null | grep -o '"name":' | grep -c . || true
}

# group_stop: stop the relays and delete their caches.
group_stop() {
	local i
	for ((i = 0; i < GROUP_RELAYS; i++)); do halt "group-r$i"; done
	rm -rf "${STATE:?}/group"
}

# group_start MODE: start the relays, in a group (MODE group) or not.
group_start() {
	local i args
	group_stop
	for ((i = 0; i < GROUP_RELAYS; i++)); do
		mkdir -p "$STATE/group/r$i"
		args=(serve --mode proxy --node "bench-r$i" --listen "127.0.0.1:$((GROUP_PORT + i))" --admin=
			--upstream "http://127.0.0.1:$GROUP_ORIGIN_PORT" --data-dir "$STATE/group/r$i" --log-level warn)
		if [[ $1 == group ]]; then
			args+=(--group bench --gossip "127.0.0.1:$((GROUP_GOSSIP_PORT + i))")
			((i > 0)) && args+=(--join "127.0.0.1:$GROUP_GOSSIP_PORT")
		else
			args+=(--gossip=)
		fi
		listening "$((GROUP_GOSSIP_PORT + i))" && [[ $1 == group ]] && {
			warn "gossip port $((GROUP_GOSSIP_PORT + i)) is in use by something else; set GROUP_GOSSIP_PORT"
			return 1
		}
		relayd_spawn "group-r$i" --healthz "$((GROUP_PORT + i))" "${args[@]}" || return 1
		command_line group "$RELAYD_BIN ${args[*]}"
	done
}

# group_wait_members: until every relay lists GROUP_RELAYS relays.
group_wait_members() {
	local i n t0=$SECONDS ok
	while :; do
		ok=yes
		for ((i = 0; i < GROUP_RELAYS; i++)); do
			n="$(group_members "$((GROUP_PORT + i))")"
			((n == GROUP_RELAYS)) || ok=no
		done
		[[ $ok == yes ]] && break
		if ((SECONDS - t0 >= GROUP_JOIN_WAIT)); then
			warn "after ${GROUP_JOIN_WAIT}s the relays list $(for ((i = 0; i < GROUP_RELAYS; i++)); do printf '%s ' "$(group_members "$((GROUP_PORT + i))")"; done)relays, not $GROUP_RELAYS each"
			return 1
		fi
		sleep 0.2
	done
	log "every relay lists $GROUP_RELAYS relays in /-/relays (after $((SECONDS - t0))s)"
}

scenario_group() {
	local olog size mode t i urls=() m0 out gets bytes ostat form
	relayd_only group || return 0
	size="$(stat -c %s "$CORPUS/$GROUP_OBJECT")"
	describe group "A relayd origin serves the corpus; $GROUP_RELAYS relayd proxies on loopback start empty, then $((GROUP_RELAYS * GROUP_CLIENTS_PER_RELAY)) clients ($GROUP_CLIENTS_PER_RELAY per relay, released together) GET the same cold /$GROUP_OBJECT ($((size / 1048576)) MiB). relayd-group: one relay group (gossip; timed once every relay's /-/relays lists all $GROUP_RELAYS); relayd-nogroup: the same relays with --gossip= (no group). origin_x_object = bytes the origin sent ÷ object size (target 1.0 in a group, $GROUP_RELAYS.0 expected without). cache: the relays' X-Relay-Cache answers."
	olog="$LOGS/group-origin.log"
	rm -rf "$STATE/group-origin"
	mkdir -p "$STATE/group-origin"
	relayd_spawn group-origin --healthz "$GROUP_ORIGIN_PORT" serve --mode origin --node bench-origin \
		--group "$BENCH_ORIGIN_GROUP" --root "$CORPUS" --data-dir "$STATE/group-origin" --listen "127.0.0.1:$GROUP_ORIGIN_PORT" \
		--admin= --gossip= --log-level info || {
		result group relayd-group error=origin_start_failed
		return 0
	}
	command_line group "$RELAYD_BIN serve --mode origin --node bench-origin --group $BENCH_ORIGIN_GROUP --root $CORPUS --data-dir $STATE/group-origin --listen 127.0.0.1:$GROUP_ORIGIN_PORT --admin= --gossip= --log-level info"
	for ((i = 0; i < GROUP_RELAYS; i++)); do urls+=(-url "http://127.0.0.1:$((GROUP_PORT + i))/$GROUP_OBJECT"); done

	for mode in group nogroup; do
		t="relayd-$mode"
		if ! group_start "$mode"; then
			result group "$t" error=start_failed
			group_stop
			continue
		fi
		form=yes
		if [[ $mode == group ]] && ! group_wait_members; then
			form=no
		fi
		quiet
		m0="$(relayd_log_mark "$olog")"
		client "$LOGS/group-$mode.fetch" "$BIN/fetch" "${urls[@]}" -c "$((GROUP_RELAYS * GROUP_CLIENTS_PER_RELAY))" \
			-n 1 -size "$size" -timeout 120s || true
		out="$(<"$LOGS/group-$mode.fetch")"
		log "group $mode: $out"
		read -r gets bytes _ _ ostat < <(relayd_requests "$olog" "$m0")
		result group "$t" "relays=$GROUP_RELAYS clients=$((GROUP_RELAYS * GROUP_CLIENTS_PER_RELAY))" \
			"origin_x_object=$(num 'b/s' b="$bytes" s="$size") origin_gets=$gets origin_status=$ostat origin_mb=$(num 'b/1e6' b="$bytes")" \
			"ttfb_p50_ms=$(kv ttfb_p50_ms "$out") ttlb_p50_ms=$(kv ttlb_p50_ms "$out") ttlb_max_ms=$(kv ttlb_max_ms "$out")" \
			"fail=$(kv fail "$out") cache=$(kv cache "$out") group_formed=$([[ $mode == group ]] && echo "$form" || echo NA)" \
			"bg_cpu=$BG_CPU"
		group_stop
	done
	command_line group "$BIN/fetch ${urls[*]} -c $((GROUP_RELAYS * GROUP_CLIENTS_PER_RELAY)) -n 1 -size $size"
	halt group-origin
	rm -rf "$STATE/group-origin"
}
