# shellcheck shell=bash
# mirror: a relayd mirror's first full sync of the published tree (the
# publish scenario's, generation 1) from a relayd origin, then a sync when
# nothing changed.
#
#   origin: relayd serve --mode origin --root $BENCH_WORK/tree, log level
#           info: its JSON access log ("message":"request" lines, with
#           "path") counts what reached it
#   mirror: relayd serve --mode mirror --upstream <origin> --root ROOT.json ...
#           --mirror-workers MIRROR_WORKERS, empty data directory
#
# Initial sync: from starting the mirror until GET /v1/sync (polled every
# 100 ms with `relayd sync --status --json`) says in-sync at generation 1.
# No-change sync: `relayd sync --follow` (POST /v1/sync, then follow): wall
# time, and what it asked the origin for (the catalog only, answered 304).

MIRROR_ORIGIN_PORT="${MIRROR_ORIGIN_PORT:-19490}"
MIRROR_PORT="${MIRROR_PORT:-19491}"             # mirror content port
MIRROR_ADMIN_PORT="${MIRROR_ADMIN_PORT:-19492}" # mirror admin API
MIRROR_WORKERS="${MIRROR_WORKERS:-8}"
MIRROR_TIMEOUT="${MIRROR_TIMEOUT:-180}" # s for the initial sync

# mirror_progress: the mirror's GET /v1/sync JSON on one line ("" if it
# does not answer).
mirror_progress() {
	timeout 5 "$RELAYD_BIN" sync --status --json --admin "http://127.0.0.1:$MIRROR_ADMIN_PORT" 2>/dev/null | tr -d '\n' || true
}

# mirror_api_sync_ms: POST /v1/sync, then GET /v1/sync every 20 ms until
# "finished" changes: how long the mirror itself takes for a sync, without
# `relayd sync --follow`'s polling (from 20 ms, backing off) (NA after 10 s).
mirror_api_sync_ms() {
	local a="http://127.0.0.1:$MIRROR_ADMIN_PORT/v1/sync" before f t0 t1
	before="$(json_str finished "$(curl -s -m 2 "$a" || true)")"
	t0="$(now_ms)"
	curl -s -m 2 -o /dev/null -X POST "$a" || {
		echo NA
		return
	}
	while :; do
		f="$(json_str finished "$(curl -s -m 2 "$a" || true)")"
		t1="$(now_ms)"
		[[ -n $f && $f != "$before" ]] && break
		if ((t1 - t0 > 10000)); then
			echo NA
			return
		fi
		sleep 0.02
	done
	echo $((t1 - t0))
}

# json_str KEY JSON / json_num KEY JSON: a top-level string / number field.
json_str() { grep -oE "\"$1\":\"[^\"]*\"" <<<"$2" | head -n 1 | cut -d'"' -f4 || true; }
json_num() { grep -oE "\"$1\":-?[0-9.e+]+" <<<"$2" | head -n 1 | cut -d: -f2 || true; }

