# shellcheck shell=bash
# tree: a three-level tree of relays on loopback with simulated agents at
# the leaves.
#
#   origin (relayd, --mode origin, a signed catalog: one TREE_PACKAGE_MB
#   package and TREE_SMALL security files of 20 KiB)
#     └ hq: 2 mirror relays (one group)
#         ├ branch-a: 2 proxy relays (one group), upstream hq-1 (learns hq-2)
#         └ branch-b: 1 proxy relay, upstream hq-2 (learns hq-1)
#
# Branch relays pull at most TREE_WAN_RATE (--upstream-rate): a branch
# office's WAN link. Once hq holds the generation, TREE_AGENTS agents
# (`relayd loadgen`, half per branch, each agent verifying every byte
# against the catalog) sync everything from their branch's relays. While
# the branches fill, the hq relay serving them is killed (kill -9).
#
# Figures: origin_x_corpus = origin bytes ÷ corpus bytes (target 1.0: each
# object crossed the origin link once); all_synced_s = agents' start → the
# last agent has everything; failover_ms = kill → a branch relay resumed
# the broken transfer on the other hq relay (polled every 50 ms in
# /v1/status transfers.resumes); agents ok/failed.

TREE_BASE_PORT="${TREE_BASE_PORT:-19600}" # content i = BASE+i, admin = BASE+20+i, gossip = BASE+40+i
TREE_AGENTS="${TREE_AGENTS:-1000}"
TREE_PACKAGE_MB="${TREE_PACKAGE_MB:-64}"
TREE_SMALL="${TREE_SMALL:-200}"
TREE_WAN_RATE="${TREE_WAN_RATE:-40MB/s}"
TREE_CONCURRENCY="${TREE_CONCURRENCY:-128}" # connections per loadgen (one per branch)
TREE_TIMEOUT="${TREE_TIMEOUT:-600}"          # s for the agents

# Relays by index: 0 origin, 1-2 hq, 3-4 branch-a, 5 branch-b.
tree_port() { echo $((TREE_BASE_PORT + $1)); }
tree_admin() { echo "http://127.0.0.1:$((TREE_BASE_PORT + 20 + $1))"; }

tree_stop() {
	local i
	for i in 0 1 2 3 4 5; do halt "tree-$i"; done
}

# tree_corpus: the content tree and its signed catalog, made once.
tree_corpus() {
	local d="$STATE/tree-root" i
	if [[ -f $d/-/tuf/timestamp.json && -f $STATE/tree-keys/root.json ]]; then return 0; fi
	rm -rf "$d" "$STATE/tree-keys"
	mkdir -p "$d/software" "$d/security"
	head -c "$((TREE_PACKAGE_MB << 20))" /dev/urandom >"$d/software/agent-$TREE_PACKAGE_MB.pkg"
	for ((i = 0; i < TREE_SMALL; i++)); do
		head -c 20480 /dev/urandom >"$d/security/kb-$i.patch"
	done
	tuf_init "$STATE/tree-keys" "$d" &&
		"$RELAYD_BIN" publish "$d" --keys "$STATE/tree-keys" >/dev/null
}

# tree_relay I NODE GROUP MODE UPSTREAM [ARGS...]
tree_relay() {
	local i="$1" node="$2" group="$3" mode="$4" up="$5" args
	shift 5
	mkdir -p "$STATE/tree-$i"
	args=(serve --mode "$mode" --node "$node" --group "$group" --upstream "$up" --root "$STATE/tree-keys/root.json"
		--data-dir "$STATE/tree-$i" --listen "127.0.0.1:$(tree_port "$i")" --admin "127.0.0.1:$((TREE_BASE_PORT + 20 + i))"
		--gossip "127.0.0.1:$((TREE_BASE_PORT + 40 + i))" --log-level warn "$@")
	relayd_spawn "tree-$i" --healthz "$(tree_port "$i")" "${args[@]}" || return 1
	command_line tree "$RELAYD_BIN ${args[*]}"
}

# tree_status I FIELD: a number from relay I's /v1/status.
tree_status() { json_num "$2" "$(curl -s -m 2 "$(tree_admin "$1")/v1/status" || true)"; }

