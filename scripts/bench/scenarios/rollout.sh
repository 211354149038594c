# shellcheck shell=bash
# rollout (issue 15): a gate opening for a 1,000-agent ring, pre-positioned.
#
#   origin (relayd --mode origin, a TUF tree whose root has a rollout role,
#   --rollout-plan: rings canary [branch-a], early [branch-b], broad [*],
#   soaks of 1 h so that only `relayd rollout promote` opens a gate,
#   --rollout-key: the online key that signs rollout.json)
#     └ hq-1: a mirror
#         └ branch-b: b-1 and b-2, two proxy relays (one group, ring early),
#           --prefetch-include '**'
#
# ROLLOUT_AGENTS agents (`relayd loadgen --group branch-b --watch`, each a
# pkg/agent verifying every byte) hold generation 1: ROLLOUT_FILES patches
# of ROLLOUT_FILE_KB (the scenario measures the gate, not transfer; a
# ROLLOUT_PACKAGE_KB package can be added). Generation 2 is
# published: the canary ring opens, ring early stays on 1 while hq and the
# branch relays fetch generation 2 in the background. Once hq has stopped
# serving the branch (quiet for ROLLOUT_SETTLE s), `relayd rollout promote`
# opens ring early.
#
#   gate_to_all_ms   promote started → the last agent of the ring synced
#                    generation 2 (loadgen's "last updated at", unix ms;
#                    target ≤ 2000)
#   updated_ms       first notification → last agent synced (loadgen)
#   wan_objects / wan_bytes
#                    object requests and body bytes the origin and hq-1
#                    served from the promote to the end (target 0: every
#                    byte comes from the branch relays)
#   compliance_*     the compliance report at 100 groups × 10,000 agents
#                    each: BenchmarkCompute of pkg/compliance (helper
#                    "outcomes", ROLLOUT_COMPLIANCE_BENCH): CPU per
#                    Compute (ns/op as ms) and the /v1/compliance body's
#                    size (body_bytes)

ROLLOUT_BASE_PORT="${ROLLOUT_BASE_PORT:-19700}" # content i = BASE+i, admin = BASE+20+i, gossip = BASE+40+i
ROLLOUT_AGENTS="${ROLLOUT_AGENTS:-1000}"
ROLLOUT_FILES="${ROLLOUT_FILES:-10}"     # security files, all changed by each generation
ROLLOUT_FILE_KB="${ROLLOUT_FILE_KB:-10}"
ROLLOUT_PACKAGE_KB="${ROLLOUT_PACKAGE_KB:-0}" # and a package of this size (0: none)
ROLLOUT_TIMEOUT="${ROLLOUT_TIMEOUT:-300}" # s for the agents to connect, and again after the promote
ROLLOUT_SETTLE="${ROLLOUT_SETTLE:-3}"     # s of no request at hq-1 that end the pre-positioning
ROLLOUT_COMPLIANCE_BENCH="${ROLLOUT_COMPLIANCE_BENCH:-BenchmarkCompute/100groups_x_10000agents}"

# Relays by index: 0 origin, 1 hq-1, 2 b-1, 3 b-2.
rollout_port() { echo $((ROLLOUT_BASE_PORT + $1)); }
rollout_admin() { echo "http://127.0.0.1:$((ROLLOUT_BASE_PORT + 20 + $1))"; }

rollout_stop() {
	local i
	halt rollout-loadgen
	for i in 3 2 1 0; do halt "rollout-$i"; done
}

# rollout_gen N: write generation N of the tree (every file changes).
rollout_gen() {
	local d="$STATE/rollout/tree" i
	mkdir -p "$d/security"
	for ((i = 0; i < ROLLOUT_FILES; i++)); do
		head -c "$((ROLLOUT_FILE_KB << 10))" /dev/urandom >"$d/security/kb-$i.patch"
	done
	if ((ROLLOUT_PACKAGE_KB > 0)); then
		mkdir -p "$d/software"
		head -c "$((ROLLOUT_PACKAGE_KB << 10))" /dev/urandom >"$d/software/agent.pkg"
	fi
	"$RELAYD_BIN" publish "$d" --keys "$STATE/rollout/keys" >/dev/null
}

