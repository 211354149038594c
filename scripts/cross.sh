#!/usr/bin/env bash
# Builds relayd and vets the agent side for the systems agents run on:
# Windows, macOS and Linux on arm64 (the relay itself is built for Linux;
# elsewhere it does without what is Linux-only, see README "Platforms").
set -euo pipefail
cd "$(dirname "$0")/.."
go="${GO:-go}"
targets="${CROSS_TARGETS:-windows/amd64 darwin/arm64 linux/arm64}"
for t in $targets; do
	echo "== $t: build ./cmd/relayd, vet ./pkg/agent/... ./pkg/cleanpath/... ./internal/atomicfile/..."
	GOOS="${t%/*}" GOARCH="${t#*/}" "$go" build -o /dev/null ./cmd/relayd
	GOOS="${t%/*}" GOARCH="${t#*/}" "$go" vet ./pkg/agent/... ./pkg/cleanpath/... ./internal/atomicfile/...
done
