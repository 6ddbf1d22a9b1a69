#!/usr/bin/env bash
# Runs the tests of every module (race detector on) and then the cross-service tests.
# `scripts/test.sh unit` skips the cross-service module.
set -euo pipefail
cd "$(dirname "$0")/.."
mods=(libs services/polaris services/lbclient services/atom services/loader services/webgate tools sdk/go tools/asectl)
[ "${1:-}" = unit ] || mods+=(tests)
fail=0
for m in "${mods[@]}"; do
  echo "=== $m"
  (cd "$m" && go vet ./... && go test -race -count=1 -timeout 10m ./...) || fail=1
done
if [ $fail != 0 ]; then echo "FAIL"; exit 1; fi
echo "all modules passed"