# rollout_keys: a key per top-level role and the rollout key, the TUF
# repository with the rollout role, the plan.
rollout_keys() {
	local k="$STATE/rollout/keys" r
	mkdir -p "$k" "$STATE/rollout/tree"
	for r in root targets snapshot timestamp rollout; do
		"$RELAYD_BIN" keygen --role "$r" --out "$k" >/dev/null || return 1
	done
	"$RELAYD_BIN" tuf init "$STATE/rollout/tree" --keys "$k" --rollout-key "$k/rollout.pub" >/dev/null || return 1
	cp "$STATE/rollout/tree/-/tuf/1.root.json" "$k/root.json"
	cat >"$STATE/rollout/plan.yaml" <<-'EOF'
		name: bench
		rings:
		  - {name: canary, groups: ["branch-a"], soak: 1h}
		  - {name: early, groups: ["branch-b"], soak: 1h}
		  - {name: broad, groups: ["*"]}
		gate: {min_agents: 1, success: 0.95, max_failures: 0.02}
	EOF
}

# rollout_relay I NODE GROUP MODE UPSTREAM LOGLEVEL [ARGS...]
rollout_relay() {
	local i="$1" node="$2" group="$3" mode="$4" up="$5" level="$6" args
	shift 6
	mkdir -p "$STATE/rollout/data-$i"
	args=(serve --mode "$mode" --node "$node" --group "$group" --upstream "$up" --root "$STATE/rollout/keys/root.json"
		--tree-key-file "$STATE/rollout/tree-key/tree.key" --data-dir "$STATE/rollout/data-$i"
		--listen "127.0.0.1:$(rollout_port "$i")" --admin "127.0.0.1:$((ROLLOUT_BASE_PORT + 20 + i))"
		--gossip "127.0.0.1:$((ROLLOUT_BASE_PORT + 40 + i))" --log-level "$level" "$@")
	relayd_spawn "rollout-$i" --healthz "$(rollout_port "$i")" "${args[@]}" || return 1
	command_line rollout "$RELAYD_BIN ${args[*]}"
}

# rollout_agents FIELD: FIELD of GET /v1/agents summed over b-1 and b-2.
rollout_agents() {
	local i n s=0
	for i in 2 3; do
		n="$(curl -s -m 10 "$(rollout_admin "$i")/v1/agents" 2>/dev/null | head -c 4096 | grep -o "\"$1\":[0-9]*" | head -n 1 | cut -d: -f2)"
		s=$((s + ${n:-0}))
	done
	echo "$s"
}

# rollout_start: keys, generation 1, the origin, hq-1, b-1 and b-2.
rollout_start() {
	local oargs up
	rm -rf "$STATE/rollout"
	rollout_keys && "$RELAYD_BIN" keygen --tree --out "$STATE/rollout/tree-key" >/dev/null && rollout_gen || return 1
	mkdir -p "$STATE/rollout/data-0"
	oargs=(serve --mode origin --node origin --root "$STATE/rollout/tree" --data-dir "$STATE/rollout/data-0"
		--tree-key-file "$STATE/rollout/tree-key/tree.key" --rollout-plan "$STATE/rollout/plan.yaml"
		--rollout-key "$STATE/rollout/keys/rollout.key" --listen "127.0.0.1:$(rollout_port 0)"
		--admin "127.0.0.1:$((ROLLOUT_BASE_PORT + 20))" --gossip= --log-level info)
	relayd_spawn rollout-0 --healthz "$(rollout_port 0)" "${oargs[@]}" || return 1
	command_line rollout "rollout_keys (relayd keygen --role root|targets|snapshot|timestamp|rollout, relayd tuf init TREE --keys K --rollout-key K/rollout.pub) && $RELAYD_BIN publish TREE --keys K"
	command_line rollout "$RELAYD_BIN ${oargs[*]}"
	rollout_relay 1 hq-1 hq mirror "http://127.0.0.1:$(rollout_port 0)" info || return 1
	up="http://127.0.0.1:$(rollout_port 1)"
	rollout_relay 2 b-1 branch-b proxy "$up" warn --cache-max 4GiB --prefetch-include '**' || return 1
	rollout_relay 3 b-2 branch-b proxy "$up" warn --cache-max 4GiB --prefetch-include '**' \
		--join "127.0.0.1:$((ROLLOUT_BASE_PORT + 42))" || return 1
}

