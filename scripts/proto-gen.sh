#!/usr/bin/env bash
# Regenerates the Go code beside every .proto under libs/proto.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.tools/bin:$PATH"
cd libs/proto
for f in */v1/*.proto; do
  protoc -I . --go_out=. --go_opt=paths=source_relative \
    --go-grpc_out=. --go-grpc_opt=paths=source_relative "$f"
done
