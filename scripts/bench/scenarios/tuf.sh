# shellcheck shell=bash
# tuf: the TUF repository (issue 13) side by side with the format before it
# (relayd-catalog-v1), in one run. The old relayd is built from commit
# TUF_OLD_COMMIT in a temporary `git worktree` (removed at once).
#
#   publish:  the publish tree (PUB_OBJECTS files, PUB_BYTES) published by
#             the old binary (publish --dir TREE --key catalog.key) and the
#             new one (publish TREE --keys DIR); each warmed once, then
#             TUF_PUB_ROUNDS timed rounds alternating, the best of each
#   sync:     a tree of TUF_SMALL_OBJECTS small files behind a relayd origin,
#             and a proxy relay below it (--root 1.root.json, or --pubkey for
#             the old binary) refreshing every TUF_INTERVAL s: what one
#             refresh with nothing new asks the origin for (objects,
#             metadata requests and bytes, from the origin's access log),
#             then what moves when one object among them changes (metadata
#             bytes until the relay serves the new generation)
#   agent:    `relayd agent sync` of TUF_AGENT_OBJECTS small files from a
#             relayd origin into an empty directory, old and new (wall s);
#             and the Go benchmark of a verified catalog's enumeration
#             (pkg/tufclient BenchmarkEnumerate, ns per object; TUF_GOBENCH=0
#             skips it)
#
# TUF_REUSE_OLD=1 reuses an old binary an earlier run built (debugging the
# scenario only: figures of record build it in the same run).

TUF_OLD_COMMIT="${TUF_OLD_COMMIT:-3fbd3f4}"
TUF_SMALL_OBJECTS="${TUF_SMALL_OBJECTS:-100000}"
TUF_SMALL_BYTES="${TUF_SMALL_BYTES:-51200000}" # ~512 B per object
TUF_AGENT_OBJECTS="${TUF_AGENT_OBJECTS:-2000}"
TUF_AGENT_BYTES="${TUF_AGENT_BYTES:-2048000}"
TUF_INTERVAL="${TUF_INTERVAL:-1}"   # s, the proxy's --mirror-interval
TUF_ROUNDS="${TUF_ROUNDS:-3}"       # no-change refreshes counted
TUF_PUB_ROUNDS="${TUF_PUB_ROUNDS:-3}" # publish rounds (old, new alternating; best of each)
TUF_PORT="${TUF_PORT:-19590}"       # origin; +1 the relay
TUF_OLD_BIN="$BIN/relayd-old"

# tuf_build_old: build TUF_OLD_COMMIT into TUF_OLD_BIN from a temporary
# worktree.
tuf_build_old() {
	local tmp rc=0
	if [[ ${TUF_REUSE_OLD:-0} == 1 && -x $TUF_OLD_BIN ]]; then
		warn "TUF_REUSE_OLD=1: using the old relayd built earlier ($TUF_OLD_BIN), not building $TUF_OLD_COMMIT"
		return 0
	fi
	tmp="$(mktemp -d)"
	log "building the old relayd ($TUF_OLD_COMMIT) in a temporary worktree $tmp/src"
	git -C "$REPO_ROOT" worktree add --detach "$tmp/src" "$TUF_OLD_COMMIT" >"$LOGS/tuf-old-build.log" 2>&1 || rc=$?
	((rc == 0)) && { (cd "$tmp/src" && go build -o "$TUF_OLD_BIN" ./cmd/relayd) >>"$LOGS/tuf-old-build.log" 2>&1 || rc=$?; }
	git -C "$REPO_ROOT" worktree remove --force "$tmp/src" >>"$LOGS/tuf-old-build.log" 2>&1 || true
	rm -rf "$tmp"
	((rc == 0)) || warn "the old relayd did not build: $(tail -n 3 "$LOGS/tuf-old-build.log" | tr '\n' ' ')"
	return "$rc"
}

# tuf_keys BIN DIR: the keys that binary publishes with (old: catalog.key;
# new: a key per top-level role).
tuf_keys() {
	local bin="$1" dir="$2" r
	rm -rf "$dir"
	if [[ $bin == "$TUF_OLD_BIN" ]]; then
		"$bin" keygen --out "$dir" >>"$LOGS/keygen.out" 2>&1
		return
	fi
	for r in root targets snapshot timestamp; do
		"$bin" keygen --role "$r" --out "$dir" >>"$LOGS/keygen.out" 2>&1 || return 1
	done
}

