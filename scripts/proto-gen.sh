#!/usr/bin/env bash
# Regenerates the Go code for every .proto under libs/proto, beside the .proto files or,
# with an argument, into that directory (used by verify-proto to diff against the tree).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.tools/bin:$PATH"
out="${1:-$PWD/libs/proto}"
mkdir -p "$out"
cd libs/proto
for f in */v1/*.proto; do
  protoc -I . --go_out="$out" --go_opt=paths=source_relative \
    --go-grpc_out="$out" --go-grpc_opt=paths=source_relative "$f"
done
