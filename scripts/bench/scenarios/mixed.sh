# shellcheck shell=bash
# mixed: many objects of mixed sizes with skewed popularity, from an empty
# cache: a cold phase (the cache fills while serving) then a steady phase.
# wrk-zipf.lua picks mix/NNNN.bin with Zipf(MIX_ZIPF) popularity.

MIX_CONNS="${MIX_CONNS:-64}"
MIX_COLD_SECS="${MIX_COLD_SECS:-10}"
MIX_STEADY_SECS="${MIX_STEADY_SECS:-20}"
MIX_ZIPF="${MIX_ZIPF:-0.8}"
MIX_OBJECTS="${MIX_OBJECTS:-1000}"

# mixed_phase TARGET NAME SECS: run wrk; its WRK line goes to $LOGS.
mixed_phase() {
	client "$LOGS/mixed-$1-$2.wrk" wrk -t"${WRK_THREADS:-2}" -c"$MIX_CONNS" -d"${3}s" --timeout 10s \
		-s "$BENCH_DIR/wrk-zipf.lua" "$(target_url "$1")" -- "$MIX_OBJECTS" "$MIX_ZIPF" 1 || true
}

scenario_mixed() {
	local t m0 m1 cold steady cg cb sg sb
	describe mixed "Empty cache, then wrk with $MIX_CONNS connections over mix/0000..$(printf %04d $((MIX_OBJECTS - 1))).bin (4 KiB-1 MiB, log-uniform sizes, Zipf($MIX_ZIPF) popularity): ${MIX_COLD_SECS} s cold, then ${MIX_STEADY_SECS} s steady. hit_ratio = 1 - origin GETs / client requests; mbps counts what wrk read (headers included)."
	for t in $TARGET_LIST; do
		fresh mixed "$t" || continue
		quiet
		m0="$(origin_mark)"
		mixed_phase "$t" cold "$MIX_COLD_SECS"
		m1="$(origin_mark)"
		mixed_phase "$t" steady "$MIX_STEADY_SECS"
		cold="$(wrk_line "$LOGS/mixed-$t-cold.wrk")"
		steady="$(wrk_line "$LOGS/mixed-$t-steady.wrk")"
		log "mixed $t cold: $cold"
		log "mixed $t steady: $steady"
		read -r cg cb < <(origin_count "$m0" "$m1")
		read -r sg sb < <(origin_count "$m1")
		result mixed "$t" \
			"cold_rps=$(NUM_DP=0 num 'r/s' r="$(kv requests "$cold")" s="$(kv secs "$cold")")" \
			"cold_mbps=$(num 'b/s/1e6' b="$(kv bytes "$cold")" s="$(kv secs "$cold")")" \
			"cold_origin_gets=$cg cold_hit_ratio=$(NUM_DP=3 num '1-g/r' g="$cg" r="$(kv requests "$cold")")" \
			"steady_rps=$(NUM_DP=0 num 'r/s' r="$(kv requests "$steady")" s="$(kv secs "$steady")")" \
			"steady_mbps=$(num 'b/s/1e6' b="$(kv bytes "$steady")" s="$(kv secs "$steady")")" \
			"steady_p50_ms=$(num 'u/1000' u="$(kv p50_us "$steady")") steady_p99_ms=$(num 'u/1000' u="$(kv p99_us "$steady")")" \
			"steady_origin_gets=$sg steady_hit_ratio=$(NUM_DP=3 num '1-g/r' g="$sg" r="$(kv requests "$steady")")" \
			"origin_mb=$(NUM_DP=0 num '(a+b)/1e6' a="$cb" b="$sb")" \
			"errors=$(NUM_DP=0 num 'a+b+c+d' a="$(kv errors "$cold")" b="$(kv status_errors "$cold")" c="$(kv errors "$steady")" d="$(kv status_errors "$steady")")" \
			"bg_cpu=$BG_CPU"
		target_stop "$t"
	done
}