# rollout_wan LOG MARK: "objects bytes" the content port of a relayd
# served after line MARK of its log (the admin API's lines left out).
rollout_wan() {
	local f="$STATE/rollout/wan.log" n
	tail -n +"$(($2 + 1))" "$1" | grep -v '"component":"admin"' >"$f" || true
	n="$(relayd_log_mark "$f")"
	relayd_requests "$f" 0 "$n" | cut -d' ' -f1,2
}

# rollout_compliance: the compliance benchmark of pkg/compliance, as
# "ms bytes" ("NA NA" when it does not run).
rollout_compliance() {
	local out line ns size
	out="$LOGS/rollout-compliance-bench.txt"
	(cd "$REPO_ROOT" && go test -run '^$' -bench "$ROLLOUT_COMPLIANCE_BENCH" -benchmem -count 1 ./pkg/compliance) >"$out" 2>&1 || true
	command_line rollout "go test -run '^\$' -bench '$ROLLOUT_COMPLIANCE_BENCH' -benchmem -count 1 ./pkg/compliance"
	line="$(grep -E '^Benchmark' "$out" | head -n 1)"
	ns="$(grep -oE '[0-9.]+ ns/op' <<<"$line" | cut -d' ' -f1)"
	size="$(grep -oE '[0-9.]+ body_bytes' <<<"$line" | cut -d' ' -f1)"
	[[ -n $line ]] && log "rollout: $line"
	echo "$(num 'a/1e6' a="${ns:-x}") $(NUM_DP=0 num 'a' a="${size:-x}")"
}

