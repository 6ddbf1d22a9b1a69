#!/usr/bin/env bash
# Regenerates the Go code for every .proto under libs/proto, beside the .proto files or,
# with an argument, into that directory (used by verify-proto to diff against the tree).
# protoc-gen-go-vtproto adds *_vtproto.pb.go: reflection-free MarshalVT/UnmarshalVT/SizeVT,
# which libs/grpcx's codec uses on every hop. Only marshal, unmarshal and size: UnmarshalVT
# copies bytes and strings out of the wire buffer (no unmarshal_unsafe, as grpc reuses that
# buffer), and no pool (handlers keep messages after the call, so none can go back to a pool).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.tools/bin:$PATH"
out="${1:-$PWD/libs/proto}"
mkdir -p "$out"
cd libs/proto
# Only the request path's messages (atom, lb, loader) get vtprotobuf code: polaris' control
# plane stays on protobuf-go, which refuses strings that are not UTF-8 (registrations,
# labels, config names) where the generated code would let them through.
for f in */v1/*.proto; do
  vt=()
  case "$f" in
    atom/*|lb/*|loader/*) vt=(--go-vtproto_out="$out" --go-vtproto_opt=paths=source_relative,features=marshal+unmarshal+size) ;;
  esac
  protoc -I . --go_out="$out" --go_opt=paths=source_relative \
    --go-grpc_out="$out" --go-grpc_opt=paths=source_relative "${vt[@]}" "$f"
done
