#!/usr/bin/env bash
# Code hygiene on every module that go.work uses (the list is read from go.work, so a module
# added there is checked without editing this script), and on the two modules kept outside it:
#   gofmt -l          no file may need formatting
#   go mod tidy -diff go.mod and go.sum are tidy (each module alone, GOWORK=off)
#   go vet ./...
#   staticcheck ./... (pinned by scripts/lint-tools.sh)
# and then the layering test (tests/layering: which packages may import what, see
# docs/architecture.md). Every check runs; the script fails if any found something, except
# the gofmt and staticcheck findings scripts/verify-exclude tolerates, each with its reason.
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
# report MODULE FINDINGS WHAT: findings matched by scripts/verify-exclude (each there with its
# reason) are printed and tolerated; any other finding fails.
report() {
  [ -n "$2" ] || return 0
  local tolerated left
  tolerated=$(grep -E -f "$excl" <<<"$2" || true)
  left=$(grep -v -E -f "$excl" <<<"$2" || true)
  [ -z "$tolerated" ] || printf 'verify: %s: tolerated (scripts/verify-exclude):\n%s\n' "$1" "$tolerated"
  [ -z "$left" ] || { echo "$left"; bad "$1: $3"; }
}
for m in "${mods[@]}"; do
  echo "=== $m"
  unformatted=$(gofmt -l "$m" | sed "s/\$/: not gofmt'ed/")
  report "$m" "$unformatted" "not gofmt'ed"
  (cd "$m" && GOWORK=off go mod tidy -diff) || bad "$m: go.mod/go.sum not tidy (run go mod tidy in $m)"
  (cd "$m" && go vet ./...) || bad "$m: go vet"
  if [ "${1:-}" != fast ]; then
    report "$m" "$(cd "$m" && "$root/.tools/bin/staticcheck" ./... 2>&1 | sed "s#^#$m/#")" staticcheck
  fi
done
# Modules outside go.work (their own dependency sets: the Helm tests' Kubernetes client, the
# images' asfbox) get the same checks but staticcheck, each alone (GOWORK=off).
for m in deploy/helm/test deploy/images/asfbox; do
  echo "=== $m (outside go.work)"
  unformatted=$(gofmt -l "$m" | sed "s/\$/: not gofmt'ed/")
  report "$m" "$unformatted" "not gofmt'ed"
  (cd "$m" && GOWORK=off go mod tidy -diff) || bad "$m: go.mod/go.sum not tidy (run GOWORK=off go mod tidy in $m)"
  (cd "$m" && GOWORK=off go vet ./...) || bad "$m: go vet"
done
echo "=== layering"
(cd tests && go test -count=1 ./layering/) || bad "layering rules broken (docs/architecture.md, tests/layering)"
if [ $fail != 0 ]; then echo "verify: FAIL" >&2; exit 1; fi
echo "verify: every module passed"
