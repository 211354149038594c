# shellcheck shell=bash
# publish: `relayd publish` of a tree of PUB_OBJECTS objects totalling
# PUB_BYTES (10,000 and 1 GiB), against sha256sum over the same files, in
# the same run. relayd hashes with sha256 on all CPUs; sha256sum runs as
# `xargs -P$(nproc)` and as one process.
#
# The page cache is not dropped (that needs root and is not portable):
# each command runs once untimed to warm it, then once timed, so every row
# is "all files in RAM" and measures hashing plus the per-file overhead.
# A first publish needs a tree without a catalog, so the catalog the warm
# run wrote is removed before the timed run; the last row is a second
# publish of the unchanged tree, which must say "unchanged" and keep
# generation 1.
#
# The tree ($BENCH_WORK/tree, written by `gendata -tree`, kept between
# runs like the corpus) and its key and catalog are also what the mirror
# scenario serves.

PUB_OBJECTS="${PUB_OBJECTS:-10000}"
PUB_BYTES="${PUB_BYTES:-1073741824}" # 1 GiB
PUB_TREE="$BENCH_WORK/tree"
PUB_KEYS="$STATE/publish-keys" # TUF role keys and root.json (tuf_init): fresh per run
PUB_READY=0                    # 1: PUB_TREE has a generation-1 catalog signed with PUB_KEYS
PUB_SIZES=""                   # "min …, median …, max …" of the tree's files

# pub_prepare: write (or reuse) the tree, make a new key pair and remove any
# catalog (it was signed with an older key).
pub_prepare() {
	log "publish tree in $PUB_TREE: $PUB_OBJECTS objects, $PUB_BYTES bytes (the first run writes it)"
	"$BIN/gendata" -out "$PUB_TREE" -tree "$PUB_OBJECTS" -tree-bytes "$PUB_BYTES" >&2 || {
		warn "gendata -tree failed"
		return 1
	}
	PUB_SIZES="$(grep -v '^#' "$PUB_TREE.txt" | awk '{ print $2 }' | sort -n |
		awk '{ s[NR] = $1 } END { printf "%d B to %.1f MB, median %.1f KB", s[1], s[NR] / 1e6, s[int((NR + 1) / 2)] / 1e3 }')"
	rm -rf "${PUB_KEYS:?}" "${PUB_TREE:?}/-"
	PUB_READY=0
	tuf_init "$PUB_KEYS" "$PUB_TREE" >"$LOGS/keygen.out" 2>&1 || {
		warn "relayd keygen --role / tuf init failed: $(tr '\n' ' ' <"$LOGS/keygen.out")"
		return 1
	}
}

# pub_ensure: PUB_TREE published as generation 1 with PUB_KEYS (for a run
# of the mirror scenario without the publish scenario before it).
pub_ensure() {
	[[ $PUB_READY == 1 ]] && return 0
	pub_prepare || return 1
	log "relayd publish $PUB_TREE (generation 1 for the mirror)"
	"$RELAYD_BIN" publish "$PUB_TREE" --keys "$PUB_KEYS" >"$LOGS/publish-prep.out" 2>&1 || {
		warn "relayd publish failed: $(tail -n 3 "$LOGS/publish-prep.out" | tr '\n' ' ')"
		return 1
	}
	grep -q 'published generation 1:' "$LOGS/publish-prep.out" || {
		warn "relayd publish did not publish generation 1: $(tr '\n' ' ' <"$LOGS/publish-prep.out")"
		return 1
	}
	PUB_READY=1
}

# pub_sha256sum PROCS: the sha256sum command line over the tree's files
# (PROCS parallel processes; 1 = a single sha256sum at a time).
pub_sha256sum() {
	local p=()
	(($1 > 1)) && p=("-P$1")
	echo "find $PUB_TREE -type f -not -path '*/-/*' -print0 | xargs -0 ${p[*]}${p[*]:+ }sha256sum"
}

# pub_row BYTES: the metrics of the last timed run, over BYTES.
pub_row() {
	local bytes="$1"
	echo "secs=$T_REAL mbps=$(num 'b/s/1e6' b="$bytes" s="$T_REAL") cpu_secs=$T_CPU cpu_cores=$(num 'c/s' c="$T_CPU" s="$T_REAL") bg_cpu=$BG_CPU"
}

