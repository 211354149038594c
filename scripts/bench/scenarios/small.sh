# shellcheck shell=bash
# small: request rate for a small cached object (/4k.bin) with wrk, where
# per-request overhead (routing, lookup, headers, logging) dominates.

SMALL_SECS="${SMALL_SECS:-10}"
SMALL_CONNS="${SMALL_CONNS:-64}"
WRK_THREADS="${WRK_THREADS:-2}"

scenario_small() {
	local t mark out gets
	describe small "Warm /4k.bin, then wrk -t$WRK_THREADS -c$SMALL_CONNS -d${SMALL_SECS}s (keep-alive). rps = completed requests/s; latency percentiles from wrk."
	for t in $TARGET_LIST; do
		fresh small "$t" || continue
		warm "$(target_url "$t")/4k.bin"
		quiet
		mark="$(origin_mark)"
		client "$LOGS/small-$t.wrk" wrk -t"$WRK_THREADS" -c"$SMALL_CONNS" -d"${SMALL_SECS}s" --timeout 5s \
			-s "$BENCH_DIR/wrk-stats.lua" "$(target_url "$t")/4k.bin" || true
		out="$(wrk_line "$LOGS/small-$t.wrk")"
		log "small $t: $out"
		read -r gets _ < <(origin_count "$mark")
		result small "$t" "rps=$(NUM_DP=0 num 'r/s' r="$(kv requests "$out")" s="$(kv secs "$out")")" \
			"p50_ms=$(num 'u/1000' u="$(kv p50_us "$out")") p99_ms=$(num 'u/1000' u="$(kv p99_us "$out")")" \
			"errors=$(NUM_DP=0 num 'a+b' a="$(kv errors "$out")" b="$(kv status_errors "$out")")" \
			"origin_gets=$gets bg_cpu=$BG_CPU"
		target_stop "$t"
	done
}
