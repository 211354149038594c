# shellcheck shell=bash
# compress: wire bytes per object byte and CPU per GB of the encoded forms
# relays send each other (issue 16, pkg/contentcoding), on real data:
# two consecutive builds of relayd's own binary (built from this clone's
# history the first time, kept in $TMPDIR/relayd-contentcoding-corpus),
# relayd's source as a tar at the same two commits, a text rule set (the
# freedesktop MIME database, /usr/share/mime), a module zip (two versions
# of golang.org/x/sync from the Go module cache) and a large gzip file
# (Debian's AppStream catalog as apt keeps it) — both already compressed. Runs the Go benchmarks BenchmarkDelta and BenchmarkZstd
# (single-threaded encoders and decoders: s/GB is CPU seconds per GB of
# object) and prints one row per kind and coding:
#
#   wire_obj     encoded bytes ÷ object bytes (1.00: sent as it is)
#   make_s_gb    CPU seconds (user + system) per GB to make the form (for zstd, with the
#                64 KiB sample that keeps archives from being compressed)
#   apply_s_gb   CPU seconds per GB to decode it
#
# Targets: binary dcz ≤ 0.15, text ≤ 0.35, archive ~1.0 with no CPU spent.
# What is missing on the machine is skipped by the benchmark, saying so.

COMPRESS_BENCHTIME="${COMPRESS_BENCHTIME:-3x}"

scenario_compress() {
	local out="$LOGS/compress-gobench.txt" kind bench coding line make apply wire
	describe compress "zstd and dcz deltas between relays on real data (pkg/contentcoding benchmarks, one core)"
	echo "CMD compress go test -run '^\$' -bench 'BenchmarkDelta|BenchmarkZstd' -benchtime $COMPRESS_BENCHTIME ./pkg/contentcoding" >>"$RESULTS_FILE"
	quiet
	(cd "$REPO_ROOT" && go test -run '^$' -bench 'BenchmarkDelta|BenchmarkZstd' -benchtime "$COMPRESS_BENCHTIME" ./pkg/contentcoding) >"$out" 2>&1 || {
		warn "compress: go test -bench failed (see $out)"
		return 0
	}
	for kind in binary source-tar rules module-zip archive-gz; do
		for bench in Delta Zstd; do
			line="$(grep -E "^Benchmark$bench/$kind/make" "$out" || true)"
			[[ -n $line ]] || continue
			make="$(compress_metric "$line" cpu-s/GB)"
			wire="$(compress_metric "$line" wire/obj)"
			apply="$(compress_metric "$(grep -E "^Benchmark$bench/$kind/apply" "$out" || true)" cpu-s/GB)"
			coding=zstd
			[[ $bench == Delta ]] && coding=dcz
			result compress "$kind-$coding" "wire_obj=$wire" "make_s_gb=$make" "apply_s_gb=$apply" "bg_cpu=$BG_CPU"
		done
	done
}

# compress_metric LINE UNIT: the value before UNIT in a benchmark line (NA).
compress_metric() {
	awk -v u="$2" '{ for (i = 2; i <= NF; i++) if ($i == u) { print $(i - 1); found = 1 } } END { if (!found) print "NA" }' <<<"$1"
}
