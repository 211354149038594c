#!/usr/bin/env bash
# make demo: an origin and a relay on loopback, every object fetched through
# the relay twice, and a table of what came from where. Needs only Go.
set -euo pipefail
cd "$(dirname "$0")/.."
exec go run ./scripts/demo --relayd "${RELAYD_BIN:-bin/relayd}" "$@"
