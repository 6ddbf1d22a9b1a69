#!/usr/bin/env bash
# Runs every FuzzXxx target of every module for a bounded time each (default 10s).
# Usage: scripts/fuzz.sh [fuzztime per target] [module-dir-filter]
# A crash is a bug: the failing input is written under the package's testdata/fuzz/<target>/
# and the run fails. Go's fuzz runner sometimes ends a clean run with "context deadline
# exceeded" as its time runs out (a coordinator/worker race, no input at fault): when that
# is the only complaint and no new crasher file was written, the target counts as passed.
set -euo pipefail
cd "$(dirname "$0")/.."
T="${1:-10s}"
filter="${2:-}"
mods=(libs services/polaris services/lbclient services/atom services/loader services/webgate tools)
out=$(mktemp)
trap 'rm -f "$out"' EXIT

# crashers lists the files of target $2's corpus directory in package directory $1.
crashers() { find "$1/testdata/fuzz/$2" -type f 2>/dev/null | sort || true; }

fail=0
flakes=0
for m in "${mods[@]}"; do
  [[ -n "$filter" && "$m" != *"$filter"* ]] && continue
  for pkg in $(cd "$m" && go list ./...); do
    for f in $(cd "$m" && go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true); do
      echo "== $m $pkg $f ($T)"
      dir=$(cd "$m" && go list -f '{{.Dir}}' "$pkg")
      before=$(crashers "$dir" "$f")
      if (cd "$m" && go test -run='^$' -fuzz="^$f\$" -fuzztime="$T" "$pkg") >"$out" 2>&1; then
        cat "$out"
        continue
      fi
      cat "$out"
      after=$(crashers "$dir" "$f")
      if [[ "$before" == "$after" ]] && grep -q 'context deadline exceeded' "$out"; then
        echo "-- $f: the fuzz runner ended with \"context deadline exceeded\" and wrote no crasher: counted as passed"
        flakes=$((flakes + 1))
        continue
      fi
      if [[ "$before" != "$after" ]]; then
        echo "-- $f: crasher written:"
        comm -13 <(echo "$before") <(echo "$after") | sed 's/^/   /'
      fi
      fail=1
    done
  done
done
[[ $flakes -gt 0 ]] && echo "fuzz: $flakes target(s) ended with the runner's deadline flake and no crasher"
exit $fail