scenario_publish() {
	local nproc key out files bytes r_pub r_par r_one r_unch m_pub m_par m_one sumsum catpairs match
	relayd_only publish || return 0
	nproc="$(nproc)"
	pub_prepare || {
		result publish relayd-publish error=prepare_failed
		return 0
	}
	describe publish "A tree of $PUB_OBJECTS files, $((PUB_BYTES / 1048576)) MiB in all (security/, software/<platform>/<version>/, other/; $PUB_SIZES), in the page cache: each command is run once untimed to warm it, then timed. relayd-publish is a first publish (generation 1, all $nproc CPUs); relayd-unchanged a second publish of the same tree (it hashes everything again and must keep generation 1). mbps = tree bytes / wall s; cpu_cores = (user+sys) / wall. vs_sha256sum_* = relayd MB/s ÷ sha256sum MB/s (1.00 = as fast). digests_match: catalog entries whose path and sha256 equal sha256sum's."
	key="$PUB_KEYS"
	bytes="$PUB_BYTES"

	# relayd publish: warm (it writes generation 1), remove the metadata but 1.root.json,
	# then the timed first publish.
	timed publish-warm "$RELAYD_BIN" publish "$PUB_TREE" --keys "$key"
	log "publish warm-up: $(<"$LOGS/publish-warm.out")"
	find "$PUB_TREE/-/tuf" -type f ! -name 1.root.json -delete
	quiet
	timed publish-first "$RELAYD_BIN" publish "$PUB_TREE" --keys "$key"
	out="$(<"$LOGS/publish-first.out")"
	log "relayd publish: ${T_REAL}s, cpu ${T_CPU}s: $out"
	command_line publish "$RELAYD_BIN publish $PUB_TREE --keys $key"
	if ((T_RC != 0)) || [[ $out != *"published generation 1:"* ]]; then
		warn "relayd publish failed or did not publish generation 1 (rc $T_RC): $out $(tail -n 3 "$LOGS/publish-first.out.err")"
		result publish relayd-publish "error=publish_failed rc=$T_RC"
		return 0
	fi
	PUB_READY=1
	files="$(sed -nE 's/.*: ([0-9]+) objects, ([0-9]+) bytes hashed.*/\1/p' <<<"$out")"
	[[ $(sed -nE 's/.*objects, ([0-9]+) bytes hashed.*/\1/p' <<<"$out") == "$bytes" ]] ||
		warn "relayd publish hashed a different byte count than the tree holds ($bytes): $out"
	r_pub="$(pub_row "$bytes") objects=${files:-NA}"
	m_pub="$(num 'b/s/1e6' b="$bytes" s="$T_REAL")"

	# sha256sum, parallel: warm (its output is kept to check relayd's
	# digests), then timed.
	timed sha256sum-warm bash -o pipefail -c "cd \"\$1\" && find . -type f -not -path '*/-/*' -print0 | xargs -0 -P\"\$2\" sha256sum" _ "$PUB_TREE" "$nproc"
	((T_RC == 0)) || warn "sha256sum (warm-up) failed: $(head -n 3 "$LOGS/sha256sum-warm.out.err")"
	sumsum="$(awk '{ sub(/^\.\//, "", $2); print $2, $1 }' "$LOGS/sha256sum-warm.out" | LC_ALL=C sort)"
	catpairs="$(cat "$PUB_TREE"/-/tuf/1.*.json | grep -oE '"[^"]*":\{("custom":\{[^}]*\},)?"hashes":\{"sha256":"[0-9a-f]+"\}' |
		sed -E 's/^"([^"]*)":.*"sha256":"([0-9a-f]+)".*/\1 \2/' | LC_ALL=C sort -u)"
	match="$(LC_ALL=C comm -12 <(echo "$sumsum") <(echo "$catpairs") | grep -c . || true)"
	[[ $match == "$files" ]] || warn "relayd's catalog and sha256sum agree on $match of $files files"
	r_pub+=" digests_match=$match"

	quiet
	timed sha256sum-par bash -o pipefail -c "find \"\$1\" -type f -not -path '*/-/*' -print0 | xargs -0 -P\"\$2\" sha256sum >/dev/null" _ "$PUB_TREE" "$nproc"
	((T_RC == 0)) || warn "sha256sum -P$nproc failed: $(head -n 3 "$LOGS/sha256sum-par.out.err")"
	log "sha256sum -P$nproc: ${T_REAL}s, cpu ${T_CPU}s"
	command_line publish "$(pub_sha256sum "$nproc") >/dev/null"
	r_par="$(pub_row "$bytes") rc=$T_RC"
	m_par="$(num 'b/s/1e6' b="$bytes" s="$T_REAL")"

	# sha256sum, one process at a time: warm, then timed.
	timed sha256sum-one-warm bash -o pipefail -c "find \"\$1\" -type f -not -path '*/-/*' -print0 | xargs -0 sha256sum >/dev/null" _ "$PUB_TREE"
	quiet
	timed sha256sum-one bash -o pipefail -c "find \"\$1\" -type f -not -path '*/-/*' -print0 | xargs -0 sha256sum >/dev/null" _ "$PUB_TREE"
	((T_RC == 0)) || warn "sha256sum (one process) failed: $(head -n 3 "$LOGS/sha256sum-one.out.err")"
	log "sha256sum (1 process): ${T_REAL}s, cpu ${T_CPU}s"
	command_line publish "$(pub_sha256sum 1) >/dev/null"
	r_one="$(pub_row "$bytes") rc=$T_RC"
	m_one="$(num 'b/s/1e6' b="$bytes" s="$T_REAL")"

	# A second publish of the same tree: must keep generation 1. (The
	# first publish warmed it.)
	quiet
	timed publish-unchanged "$RELAYD_BIN" publish "$PUB_TREE" --keys "$key"
	out="$(<"$LOGS/publish-unchanged.out")"
	log "relayd publish (unchanged tree): ${T_REAL}s: $out"
	command_line publish "$RELAYD_BIN publish $PUB_TREE --keys $key   # again, tree unchanged"
	r_unch="$(pub_row "$bytes")"
	if ((T_RC != 0)) || [[ $out != *"unchanged"*"generation 1:"* ]]; then
		warn "the second publish of an unchanged tree did not say 'unchanged ... generation 1' (rc $T_RC): $out"
		r_unch+=" unchanged=no"
	else
		r_unch+=" unchanged=yes"
	fi

	result publish relayd-publish "$r_pub vs_sha256sum_p$nproc=$(num 'a/b' a="$m_pub" b="$m_par") vs_sha256sum_1=$(num 'a/b' a="$m_pub" b="$m_one")"
	result publish "sha256sum-p$nproc" "$r_par"
	result publish sha256sum-1 "$r_one"
	result publish relayd-unchanged "$r_unch vs_sha256sum_p$nproc=$(num 'a/b' a="$(num 'b/s/1e6' b="$bytes" s="$T_REAL")" b="$m_par")"
}