# tuf_publish BIN TREE KEYS [NAME]: publish TREE with BIN (timed as NAME if
# given), a first publish (any earlier TREE/-/ is removed; the new format
# is initialised first).
tuf_publish() {
	local bin="$1" tree="$2" keys="$3" name="${4:-}"
	rm -rf "${tree:?}/-"
	local cmd=("$bin" publish --dir "$tree" --key "$keys/catalog.key")
	if [[ $bin != "$TUF_OLD_BIN" ]]; then
		"$bin" tuf init "$tree" --keys "$keys" >"$LOGS/tuf-init.out" 2>&1 || return 1
		cmd=("$bin" publish "$tree" --keys "$keys")
	fi
	if [[ -z $name ]]; then
		"${cmd[@]}" >"$LOGS/tuf-publish.out" 2>&1
		return
	fi
	quiet
	timed "$name" "${cmd[@]}"
	command_line tuf "${cmd[*]}"
	((T_RC == 0))
}

# tuf_meta LOG FROM: origin requests logged since line FROM, as
# "objects metadata_requests metadata_bytes files" (metadata: /-/tuf/ and
# /-/catalog; files: name:status,... of the metadata requests).
tuf_meta() {
	sleep 0.3
	tail -n +"$(($2 + 1))" "$1" | awk '
		function field(k, numeric,   re) {
			re = numeric ? "\"" k "\":[0-9]+" : "\"" k "\":\"[^\"]*\""
			if (!match($0, re)) return ""
			return numeric ? substr($0, RSTART + length(k) + 3, RLENGTH - length(k) - 3) \
				: substr($0, RSTART + length(k) + 4, RLENGTH - length(k) - 5)
		}
		/"message":"request"/ {
			p = field("path", 0)
			if (p == "/-/catalog" || substr(p, 1, 7) == "/-/tuf/") {
				m++; mb += field("bytes", 1); f = f (f == "" ? "" : ",") substr(p, p ~ /^\/-\/tuf\// ? 8 : 4) ":" field("status", 1)
				next
			}
			if (substr(p, 1, 3) != "/-/") n++
		}
		END { printf "%d %d %d %s\n", n, m, mb, f == "" ? "-" : f }'
}

# tuf_count LOG FROM PATTERN: requests logged since FROM whose path
# matches PATTERN (a regular expression).
tuf_count() { tail -n +"$(($2 + 1))" "$1" | grep '"message":"request"' | grep -cE "\"path\":\"$3\"" || true; }

# tuf_served URL FILE: the relay serves FILE's bytes at URL.
tuf_served() { curl -s -m 2 "$1" 2>/dev/null | cmp -s - "$2"; }

# tuf_sync WHICH BIN TREE KEYS: origin and proxy relay of BIN over TREE:
# one RESULT line with the no-change refresh and the one-changed-object
# figures.
tuf_sync() {
	local which="$1" bin="$2" tree="$3" keys="$4" olog trust meta url m t0 n r ok=yes
	local RELAYD_BIN="$bin"
	olog="$LOGS/tuf-$which-origin.log"
	rm -rf "$STATE/tuf-$which" "$olog" "$LOGS/tuf-$which-relay.log"
	mkdir -p "$STATE/tuf-$which/origin" "$STATE/tuf-$which/relay"
	if [[ $which == old ]]; then
		trust=(--pubkey "$keys/catalog.pub") meta="$tree/-/catalog" url="/-/catalog"
	else
		trust=(--root "$tree/-/tuf/1.root.json") meta="$tree/-/tuf/timestamp.json" url="/-/tuf/timestamp.json"
	fi
	relayd_spawn "tuf-$which-origin" --healthz "$TUF_PORT" serve --mode origin --node bench-origin --root "$tree" \
		--data-dir "$STATE/tuf-$which/origin" --listen "127.0.0.1:$TUF_PORT" --admin= --gossip= --log-level info || {
		result tuf "relayd-$which" error=origin_start_failed
		return 0
	}
	relayd_spawn "tuf-$which-relay" --healthz "$((TUF_PORT + 1))" serve --mode proxy --node bench-relay \
		--upstream "http://127.0.0.1:$TUF_PORT" "${trust[@]}" --mirror-interval "${TUF_INTERVAL}s" \
		--data-dir "$STATE/tuf-$which/relay" --listen "127.0.0.1:$((TUF_PORT + 1))" --admin= --gossip= --log-level warn || {
		halt "tuf-$which-origin"
		result tuf "relayd-$which" error=relay_start_failed
		return 0
	}
	command_line tuf "$bin serve --mode proxy --upstream http://127.0.0.1:$TUF_PORT ${trust[*]} --mirror-interval ${TUF_INTERVAL}s ...   # below $bin serve --mode origin --root $tree"
	t0="$(now_ms)"
	until tuf_served "http://127.0.0.1:$((TUF_PORT + 1))$url" "$meta"; do
		(($(now_ms) - t0 < 120000)) || {
			warn "the $which relay never served the published metadata"
			ok=no
			break
		}
		sleep 0.1
	done
	# No change: TUF_ROUNDS refreshes, counted by the request for the
	# metadata file each one starts with.
	m="$(relayd_log_mark "$olog")"
	t0="$(now_ms)"
	until (($(tuf_count "$olog" "$m" "$url") >= TUF_ROUNDS)); do
		(($(now_ms) - t0 < 60000)) || break
		sleep 0.1
	done
	read -r -a n < <(tuf_meta "$olog" "$m")
	r="nochange_rounds=$(tuf_count "$olog" "$m" "$url") nochange_objects=${n[0]} nochange_meta_requests=${n[1]} nochange_meta_bytes=${n[2]}"
	log "$which: $r (${n[3]})"
	# One object changes among TUF_SMALL_OBJECTS: publish, then until the
	# relay serves the new metadata.
	local victim
	victim="$(find "$tree" -type f -not -path '*/-/*' -print -quit)"
	printf 'changed %s\n' "$(date +%s%N)" >>"$victim"
	m="$(relayd_log_mark "$olog")"
	if [[ $which == old ]]; then
		"$bin" publish --dir "$tree" --key "$keys/catalog.key" >"$LOGS/tuf-$which-republish.out" 2>&1 || ok=no
	else
		"$bin" publish "$tree" --keys "$keys" >"$LOGS/tuf-$which-republish.out" 2>&1 || ok=no
	fi
	t0="$(now_ms)"
	until tuf_served "http://127.0.0.1:$((TUF_PORT + 1))$url" "$meta"; do
		(($(now_ms) - t0 < 60000)) || {
			ok=no
			break
		}
		sleep 0.05
	done
	read -r -a n < <(tuf_meta "$olog" "$m")
	r+=" changed_objects=${n[0]} changed_meta_requests=${n[1]} changed_meta_bytes=${n[2]} ok=$ok"
	log "$which, one changed object: ${n[*]}"
	echo "${n[3]}" >"$LOGS/tuf-$which-changed-files.txt"
	result tuf "relayd-$which-sync" "$r"
	halt "tuf-$which-relay"
	halt "tuf-$which-origin"
}

# tuf_agent WHICH BIN TREE KEYS: `relayd agent sync` of TREE from a relayd
# origin into an empty directory.
tuf_agent() {
	local which="$1" bin="$2" tree="$3" keys="$4" trust out="$STATE/tuf-agent-$1"
	local RELAYD_BIN="$bin"
	rm -rf "$out" "$STATE/tuf-agent-origin"
	mkdir -p "$STATE/tuf-agent-origin"
	if [[ $which == old ]]; then trust=(--pubkey "$keys/catalog.pub"); else trust=(--root "$tree/-/tuf/1.root.json"); fi
	relayd_spawn "tuf-agent-$which-origin" --healthz "$TUF_PORT" serve --mode origin --node bench-origin --root "$tree" \
		--data-dir "$STATE/tuf-agent-origin" --listen "127.0.0.1:$TUF_PORT" --admin= --gossip= --log-level warn || {
		result tuf "relayd-$which-agent" error=origin_start_failed
		return 0
	}
	quiet
	timed "tuf-agent-$which" "$bin" agent sync --relay "http://127.0.0.1:$TUF_PORT" "${trust[@]}" --out "$out"
	command_line tuf "$bin agent sync --relay http://127.0.0.1:$TUF_PORT ${trust[*]} --out $out"
	result tuf "relayd-$which-agent" "objects=$(find "$out" -type f -not -path '*/.*' | wc -l) secs=$T_REAL cpu_secs=$T_CPU rc=$T_RC bg_cpu=$BG_CPU"
	halt "tuf-agent-$which-origin"
}

scenario_tuf() {
	local keys="$STATE/tuf-keys" small="$BENCH_WORK/tree-small" agent="$BENCH_WORK/tree-agent" b old_s new_s
	relayd_only tuf || return 0
	describe tuf "The TUF repository (new) beside relayd-catalog-v1 (old: relayd built from $TUF_OLD_COMMIT in this run). publish: a first publish of the publish tree ($PUB_OBJECTS files, $((PUB_BYTES / 1048576)) MiB, page cache warm), $TUF_PUB_ROUNDS rounds alternating old and new, the best of each; gbps = bytes / best wall s, new_vs_old = new GB/s ÷ old GB/s (target ≥ 0.9). sync: a proxy relay refreshing every ${TUF_INTERVAL}s below a relayd origin serving $TUF_SMALL_OBJECTS small files: nochange_* = what $TUF_ROUNDS refreshes with nothing new took from the origin (objects, metadata requests, metadata body bytes); changed_* = from the publish of one changed object until the relay serves the new metadata (target < 64 KiB). agent: relayd agent sync of $TUF_AGENT_OBJECTS small files from the origin into an empty directory."
	tuf_build_old || {
		result tuf relayd-old error=old_build_failed
		return 0
	}
	pub_prepare || {
		result tuf relayd error=prepare_failed
		return 0
	}
	b="$PUB_BYTES"
	for w in old new; do
		local bin="$RELAYD_BIN"
		[[ $w == old ]] && bin="$TUF_OLD_BIN"
		tuf_keys "$bin" "$keys-$w" || warn "keygen ($w) failed"
		tuf_publish "$bin" "$PUB_TREE" "$keys-$w" || warn "publish warm-up ($w) failed: $(tail -n 2 "$LOGS/tuf-publish.out" | tr '\n' ' ')"
	done
	# TUF_PUB_ROUNDS rounds, old and new alternating; the best of each.
	local -A best=() cpu=() bg=()
	for ((i = 1; i <= TUF_PUB_ROUNDS; i++)); do
		for w in old new; do
			local bin="$RELAYD_BIN"
			[[ $w == old ]] && bin="$TUF_OLD_BIN"
			tuf_publish "$bin" "$PUB_TREE" "$keys-$w" "tuf-publish-$w" || warn "publish ($w) failed: $(tail -n 2 "$LOGS/tuf-publish-$w.out.err" | tr '\n' ' ')"
			log "publish ($w, round $i): ${T_REAL}s: $(tr '\n' ' ' <"$LOGS/tuf-publish-$w.out")"
			if [[ -z ${best[$w]:-} ]] || (($(NUM_DP=0 num 'a<b' a="$T_REAL" b="${best[$w]}"))); then
				best[$w]="$T_REAL" cpu[$w]="$T_CPU" bg[$w]="$BG_CPU"
			fi
		done
	done
	for w in old new; do
		result tuf "relayd-$w-publish" "objects=$PUB_OBJECTS bytes=$b rounds=$TUF_PUB_ROUNDS best_secs=${best[$w]} gbps=$(NUM_DP=3 num 'b/s/1e9' b="$b" s="${best[$w]}") cpu_secs=${cpu[$w]} bg_cpu=${bg[$w]}"
	done
	old_s="${best[old]}" new_s="${best[new]}"
	rm -rf "${PUB_TREE:?}/-"
	PUB_READY=0
	result tuf relayd-publish-ratio "new_vs_old=$(NUM_DP=3 num 'o/n' o="$old_s" n="$new_s")"

	log "small tree in $small: $TUF_SMALL_OBJECTS objects (the first run writes it)"
	"$BIN/gendata" -out "$small" -tree "$TUF_SMALL_OBJECTS" -tree-bytes "$TUF_SMALL_BYTES" >&2 || {
		result tuf relayd error=gendata_failed
		return 0
	}
	"$BIN/gendata" -out "$agent" -tree "$TUF_AGENT_OBJECTS" -tree-bytes "$TUF_AGENT_BYTES" >&2 || true
	for w in old new; do
		local bin="$RELAYD_BIN"
		[[ $w == old ]] && bin="$TUF_OLD_BIN"
		tuf_publish "$bin" "$small" "$keys-$w" || warn "publish of the small tree ($w) failed"
		tuf_sync "$w" "$bin" "$small" "$keys-$w"
		tuf_publish "$bin" "$agent" "$keys-$w" || warn "publish of the agent tree ($w) failed"
		tuf_agent "$w" "$bin" "$agent" "$keys-$w"
	done
	if [[ ${TUF_GOBENCH:-1} == 1 ]]; then
		(cd "$REPO_ROOT" && go test -run '^$' -bench 'BenchmarkEnumerate$' -benchtime 3x ./pkg/tufclient/) >"$LOGS/tuf-enumerate.txt" 2>&1 || true
		command_line tuf "go test -run '^\$' -bench 'BenchmarkEnumerate\$' -benchtime 3x ./pkg/tufclient/"
		result tuf go-enumerate "$(grep -oE '[0-9.]+ ns/target' "$LOGS/tuf-enumerate.txt" | head -n 1 | awk '{ print "ns_per_object=" $1 }')"
	fi
}
