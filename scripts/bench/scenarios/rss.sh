# shellcheck shell=bash
# rss: memory of the cache while RSS_CLIENTS clients each download the
# whole (cached) /1g.bin at once. A relay that streams from disk should stay
# flat; one that buffers objects or per-client copies in memory grows with
# clients × size. Peak = VmHWM from /proc/PID/status, reset after warming
# (clear_refs) so it covers the download only; for nginx the workers'
# VmHWM are summed. A 0.25 s VmRSS sampler runs alongside as a cross-check.

RSS_CLIENTS="${RSS_CLIENTS:-100}"
RSS_TIMEOUT="${RSS_TIMEOUT:-240}" # s; the whole download must end by then
SAMPLER_PID=""

# mem_sum FIELD PID...: sum of a /proc/PID/status field (kB) over PIDs, MiB.
mem_sum() {
	local field="$1" p kb=0 v
	shift
	for p in "$@"; do
		v="$(awk -v f="$field:" '$1 == f { print $2 }' "/proc/$p/status" 2>/dev/null || true)"
		kb=$((kb + ${v:-0}))
	done
	echo $((kb / 1024))
}

# rss_sampler TARGET OUTFILE: every 0.25 s write the highest summed VmRSS
# seen so far; stops by itself after RSS_TIMEOUT s.
rss_sampler() {
	local i peak=0 cur pids
	for ((i = 0; i < RSS_TIMEOUT * 4; i++)); do
		mapfile -t pids < <(target_pids "$1")
		cur="$(mem_sum VmRSS "${pids[@]}")"
		((cur > peak)) && peak=$cur
		echo "$peak" >"$2"
		sleep 0.25
	done
}

scenario_rss() {
	local t pids p out idle hwm sampled reset size list=()
	size="$(stat -c %s "$CORPUS/1g.bin")"
	describe rss "Warm /1g.bin, then $RSS_CLIENTS clients download it fully at once. peak_rss_mib = VmHWM during the download (nginx: workers summed); sampled = highest 0.25 s VmRSS sample; idle = VmRSS before."
	# relayd is the subject; nginx is the reference. varnish keeps its
	# storage in RAM (malloc), so only when asked for with RSS_TARGETS.
	for t in ${RSS_TARGETS:-$TARGET_LIST}; do
		[[ -n ${RSS_TARGETS:-} || $t != varnish ]] && list+=("$t")
	done
	for t in "${list[@]}"; do
		fresh rss "$t" || continue
		warm "$(target_url "$t")/1g.bin"
		quiet
		mapfile -t pids < <(target_pids "$t")
		reset=yes
		for p in "${pids[@]}"; do
			echo 5 2>/dev/null >"/proc/$p/clear_refs" || reset=no
		done
		[[ $reset == yes ]] || warn "could not reset VmHWM of $t; its peak includes the warm-up"
		idle="$(mem_sum VmRSS "${pids[@]}")"
		rss_sampler "$t" "$LOGS/rss-$t.sampled" &
		SAMPLER_PID=$!
		client "$LOGS/rss-$t.fetch" "$BIN/fetch" -url "$(target_url "$t")/1g.bin" -c "$RSS_CLIENTS" -n 1 \
			-size "$size" -timeout "${RSS_TIMEOUT}s" || true
		out="$(<"$LOGS/rss-$t.fetch")"
		# workers are the same processes as before the download
		hwm="$(mem_sum VmHWM "${pids[@]}")"
		stop_sampler
		sampled="$(cat "$LOGS/rss-$t.sampled" 2>/dev/null || echo NA)"
		log "rss $t: idle ${idle} MiB, peak ${hwm} MiB (sampled ${sampled} MiB); $out"
		result rss "$t" "clients=$RSS_CLIENTS peak_rss_mib=$hwm sampled_rss_mib=$sampled idle_rss_mib=$idle" \
			"gbps=$(kv gbps "$out") ttlb_p50_ms=$(kv ttlb_p50_ms "$out") ttlb_max_ms=$(kv ttlb_max_ms "$out")" \
			"fail=$(kv fail "$out") hwm_reset=$reset processes=${#pids[@]} bg_cpu=$BG_CPU"
		target_stop "$t"
	done
}

stop_sampler() {
	[[ -n $SAMPLER_PID ]] || return 0
	kill "$SAMPLER_PID" 2>/dev/null || true
	wait "$SAMPLER_PID" 2>/dev/null || true
	SAMPLER_PID=""
}
