#!/usr/bin/env bash
# Installs protoc (Debian protobuf-compiler) and the pinned Go plugins (protoc-gen-go,
# protoc-gen-go-grpc, protoc-gen-go-vtproto) into .tools/bin.
set -euo pipefail
cd "$(dirname "$0")/.."
PROTOC_GEN_GO=v1.36.12
PROTOC_GEN_GO_GRPC=v1.5.1
PROTOC_GEN_GO_VTPROTO=v0.6.0
if ! command -v protoc >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq protobuf-compiler >/dev/null
  else
    echo "protoc missing: install Debian's protobuf-compiler" >&2; exit 1
  fi
fi
mkdir -p .tools/bin
export GOBIN="$PWD/.tools/bin" GOWORK=off GOFLAGS=-mod=mod
want() { [ -x ".tools/bin/$1" ] && [ "$(cat ".tools/bin/$1.version" 2>/dev/null)" = "$2" ]; }
want protoc-gen-go $PROTOC_GEN_GO || { go install google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO && echo $PROTOC_GEN_GO > .tools/bin/protoc-gen-go.version; }
want protoc-gen-go-grpc $PROTOC_GEN_GO_GRPC || { go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$PROTOC_GEN_GO_GRPC && echo $PROTOC_GEN_GO_GRPC > .tools/bin/protoc-gen-go-grpc.version; }
want protoc-gen-go-vtproto $PROTOC_GEN_GO_VTPROTO || { go install github.com/planetscale/vtprotobuf/cmd/protoc-gen-go-vtproto@$PROTOC_GEN_GO_VTPROTO && echo $PROTOC_GEN_GO_VTPROTO > .tools/bin/protoc-gen-go-vtproto.version; }
