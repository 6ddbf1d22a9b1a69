#!/usr/bin/env bash
# Builds Jaeger v2 (the trace backend of `make run`, compose and the trace tests) into
# bin/jaeger. Jaeger v2 is an OpenTelemetry Collector distribution; its Go module
# github.com/jaegertracing/jaeger is tagged v1.x, and v1.75.0 is the pinned one (Apache-2.0).
# It is built from a throw-away module that requires it as a tool (`go get -tool`), as
# scripts/consul.sh builds Consul. The build is cached: skipped when bin/jaeger already
# holds that module version (`go version -m`). Run it with deploy/jaeger/config.yaml:
#
#   bin/jaeger --config deploy/jaeger/config.yaml     # OTLP gRPC 127.0.0.1:4317, UI http://127.0.0.1:16686
set -euo pipefail
cd "$(dirname "$0")/.."
JAEGER_VERSION=v1.75.0
JAEGER_MODULE=github.com/jaegertracing/jaeger
out="$PWD/bin/jaeger"

# built_version BINARY: the jaeger module version BINARY was built from ("" if none).
built_version() {
  go version -m "$1" 2>/dev/null | awk -v m="$JAEGER_MODULE" '($1 == "dep" || $1 == "mod") && $2 == m {print $3; exit}'
}
if [ -x "$out" ] && [ "$(built_version "$out")" = "$JAEGER_VERSION" ]; then
  echo "bin/jaeger is ${JAEGER_VERSION}: up to date"
  exit 0
fi
mkdir -p bin
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
export GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0
echo "building jaeger ${JAEGER_VERSION} (one-time, several minutes)..."
start=$(date +%s)
go mod init jaegerbuild >/dev/null 2>&1
go get -tool "${JAEGER_MODULE}/cmd/jaeger@${JAEGER_VERSION}" >/dev/null 2>&1 ||
  { go get -tool "${JAEGER_MODULE}/cmd/jaeger@${JAEGER_VERSION}"; exit 1; }
# internal/version is what `jaeger --version` and its build_info metric report.
go build -trimpath -ldflags "-s -w -X ${JAEGER_MODULE}/internal/version.latestVersion=${JAEGER_VERSION}" \
  -o "$out.tmp" "${JAEGER_MODULE}/cmd/jaeger"
mv "$out.tmp" "$out"
echo "built bin/jaeger ($(built_version "$out")) in $(( $(date +%s) - start ))s"
