# shellcheck shell=bash
# hit: throughput of a warm cache for big objects. Each target serves
# /64m.bin and then /1g.bin to HIT_CLIENTS clients looping for HIT_SECS.
# relayd and nginx run twice, with and without sendfile, because on
# loopback (no NIC) copying can beat sendfile and the two must not be mixed
# up in a comparison.

HIT_CLIENTS="${HIT_CLIENTS:-4}"
HIT_SECS="${HIT_SECS:-10}"

scenario_hit() {
	local fam t list=() mark bg=() o out gets line
	describe hit "Warm cache: $HIT_CLIENTS keep-alive clients loop GET /64m.bin for ${HIT_SECS} s, then /1g.bin for ${HIT_SECS} s. gbps = body bytes received per second; origin_gets should be 0."
	for fam in $TARGET_LIST; do
		case "$fam" in
		nginx) list+=(nginx-sendfile nginx-copy) ;;
		relayd) list+=(relayd-sendfile relayd-copy) ;;
		*) list+=("$fam") ;;
		esac
	done
	for t in "${list[@]}"; do
		[[ $t == relayd-copy && $RELAYD_SENDFILE_FLAG == rejected ]] && continue
		if ! target_fresh "$t"; then
			target_stop "$t"
			if [[ $t == relayd-sendfile ]] && relayd_rejected_sendfile; then
				# Report it and carry on with relayd as it is.
				RELAYD_SENDFILE_FLAG=rejected
				warn "relayd rejects --sendfile: measuring plain relayd instead of relayd-sendfile/relayd-copy"
				t=relayd
				fresh hit "$t" || continue
			else
				result hit "$t" error=start_failed
				continue
			fi
		fi
		warm "$(target_url "$t")/64m.bin"
		warm "$(target_url "$t")/1g.bin"
		mark="$(origin_mark)"
		line=""
		bg=()
		for o in 64m 1g; do
			quiet
			bg+=("$BG_CPU")
			client "$LOGS/hit-$t-$o.fetch" "$BIN/fetch" -url "$(target_url "$t")/$o.bin" -c "$HIT_CLIENTS" \
				-d "${HIT_SECS}s" -n 100000 -size "$(stat -c %s "$CORPUS/$o.bin")" -timeout "$((HIT_SECS + 60))s" || true
			out="$(<"$LOGS/hit-$t-$o.fetch")"
			log "hit $t /$o.bin: $out"
			line+=" ${o}_gbps=$(kv gbps "$out") ${o}_ttlb_p50_ms=$(kv ttlb_p50_ms "$out") ${o}_fail=$(kv fail "$out")"
		done
		read -r gets _ < <(origin_count "$mark")
		[[ $RELAYD_SENDFILE_FLAG == rejected && $t == relayd ]] && line+=" note=sendfile_flag_rejected"
		result hit "$t" "${line# }" "origin_gets=$gets bg_cpu=$(
			IFS=/
			echo "${bg[*]}"
		)"
		target_stop "$t"
	done
}