scenario_rollout() {
	local t0 t_gate out line gen2 last n m0 m1 og ob hg hb prev cur quiet_since comp lg
	relayd_only rollout || return 0
	describe rollout "A gate opening for a ring of $ROLLOUT_AGENTS agents (\`relayd loadgen --group branch-b --watch\`) behind two branch relays (proxies, --prefetch-include '**') below an hq mirror and a relayd origin with a rollout plan. Generation 2 ($ROLLOUT_FILES files of $ROLLOUT_FILE_KB KiB and a package of ${ROLLOUT_PACKAGE_KB} KiB (0: none), all changed) is published and pre-positioned while the ring stays on generation 1; then \`relayd rollout promote\` opens it. gate_to_all_ms = promote started → last agent synced generation 2 (target ≤ 2000); wan_* = object requests and bytes the origin and hq served after the promote (target 0); compliance_* = pkg/compliance's benchmark (100 groups × 10,000 agents)."
	rollout_stop
	rollout_start || {
		result rollout relayd error=start_failed
		rollout_stop
		return 0
	}
	# Ring early takes generation 1 (a no-op if the first generation opened every ring).
	"$RELAYD_BIN" rollout promote early --admin "$(rollout_admin 0)" >/dev/null 2>&1 || true
	out="$LOGS/rollout-loadgen.out"
	: >"$out"
	lg=(loadgen --relay "http://127.0.0.1:$(rollout_port 2),http://127.0.0.1:$(rollout_port 3)" --root "$STATE/rollout/keys/root.json"
		--group branch-b --agents "$ROLLOUT_AGENTS" --watch --stop-after-updates 1 --sync-jitter 0
		--duration "$((2 * ROLLOUT_TIMEOUT + 120))s" --id-prefix rollout-)
	spawn rollout-loadgen "$out" "$RELAYD_BIN" "${lg[@]}"
	command_line rollout "$RELAYD_BIN ${lg[*]}"
	t0=$SECONDS
	until [[ "$(rollout_agents agents)" == "$ROLLOUT_AGENTS" && "$(rollout_agents at_newest)" == "$ROLLOUT_AGENTS" ]]; do
		if ((SECONDS - t0 >= ROLLOUT_TIMEOUT)) || ! alive "${PIDS[rollout-loadgen]}"; then
			warn "rollout: $(rollout_agents agents) agents, $(rollout_agents at_newest) at generation 1; loadgen: $(tail -n 3 "$out" | tr '\n' ' ')"
			result rollout relayd "agents=$ROLLOUT_AGENTS error=agents_not_on_generation_1"
			rollout_stop
			return 0
		fi
		sleep 0.5
	done
	log "rollout: $ROLLOUT_AGENTS agents on generation 1 after $((SECONDS - t0))s; publishing generation 2"
	n="$(relayd_log_mark "$LOGS/rollout-1.log")"
	rollout_gen
	command_line rollout "$RELAYD_BIN publish TREE --keys K   # generation 2; then, once hq is quiet: $RELAYD_BIN rollout promote --admin $(rollout_admin 0)"
	# Pre-positioning: hq-1 serves the branch, then goes quiet.
	t0=$SECONDS prev=-1 quiet_since=$SECONDS
	while ((SECONDS - t0 < ROLLOUT_TIMEOUT)); do
		cur="$(relayd_log_mark "$LOGS/rollout-1.log")"
		[[ $cur != "$prev" ]] && quiet_since=$SECONDS prev=$cur
		read -r og _ < <(relayd_requests "$LOGS/rollout-1.log" "$n" "$cur")
		((og >= ROLLOUT_FILES + (ROLLOUT_PACKAGE_KB > 0) && SECONDS - quiet_since >= ROLLOUT_SETTLE)) && break
		sleep 0.5
	done
	if ! alive "${PIDS[rollout-loadgen]}"; then
		warn "rollout: loadgen ended before the gate opened: $(tail -n 3 "$out" | tr '\n' ' ')"
		result rollout relayd "agents=$ROLLOUT_AGENTS error=updated_before_gate"
		rollout_stop
		return 0
	fi
	log "rollout: hq-1 served $og objects for the pre-positioning; promoting ring early"
	quiet
	m0="$(relayd_log_mark "$LOGS/rollout-0.log")"
	m1="$(relayd_log_mark "$LOGS/rollout-1.log")"
	t_gate="$(now_ms)"
	"$RELAYD_BIN" rollout promote --admin "$(rollout_admin 0)" >"$LOGS/rollout-promote.out" 2>&1 ||
		warn "rollout: relayd rollout promote failed: $(head -n 3 "$LOGS/rollout-promote.out" | tr '\n' ' ')"
	t0=$SECONDS
	while alive "${PIDS[rollout-loadgen]}" && ((SECONDS - t0 < ROLLOUT_TIMEOUT)); do sleep 0.1; done
	halt rollout-loadgen
	line="$(grep -h '^LOADGEN ' "$out" || echo "LOADGEN failed")"
	gen2="$(grep -h '^generation 2: first notified at' "$out" | tail -n 1)"
	last="$(sed -E 's/.*last updated at ([0-9]+) ms.*/\1/' <<<"$gen2")"
	[[ $last =~ ^[0-9]+$ ]] || last=NA
	sleep 0.3 # let the logs settle
	read -r og ob < <(rollout_wan "$LOGS/rollout-0.log" "$m0")
	read -r hg hb < <(rollout_wan "$LOGS/rollout-1.log" "$m1")
	log "rollout: $line"
	comp="$(rollout_compliance)"
	result rollout relayd "agents=$ROLLOUT_AGENTS gate_to_all_ms=$(num 'b-a' a="$t_gate" b="$last") updated_ms=$(kv updated_ms "$line")" \
		"wan_objects=$((og + hg)) wan_bytes=$((ob + hb)) syncs_ok=$(kv ok "$line") syncs_failed=$(kv failed "$line")" \
		"compliance_ms=${comp% *} compliance_bytes=${comp#* }"
	rollout_stop
}
