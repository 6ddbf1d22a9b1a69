#!/usr/bin/env bash
# Runs every FuzzXxx target of every module for a bounded time each (default 10s).
# Usage: scripts/fuzz.sh [fuzztime per target] [module-dir-filter]
# A crash is a bug: the failing input is written under the package's testdata/fuzz/.
set -euo pipefail
cd "$(dirname "$0")/.."
T="${1:-10s}"
filter="${2:-}"
mods=(libs services/polaris services/lbclient services/atom services/loader services/webgate tools)
fail=0
for m in "${mods[@]}"; do
  [[ -n "$filter" && "$m" != *"$filter"* ]] && continue
  for pkg in $(cd "$m" && go list ./...); do
    for f in $(cd "$m" && go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true); do
      echo "== $m $pkg $f ($T)"
      (cd "$m" && go test -run='^$' -fuzz="^$f\$" -fuzztime="$T" "$pkg") || fail=1
    done
  done
done
exit $fail