scenario_tree() {
	local olog corpus t0 t1 i b m0 oargs largs gets bytes ostat outa outb victim="" kill_ms="" failover_ms=NA r0 r1 r2 secs ok lg=()
	relayd_only tree || return 0
	describe tree "Three levels on loopback: a relayd origin → hq (2 mirror relays, one group) → branch-a (2 proxies, one group) and branch-b (1 proxy); branch relays pull at most $TREE_WAN_RATE (--upstream-rate). $TREE_AGENTS agents (\`relayd loadgen\`, half per branch, verifying every byte against the signed catalog) sync a ${TREE_PACKAGE_MB} MiB package and $TREE_SMALL security files of 20 KiB. While the branches fill, the hq relay serving them is killed. origin_x_corpus = origin bytes ÷ corpus bytes (target 1.0); all_synced_s = agents started → the last one has everything; failover_ms = kill -9 → a branch relay resumed the transfer on the other hq relay (status polled every 50 ms)."
	rm -rf "$STATE"/tree-[0-9]
	tree_corpus || {
		result tree relayd error=corpus_failed
		return 0
	}
	corpus="$(du -sb --exclude=- "$STATE/tree-root" | cut -f1)"
	olog="$LOGS/tree-0.log"
	mkdir -p "$STATE/tree-0"
	oargs=(serve --mode origin --node origin --root "$STATE/tree-root" --data-dir "$STATE/tree-0"
		--listen "127.0.0.1:$(tree_port 0)" --admin= --gossip= --log-level info)
	relayd_spawn tree-0 --healthz "$(tree_port 0)" "${oargs[@]}" || {
		result tree relayd error=origin_start_failed
		return 0
	}
	command_line tree "tuf_init $STATE/tree-keys $STATE/tree-root (relayd keygen --role, relayd tuf init) && $RELAYD_BIN publish $STATE/tree-root --keys $STATE/tree-keys"
	command_line tree "$RELAYD_BIN ${oargs[*]}"
	m0="$(relayd_log_mark "$olog")"
	ok=yes
	tree_relay 1 hq-1 hq mirror "http://127.0.0.1:$(tree_port 0)" || ok=no
	tree_relay 2 hq-2 hq mirror "http://127.0.0.1:$(tree_port 0)" --join "127.0.0.1:$((TREE_BASE_PORT + 41))" || ok=no
	t0=$SECONDS
	while [[ $ok == yes ]]; do
		[[ $(tree_status 1 generation) == 1 && $(tree_status 2 generation) == 1 ]] && break
		((SECONDS - t0 > 120)) && ok=no
		sleep 0.2
	done
	tree_relay 3 a-1 branch-a proxy "http://127.0.0.1:$(tree_port 1)" --upstream-rate "$TREE_WAN_RATE" || ok=no
	tree_relay 4 a-2 branch-a proxy "http://127.0.0.1:$(tree_port 1)" --upstream-rate "$TREE_WAN_RATE" \
		--join "127.0.0.1:$((TREE_BASE_PORT + 43))" || ok=no
	tree_relay 5 b-1 branch-b proxy "http://127.0.0.1:$(tree_port 2)" --upstream-rate "$TREE_WAN_RATE" || ok=no
	if [[ $ok == no ]]; then
		result tree relayd error=start_failed
		tree_stop
		return 0
	fi
	# Each branch relay knows both hq relays before the agents start.
	t0=$SECONDS
	for i in 3 4 5; do
		while [[ "$(curl -s -m 2 "$(tree_admin "$i")/v1/status" | grep -o '"parents":\[[^]]*\]' | grep -o http | wc -l)" != 2 ]]; do
			if ((SECONDS - t0 > 30)); then
				result tree relayd error=parents_not_learned
				tree_stop
				return 0
			fi
			sleep 0.1
		done
	done

	quiet
	t0="$(now_ms)"
	for b in a b; do
		r0="http://127.0.0.1:$(tree_port 5)"
		[[ $b == a ]] && r0="http://127.0.0.1:$(tree_port 3),http://127.0.0.1:$(tree_port 4)"
		largs=(loadgen --relay "$r0" --agents "$((TREE_AGENTS / 2))" --root "$STATE/tree-keys/root.json"
			--duration "${TREE_TIMEOUT}s" --concurrency "$TREE_CONCURRENCY" --id-prefix "tree-$b-")
		"$RELAYD_BIN" "${largs[@]}" >"$LOGS/tree-loadgen-$b.out" 2>"$LOGS/tree-loadgen-$b.err" &
		lg+=("$!")
		command_line tree "$RELAYD_BIN ${largs[*]}"
	done
	# Kill the hq relay that is serving the branches' fills (the package
	# comes after the small files: watch while the agents run).
	while [[ -z $victim ]] && { alive "${lg[0]}" || alive "${lg[1]}"; }; do
		for i in 1 2; do
			if [[ "$(tree_status "$i" serving)" =~ ^[1-9] ]]; then
				victim=$i
				break
			fi
		done
		[[ -z $victim ]] && sleep 0.05
	done
	if [[ -n $victim ]]; then
		r0=0
		for i in 3 4 5; do r0=$((r0 + $(tree_status "$i" resumes || echo 0))); done
		halt "tree-$victim" KILL
		kill_ms="$(now_ms)"
		log "tree: killed hq-$victim while it served the branches"
		while (($(now_ms) - kill_ms < 30000)); do
			r1=0
			for i in 3 4 5; do r1=$((r1 + $(tree_status "$i" resumes || echo 0))); done
			if ((r1 > r0)); then
				failover_ms=$(($(now_ms) - kill_ms))
				break
			fi
			sleep 0.05
		done
	else
		warn "tree: no hq relay was seen serving; nothing killed"
	fi
	for i in "${lg[@]}"; do wait "$i" || true; done
	t1="$(now_ms)"
	secs="$(num '(b-a)/1000' a="$t0" b="$t1")"
	outa="$(grep -h '^LOADGEN ' "$LOGS/tree-loadgen-a.out" || echo LOADGEN failed)"
	outb="$(grep -h '^LOADGEN ' "$LOGS/tree-loadgen-b.out" || echo LOADGEN failed)"
	log "tree: branch-a $outa"
	log "tree: branch-b $outb"
	read -r gets bytes _ _ ostat < <(relayd_requests "$olog" "$m0")
	r2=0
	for i in 3 4 5; do r2=$((r2 + $(tree_status "$i" resumes || echo 0))); done
	result tree relayd "agents=$TREE_AGENTS ok=$(NUM_DP=0 num 'a+b' a="$(kv ok "$outa")" b="$(kv ok "$outb")") failed=$(NUM_DP=0 num 'a+b' a="$(kv failed "$outa")" b="$(kv failed "$outb")")" \
		"origin_x_corpus=$(num 'b/c' b="$bytes" c="$corpus") origin_gets=$gets origin_status=$ostat" \
		"all_synced_s=$secs agent_gb=$(num '(a+b)/1e9' a="$(kv bytes "$outa")" b="$(kv bytes "$outb")")" \
		"killed=hq-${victim:-none} failover_ms=$failover_ms relay_resumes=$r2 agent_failovers=$(NUM_DP=0 num 'a+b' a="$(kv failovers "$outa")" b="$(kv failovers "$outb")")"
	tree_stop
}
