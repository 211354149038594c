#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# run.sh: relayd's benchmark, side by side with nginx proxy_cache (and
# varnish where installed), in one run on loopback. `make bench` calls it.
#
#   SCENARIOS="hit small herd mixed rss publish mirror group tree agents hostile tuf compress rollout"   which scenarios, in this order
#                                          (publish mirror group tree agents hostile tuf compress rollout: relayd only)
#   TARGETS="nginx relayd varnish"         which caches (varnish: if installed)
#   RELAYD_BIN=/path/to/relayd             default: go build ./cmd/relayd
#   RELAYD_ARGS="--flag ..."               extra flags for relayd serve
#   SKIP_GOBENCH=1                         skip the Go micro-benchmarks
#   BENCH_WORK=/tmp/relayd-bench           where everything generated goes
#
# Prints one RESULT line per scenario and target, then markdown tables
# (also in $BENCH_WORK/report.md). See scripts/bench/README.md.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$BENCH_DIR/targets.sh"
source "$BENCH_DIR/scenarios/hit.sh"
source "$BENCH_DIR/scenarios/small.sh"
source "$BENCH_DIR/scenarios/herd.sh"
source "$BENCH_DIR/scenarios/mixed.sh"
source "$BENCH_DIR/scenarios/rss.sh"
source "$BENCH_DIR/scenarios/publish.sh"
source "$BENCH_DIR/scenarios/mirror.sh"
source "$BENCH_DIR/scenarios/group.sh"
source "$BENCH_DIR/scenarios/agents.sh"
source "$BENCH_DIR/scenarios/tree.sh"
source "$BENCH_DIR/scenarios/hostile.sh"
source "$BENCH_DIR/scenarios/tuf.sh"
source "$BENCH_DIR/scenarios/compress.sh"
source "$BENCH_DIR/scenarios/rollout.sh"

SCENARIOS="${SCENARIOS:-hit small herd mixed rss publish mirror group tree agents hostile tuf compress rollout}"
TARGETS="${TARGETS:-nginx relayd varnish}"
SKIP_GOBENCH="${SKIP_GOBENCH:-0}"
STAMP="$(date +%Y%m%d-%H%M%S)"
KNOWN_SCENARIOS="hit small herd mixed rss publish mirror group tree agents hostile tuf compress rollout"
# Scenarios that measure through the nginx origin (and so need nginx), and
# those that need wrk. publish, mirror, group, tree, agents, hostile, tuf, compress and rollout run relayd alone.
NGINX_SCENARIOS=" hit small herd mixed rss "
WRK_SCENARIOS=" small mixed "

# wants LIST: some scenario in SCENARIOS is in LIST (" a b ").
wants() {
	local s
	for s in $SCENARIOS; do [[ $1 == *" $s "* ]] && return 0; done
	return 1
}

