#!/usr/bin/env bash
# Builds Prometheus (github.com/prometheus/prometheus v0.316.0, Apache-2.0) from its Go
# module into bin/: promtool (`make promtool`, part of test-deps: `promtool check rules`
# validates deploy/prometheus/alerts.yml in `make test`) and the prometheus server (the
# asf/prometheus image of compose, scripts/images.sh). Built like scripts/jaeger.sh: from a
# throw-away module that requires them as tools, skipped when bin/<name> already holds that
# module version (`go version -m`).
#
#   scripts/prometheus.sh                     # promtool and prometheus
#   scripts/prometheus.sh promtool            # only promtool
#
# The server is built without its web UI assets (they are built with npm and embedded with
# the builtinassets tag): it scrapes, evaluates the rules and answers the HTTP API
# (/api/v1/...), and its / pages say the UI is not built in.
set -euo pipefail
cd "$(dirname "$0")/.."
PROM_VERSION=v0.316.0
PROM_MODULE=github.com/prometheus/prometheus
want=("$@")
[ ${#want[@]} -gt 0 ] || want=(promtool prometheus)

built_version() {
  go version -m "$1" 2>/dev/null | awk -v m="$PROM_MODULE" '($1 == "dep" || $1 == "mod") && $2 == m {print $3; exit}'
}
todo=()
for name in "${want[@]}"; do
  case $name in promtool | prometheus) ;; *) echo "prometheus.sh: unknown binary $name (promtool, prometheus)" >&2; exit 2 ;; esac
  if [ -x "bin/$name" ] && [ "$(built_version "bin/$name")" = "$PROM_VERSION" ]; then
    echo "bin/$name is ${PROM_VERSION}: up to date"
  else
    todo+=("$name")
  fi
done
[ ${#todo[@]} -gt 0 ] || exit 0
mkdir -p bin
out="$PWD/bin"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
export GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0
echo "building ${todo[*]} ${PROM_VERSION} (one-time, several minutes)..."
start=$(date +%s)
go mod init prombuild >/dev/null 2>&1
pkgs=()
for name in "${todo[@]}"; do pkgs+=("${PROM_MODULE}/cmd/${name}"); done
tools=()
for p in "${pkgs[@]}"; do tools+=("$p@${PROM_VERSION}"); done
go get -tool "${tools[@]}" >/dev/null 2>&1 || { go get -tool "${tools[@]}"; exit 1; }
mkdir -p build
go build -trimpath -ldflags "-s -w" -o build/ "${pkgs[@]}"
for name in "${todo[@]}"; do
  mv "build/$name" "$out/$name"
  echo "built bin/$name ($(built_version "$out/$name"))"
done
echo "built in $(( $(date +%s) - start ))s"
