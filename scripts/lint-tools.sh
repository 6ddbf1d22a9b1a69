#!/usr/bin/env bash
# Installs the pinned linters that `make verify` runs into .tools/bin.
set -euo pipefail
cd "$(dirname "$0")/.."
STATICCHECK=v0.8.2
mkdir -p .tools/bin
export GOBIN="$PWD/.tools/bin" GOWORK=off GOFLAGS=-mod=mod
want() { [ -x ".tools/bin/$1" ] && [ "$(cat ".tools/bin/$1.version" 2>/dev/null)" = "$2" ]; }
want staticcheck $STATICCHECK || { go install honnef.co/go/tools/cmd/staticcheck@$STATICCHECK && echo $STATICCHECK > .tools/bin/staticcheck.version; }
