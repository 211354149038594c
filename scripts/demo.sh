#!/usr/bin/env bash
# make demo: the whole tree on loopback (origin, mirror group, branches,
# simulated agents), a publish and a failure, and a summary. Needs only Go.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "starting the demo driver (scripts/demo; go run compiles it first)..." >&2
exec go run ./scripts/demo --relayd "${RELAYD_BIN:-bin/relayd}" "$@"
