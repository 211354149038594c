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
	describe compress-link "a branch mirror behind --upstream-rate $COMPRESS_RATE syncs the next relayd build from hq: whole (hq --encode-max 0) or as a dcz delta"
	quiet
	compress_link full
	quiet
	compress_link dcz
}

# compress_metric LINE UNIT: the value before UNIT in a benchmark line (NA).
compress_metric() {
	awk -v u="$2" '{ for (i = 2; i <= NF; i++) if ($i == u) { print $(i - 1); found = 1 } } END { if (!found) print "NA" }' <<<"$1"
}

# compress-link: time for a branch mirror behind a rate-limited link
# (--upstream-rate COMPRESS_RATE) to sync a generation whose only change is
# the next relayd build, from an hq mirror that sends identity
# (--encode-max 0, "full") or deltas (default, "dcz"); same run, same
# binaries (those BenchmarkDelta built). wire_bytes is what hq sent for the
# object (its access log); secs runs from hq holding the generation to the
# branch holding it, the delta's build on hq included.
COMPRESS_RATE="${COMPRESS_RATE:-5MB/s}"
COMPRESS_PORT="${COMPRESS_PORT:-19660}" # origin; hq +1; branch +2

compress_gen() {
	curl -s "http://127.0.0.1:$1/-/tuf/timestamp.json" |
		sed -n 's/.*"snapshot.json":{[^}]*"version":\([0-9]*\).*/\1/p' | head -n 1
}

compress_link() {
	local mode="$1" enc=1GiB corpus="${TMPDIR:-/tmp}/relayd-contentcoding-corpus" w="$STATE/compress-link-$1"
	local old new r t0 t1 i bytes obj=software/linux-amd64/relayd/relayd
	[[ $mode == full ]] && enc=0
	old="$(compgen -G "$corpus/relayd-1a3492b*" | head -n 1 || true)"
	new="$(compgen -G "$corpus/relayd-236cf34*" | head -n 1 || true)"
	if [[ -z $old || -z $new ]]; then
		warn "compress-link: the two relayd builds are not in $corpus (BenchmarkDelta builds them)"
		return 0
	fi
	rm -rf "$w" && mkdir -p "$w/tree/${obj%/*}"
	cp "$old" "$w/tree/$obj"
	for r in root targets snapshot timestamp; do "$RELAYD_BIN" keygen --role "$r" --out "$w/keys" >/dev/null 2>&1; done
	"$RELAYD_BIN" tuf init "$w/tree" --keys "$w/keys" >/dev/null 2>&1 && "$RELAYD_BIN" publish "$w/tree" --keys "$w/keys" >/dev/null 2>&1 || {
		warn "compress-link: publishing the tree failed"
		return 0
	}
	local root="$w/tree/-/tuf/1.root.json" p="$COMPRESS_PORT"
	relayd_spawn "cl-origin-$mode" --healthz "$p" serve --mode origin --root "$w/tree" --listen "127.0.0.1:$p" --admin= --gossip= --node origin --group origin --log-level warn || return 0
	relayd_spawn "cl-hq-$mode" --healthz $((p + 1)) serve --mode mirror --upstream "http://127.0.0.1:$p" --root "$root" --listen "127.0.0.1:$((p + 1))" --admin= --gossip= --node hq --group hq --data-dir "$w/hq" --encode-max "$enc" --mirror-interval 1s --log-level info || return 0
	relayd_spawn "cl-br-$mode" --healthz $((p + 2)) serve --mode mirror --upstream "http://127.0.0.1:$((p + 1))" --root "$root" --listen "127.0.0.1:$((p + 2))" --admin= --gossip= --node br --group br --data-dir "$w/br" --upstream-rate "$COMPRESS_RATE" --mirror-interval 1s --log-level warn || return 0
	for ((i = 0; i < 1200; i++)); do [[ $(compress_gen $((p + 2))) == 1 ]] && break; sleep 0.1; done
	cp "$new" "$w/tree/$obj"
	"$RELAYD_BIN" publish "$w/tree" --keys "$w/keys" >/dev/null 2>&1
	for ((i = 0; i < 1200; i++)); do [[ $(compress_gen $((p + 1))) == 2 ]] && break; sleep 0.02; done
	t0=$(now_ms)
	for ((i = 0; i < 6000; i++)); do [[ $(compress_gen $((p + 2))) == 2 ]] && break; sleep 0.02; done
	t1=$(now_ms)
	bytes="$(grep '"via":"br"' "$LOGS/cl-hq-$mode.log" | grep "\"path\":\"/$obj\"" | tail -n 1 | sed -n 's/.*"bytes":\([0-9]*\).*/\1/p')"
	if ! cmp -s <(curl -s "http://127.0.0.1:$((p + 2))/$obj") "$new"; then
		warn "compress-link $mode: the branch does not serve the new build"
	fi
	result compress-link "$mode" "secs=$(num "($t1 - $t0) / 1000" t1="$t1" t0="$t0")" "wire_bytes=${bytes:-NA}" "object_bytes=$(stat -c %s "$new")" "rate=$COMPRESS_RATE" "bg_cpu=$BG_CPU"
	halt "cl-br-$mode"
	halt "cl-hq-$mode"
	halt "cl-origin-$mode"
}
