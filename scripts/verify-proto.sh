#!/usr/bin/env bash
# Fails when the committed generated code differs from what `make proto` produces.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
./scripts/proto-gen.sh "$tmp"
status=0
for f in $(cd "$tmp" && find . -name '*.go' | sort); do
  if ! cmp -s "$tmp/$f" "libs/proto/$f"; then echo "drift: libs/proto/${f#./}"; status=1; fi
done
for f in $(cd libs/proto && find . -name '*.pb.go' | sort); do
  [ -f "$tmp/$f" ] || { echo "stale: libs/proto/${f#./} (no .proto generates it)"; status=1; }
done
[ $status = 0 ] && echo "generated protobuf code is up to date"
exit $status
