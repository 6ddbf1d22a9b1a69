#!/usr/bin/env bash
# Code hygiene on every module that go.work uses (the list is read from go.work, so a module
# added there is checked without editing this script):
#   gofmt -l          no file may need formatting
#   go mod tidy -diff go.mod and go.sum are tidy (each module alone, GOWORK=off)
#   go vet ./...
#   staticcheck ./... (pinned by scripts/lint-tools.sh; scripts/verify-exclude lists the
#                     findings tolerated, each with its reason)
# and then the layering test (tests/layering: which packages may import what, see
# docs/architecture.md). Every check runs; the script fails if any found something.
# `scripts/verify.sh fast` skips staticcheck, the slowest step.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
./scripts/lint-tools.sh || exit 1
excl=$(mktemp)
trap 'rm -f "$excl"' EXIT
grep -v -e '^#' -e '^$' scripts/verify-exclude >"$excl" || true
mapfile -t mods < <(go list -m -f '{{.Dir}}' | sed "s#^$root/##")
fail=0
bad() { echo "verify: $*" >&2; fail=1; }
for m in "${mods[@]}"; do
  echo "=== $m"
  unformatted=$(gofmt -l "$m")
  [ -z "$unformatted" ] || bad "$m: not gofmt'ed: $unformatted"
  (cd "$m" && GOWORK=off go mod tidy -diff) || bad "$m: go.mod/go.sum not tidy (run go mod tidy in $m)"
  (cd "$m" && go vet ./...) || bad "$m: go vet"
  if [ "${1:-}" != fast ]; then
    # Findings listed in scripts/verify-exclude (each with its reason) are reported but
    # tolerated; any other finding fails.
    found=$(cd "$m" && "$root/.tools/bin/staticcheck" ./... 2>&1 | sed "s#^#$m/#")
    if [ -n "$found" ]; then
      tolerated=$(grep -E -f "$excl" <<<"$found" || true)
      left=$(grep -v -E -f "$excl" <<<"$found" || true)
      [ -z "$tolerated" ] || printf 'verify: %s: tolerated (scripts/verify-exclude):\n%s\n' "$m" "$tolerated"
      [ -z "$left" ] || { echo "$left"; bad "$m: staticcheck"; }
    fi
  fi
done
echo "=== layering"
(cd tests && go test -count=1 ./layering/) || bad "layering rules broken (docs/architecture.md, tests/layering)"
if [ $fail != 0 ]; then echo "verify: FAIL" >&2; exit 1; fi
echo "verify: every module passed"
