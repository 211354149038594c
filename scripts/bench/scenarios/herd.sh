# shellcheck shell=bash
# herd: a thundering herd on a cold object behind a slow (WAN-like) origin.
# Purge, then HERD_CLIENTS clients GET /slow/64m.bin at the same instant.
# A cache that collapses the misses asks the origin once; one that streams
# the fill to every waiter finishes everyone close to the ideal fill time
# (size / SLOW_RATE).

HERD_CLIENTS="${HERD_CLIENTS:-100}"
HERD_OBJECT="${HERD_OBJECT:-64m.bin}"

scenario_herd() {
	local t size ideal mark out gets bytes
	size="$(stat -c %s "$CORPUS/$HERD_OBJECT")"
	ideal="$(num '1000*s/r' s="$size" r="$SLOW_RATE")"
	describe herd "Empty cache, then $HERD_CLIENTS clients GET /slow/$HERD_OBJECT at once (origin sends it at $((SLOW_RATE / 1000000)) MB/s per connection). origin_gets: requests that reached the origin (1 = perfect collapsing). ideal_fill_ms = size / rate."
	for t in $TARGET_LIST; do
		fresh herd "$t" || continue # a fresh start is the purge
		quiet
		mark="$(origin_mark)"
		client "$LOGS/herd-$t.fetch" "$BIN/fetch" -url "$(target_url "$t")/slow/$HERD_OBJECT" \
			-c "$HERD_CLIENTS" -n 1 -size "$size" -timeout 120s || true
		out="$(<"$LOGS/herd-$t.fetch")"
		log "herd $t: $out"
		read -r gets bytes < <(origin_count "$mark")
		result herd "$t" "clients=$HERD_CLIENTS origin_gets=$gets origin_mb=$(num 'b/1e6' b="$bytes")" \
			"ttfb_min_ms=$(kv ttfb_min_ms "$out") ttfb_p50_ms=$(kv ttfb_p50_ms "$out") ttfb_max_ms=$(kv ttfb_max_ms "$out")" \
			"ttlb_min_ms=$(kv ttlb_min_ms "$out") ttlb_p50_ms=$(kv ttlb_p50_ms "$out") ttlb_max_ms=$(kv ttlb_max_ms "$out")" \
			"ideal_fill_ms=$ideal ttlb_max_x_ideal=$(num 'm/i' m="$(kv ttlb_max_ms "$out")" i="$ideal")" \
			"fail=$(kv fail "$out") bg_cpu=$BG_CPU"
		target_stop "$t"
	done
}