scenario_mirror() {
	local olog data api_ms t0 t1 m0 m1 p sstate gen secs bg0 oc0 occ mcc big chk objs obytes cats cstat ostat out nobjs ncats ncstat ok=yes
	relayd_only mirror || return 0
	describe mirror "First sync of an empty relayd mirror (--mirror-workers $MIRROR_WORKERS) from a relayd origin serving the publish tree ($PUB_OBJECTS files, $((PUB_BYTES / 1048576)) MiB, generation 1), then a sync with nothing new. sync_secs: mirror start → GET /v1/sync in-sync at generation 1 (polled every 100 ms); sync_mbps = tree bytes / sync_secs. origin_*: requests in the origin's access log (objects = paths outside /-/; catalog = /-/tuf/ metadata, statuses tallied). nochange_*: \`relayd sync --follow\` with nothing new: wall time (target < 1 s; the command polls from 20 ms up), object GETs (target 0); nochange_api_ms: the same through the API, POST /v1/sync then GET every 20 ms until it reports a newer finish."
	pub_ensure || {
		result mirror relayd error=publish_failed
		return 0
	}
	olog="$LOGS/mirror-origin.log"
	data="$STATE/mirror"
	rm -rf "${data:?}" "$STATE/mirror-origin"
	mkdir -p "$data" "$STATE/mirror-origin"
	for p in "$MIRROR_PORT" "$MIRROR_ADMIN_PORT"; do
		if listening "$p"; then
			warn "port $p is in use by something else; set MIRROR_PORT / MIRROR_ADMIN_PORT"
			result mirror relayd error=port_in_use
			return 0
		fi
	done
	relayd_spawn mirror-origin --healthz "$MIRROR_ORIGIN_PORT" serve --mode origin --node bench-origin \
		--group "$BENCH_ORIGIN_GROUP" --root "$PUB_TREE" --data-dir "$STATE/mirror-origin" --listen "127.0.0.1:$MIRROR_ORIGIN_PORT" \
		--admin= --gossip= --log-level info || {
		result mirror relayd error=origin_start_failed
		return 0
	}
	command_line mirror "$RELAYD_BIN serve --mode origin --node bench-origin --group $BENCH_ORIGIN_GROUP --root $PUB_TREE --data-dir $STATE/mirror-origin --listen 127.0.0.1:$MIRROR_ORIGIN_PORT --admin= --gossip= --log-level info"

	quiet
	bg0="$BG_CPU"
	oc0="$(proc_cpu "${PIDS[mirror-origin]}")"
	m0="$(relayd_log_mark "$olog")"
	t0="$(now_ms)"
	relayd_spawn mirror serve --mode mirror --node bench-mirror --upstream "http://127.0.0.1:$MIRROR_ORIGIN_PORT" \
		--root "$PUB_KEYS/root.json" --data-dir "$data" --listen "127.0.0.1:$MIRROR_PORT" \
		--admin "127.0.0.1:$MIRROR_ADMIN_PORT" --gossip= --mirror-workers "$MIRROR_WORKERS" --log-level warn
	command_line mirror "$RELAYD_BIN serve --mode mirror --node bench-mirror --upstream http://127.0.0.1:$MIRROR_ORIGIN_PORT --root $PUB_KEYS/root.json --data-dir $data --listen 127.0.0.1:$MIRROR_PORT --admin 127.0.0.1:$MIRROR_ADMIN_PORT --gossip= --mirror-workers $MIRROR_WORKERS --log-level warn"
	command_line mirror "$RELAYD_BIN sync --status --json --admin http://127.0.0.1:$MIRROR_ADMIN_PORT   # every 100 ms until in-sync, generation 1"
	sstate="" gen=""
	while :; do
		p="$(mirror_progress)"
		t1="$(now_ms)"
		sstate="$(json_str state "$p")"
		gen="$(json_num generation "$p")"
		[[ $sstate == in-sync && $gen == 1 ]] && break
		if [[ $sstate == failed ]] || ! alive "${PIDS[mirror]}"; then
			warn "mirror sync failed (state ${sstate:-none}): $p; last lines of $LOGS/mirror.log:"
			tail -n 5 "$LOGS/mirror.log" >&2 || true
			ok=no
			break
		fi
		if ((t1 - t0 > MIRROR_TIMEOUT * 1000)); then
			warn "mirror not in sync after ${MIRROR_TIMEOUT}s: $p"
			ok=no
			break
		fi
		sleep 0.1
	done
	secs="$(NUM_DP=3 num '(b-a)/1000' a="$t0" b="$t1")"
	mcc="$(proc_cpu "${PIDS[mirror]}")"
	occ="$(num 'b-a' a="$oc0" b="$(proc_cpu "${PIDS[mirror-origin]}")")"
	echo "$p" >"$LOGS/mirror-initial.json"
	read -r objs obytes cats cstat ostat < <(relayd_requests "$olog" "$m0")
	log "mirror initial sync: ${secs}s, state $sstate generation $gen; origin: $objs object GETs ($obytes bytes, statuses $ostat), $cats catalog GETs ($cstat)"
	loopback_only mirror

	# The mirror serves what it synced: GET the tree's largest object.
	chk=NA
	if [[ $ok == yes ]]; then
		big="$(grep -v '^#' "$PUB_TREE.txt" | sort -k2,2n | tail -n 1)"
		client "$LOGS/mirror-get.fetch" "$BIN/fetch" -url "http://127.0.0.1:$MIRROR_PORT${big% *}" -size "${big#* }" -timeout 30s && chk=ok || chk=failed
		log "mirror GET ${big% *}: $(<"$LOGS/mirror-get.fetch") $(cat "$LOGS/mirror-get.fetch.err" 2>/dev/null)"
	fi

	# Nothing changed: POST /v1/sync and follow it.
	T_REAL=NA BG_CPU=NA api_ms=NA
	if [[ $ok == yes ]]; then
		quiet
		m1="$(relayd_log_mark "$olog")"
		timed mirror-nochange "$RELAYD_BIN" sync --follow --admin "http://127.0.0.1:$MIRROR_ADMIN_PORT"
		out="$(tr '\n' ' ' <"$LOGS/mirror-nochange.out")"
		((T_RC == 0)) || warn "relayd sync --follow failed (rc $T_RC): $out $(tail -n 3 "$LOGS/mirror-nochange.out.err")"
		read -r nobjs _ ncats ncstat _ < <(relayd_requests "$olog" "$m1")
		log "mirror no-change sync: ${T_REAL}s: $out; origin: $nobjs object GETs, $ncats catalog GETs ($ncstat)"
		command_line mirror "$RELAYD_BIN sync --follow --admin http://127.0.0.1:$MIRROR_ADMIN_PORT   # again, nothing new"
		api_ms="$(mirror_api_sync_ms)"
		log "mirror no-change sync through the API (POST, then GET every 20 ms): $api_ms ms"
		command_line mirror "curl -X POST http://127.0.0.1:$MIRROR_ADMIN_PORT/v1/sync; curl http://127.0.0.1:$MIRROR_ADMIN_PORT/v1/sync   # every 20 ms until \"finished\" changes"
	fi

	result mirror relayd "objects=$(json_num objects_total "$p") sync_secs=$secs" \
		"sync_mbps=$(num 'b/s/1e6' b="$(json_num bytes_total "$p")" s="$secs")" \
		"origin_object_gets=$objs origin_object_mb=$(num 'b/1e6' b="$obytes") object_status=$ostat origin_catalog_gets=$cats catalog_status=$cstat" \
		"sync_state=${sstate:-NA} generation=${gen:-NA} sync_errors=$(json_num errors "$p")" \
		"mirror_cpu_secs=$mcc origin_cpu_secs=$occ serve_check=$chk" \
		"nochange_secs=${T_REAL:-NA} nochange_api_ms=$api_ms nochange_origin_object_gets=${nobjs:-NA} nochange_origin_catalog_gets=${ncats:-NA}" \
		"nochange_catalog_status=${ncstat:-NA} workers=$MIRROR_WORKERS bg_cpu=$bg0/$BG_CPU"
	halt mirror
	halt mirror-origin
	rm -rf "${data:?}" "$STATE/mirror-origin"
}