# Whatever happens (error, Ctrl-C, kill), stop every server we started.
cleanup() {
	trap - EXIT INT TERM
	stop_client
	stop_sampler
	halt_all
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# ------------------------------------------------------------ tools -------
# need_tools: nginx and wrk (when a scenario uses them), curl, ss; apt-get
# installs what is missing when we are root, otherwise say what to install.
need_tools() {
	local pkgs=()
	wants "$NGINX_SCENARIOS" && [[ ! -x $NGINX_BIN ]] && pkgs+=(nginx)
	wants "$WRK_SCENARIOS" && ! command -v wrk >/dev/null && pkgs+=(wrk)
	command -v curl >/dev/null || pkgs+=(curl)
	command -v ss >/dev/null || pkgs+=(iproute2)
	if ((${#pkgs[@]})); then
		if [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null; then
			log "installing ${pkgs[*]} with apt-get (the nginx package may start a system nginx on :80; the benchmark does not use it)"
			DEBIAN_FRONTEND=noninteractive apt-get update -qq
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >&2
			NGINX_BIN="$(command -v nginx || echo /usr/sbin/nginx)"
		else
			die "missing ${pkgs[*]}: install them first (Debian/Ubuntu: sudo apt-get install -y ${pkgs[*]}), or run as root to let this script do it"
		fi
	fi
	command -v go >/dev/null || die "go is not on PATH (the version in go.mod is needed to build the helpers)"
}

# pick_targets: validate TARGETS; drop varnish when it is not installed and
# relayd when it cannot be built or found (the report says so).
SKIPPED=()
pick_targets() {
	local t
	TARGET_LIST=""
	for t in $TARGETS; do
		case "$t" in
		nginx) ;;
		varnish)
			if [[ ! -x $VARNISHD_BIN ]]; then
				log "varnish is not installed: skipping it (apt-get install varnish to compare with it too)"
				SKIPPED+=("varnish (not installed)")
				continue
			fi
			;;
		relayd)
			if [[ -z $RELAYD_BIN ]]; then
				RELAYD_BIN="$BIN/relayd"
				log "building relayd: go build -o $RELAYD_BIN ./cmd/relayd"
				if ! (cd "$REPO_ROOT" && go build -o "$RELAYD_BIN" ./cmd/relayd) >"$LOGS/relayd-build.log" 2>&1; then
					warn "relayd does not build, skipping it: $(head -n 3 "$LOGS/relayd-build.log" | tr '\n' ' ')"
					SKIPPED+=("relayd (go build ./cmd/relayd failed, see $LOGS/relayd-build.log)")
					continue
				fi
			elif [[ ! -x $RELAYD_BIN ]]; then
				warn "RELAYD_BIN=$RELAYD_BIN is not an executable, skipping relayd"
				SKIPPED+=("relayd (RELAYD_BIN=$RELAYD_BIN is not an executable)")
				continue
			fi
			;;
		*)
			warn "unknown target '$t' (known: nginx relayd varnish), skipping it"
			SKIPPED+=("$t (unknown target)")
			continue
			;;
		esac
		TARGET_LIST+="${TARGET_LIST:+ }$t"
	done
	[[ -n $TARGET_LIST ]] || die "no target left to measure"
}

# ------------------------------------------------------------ header ------
# relayd_version: `relayd --version` where it has one, and the checkout's
# git revision (the binary may say only "dev").
relayd_version() {
	local v="" g
	if [[ -x ${RELAYD_BIN:-} ]]; then
		v="$(timeout 5 "$RELAYD_BIN" --version 2>/dev/null | head -n 1 || true)"
	fi
	g="git $(git -C "$REPO_ROOT" describe --always --dirty 2>/dev/null || echo '(no commits yet)')"
	echo "${v:+$v, }$g"
}

header() {
	echo "# date: $(date -u '+%F %T UTC')"
	echo "# machine: $(nproc) CPUs, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), $(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM, $(uname -sr)"
	echo "# go: $(go version | awk '{ print $3 }')"
	if [[ -x $NGINX_BIN ]]; then
		echo "# nginx: $("$NGINX_BIN" -v 2>&1 | sed 's/^nginx version: //')"
	fi
	if command -v wrk >/dev/null; then
		echo "# wrk: $(wrk -v 2>&1 | head -n 1 | awk '{ print $2 }')"
	fi
	if [[ " $TARGET_LIST " == *" varnish "* ]]; then
		echo "# varnish: $("$VARNISHD_BIN" -V 2>&1 | head -n 1 | sed -E 's/.*\((varnish-[^ ]+).*/\1/')"
	fi
	if [[ " $TARGET_LIST " == *" relayd "* ]]; then
		echo "# relayd: $(relayd_version)${RELAYD_ARGS:+ (RELAYD_ARGS=$RELAYD_ARGS)}"
	fi
	local s
	for s in "${SKIPPED[@]}"; do echo "# skipped: $s"; done
	echo "# run: TARGETS=\"$TARGET_LIST\" SCENARIOS=\"$SCENARIOS\" scripts/bench/run.sh (SLOW_RATE=$SLOW_RATE B/s, NGINX_SENDFILE=$NGINX_SENDFILE_DEFAULT)"
}

# ------------------------------------------------------------ main --------
main() {
	local t0=$SECONDS s
	need_tools
	mkdir -p "$BIN" "$CORPUS" "$CONF" "$RUN" "$STATE"
	rm -rf "$LOGS" && mkdir -p "$LOGS" # raw logs of this run only
	reap_stale
	RESULTS_FILE="${RESULTS_FILE:-$BENCH_WORK/results-$STAMP.txt}"
	# Used by the nginx templates (render). As root, nginx workers would
	# switch to "nobody", which cannot write the cache dir we own.
	# shellcheck disable=SC2034
	NGINX_USER=""
	# shellcheck disable=SC2034
	[[ $EUID -eq 0 ]] && NGINX_USER="user root;"

	log "building helpers into $BIN"
	(cd "$REPO_ROOT" && go build -o "$BIN/" ./scripts/bench/cmd/...)

	if [[ $SKIP_GOBENCH != 1 ]]; then
		log "Go micro-benchmarks: go test -run='^\$' -bench=. -benchmem ./pkg/..."
		(cd "$REPO_ROOT" && go test -run='^$' -bench=. -benchmem ./pkg/... 2>&1 | tee "$BENCH_WORK/gobench.txt") ||
			warn "go test -bench failed (see $BENCH_WORK/gobench.txt); going on with the load scenarios"
	fi

	pick_targets
	log "corpus in $CORPUS (the first run writes 1.3 GB)"
	"$BIN/gendata" -out "$CORPUS" >&2

	header | tee -a "$RESULTS_FILE"
	if wants "$NGINX_SCENARIOS"; then origin_start; fi
	for s in $SCENARIOS; do
		if [[ " $KNOWN_SCENARIOS " != *" $s "* ]] || ! declare -F "scenario_$s" >/dev/null; then
			warn "unknown scenario '$s' (known: $KNOWN_SCENARIOS), skipping it"
			continue
		fi
		log "=== scenario $s"
		"scenario_$s"
	done
	halt_all

	log "all done in $((SECONDS - t0)) s; results in $RESULTS_FILE"
	local gb=()
	[[ $SKIP_GOBENCH != 1 && -f $BENCH_WORK/gobench.txt ]] && gb=(-gobench "$BENCH_WORK/gobench.txt")
	"$BIN/report" "${gb[@]}" "$RESULTS_FILE" | tee "$BENCH_WORK/report.md"
	log "report in $BENCH_WORK/report.md"
}

main "$@"
