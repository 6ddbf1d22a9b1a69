#!/usr/bin/env bash
# Builds the Consul agent used by polaris's consul-backend tests into bin/consul.
# Consul v1.14.11 (MPL-2.0) is built from the Go module proxy; later versions are
# under a different licence and must not be used. The build is cached: it is skipped
# when bin/consul already reports the pinned version.
#
# `go install module@version` refuses modules whose go.mod has replace directives
# (consul's does), so the agent is built from a throw-away module that requires
# consul and pins the api/sdk/proto-public versions consul v1.14.11's go.mod names.
set -euo pipefail
cd "$(dirname "$0")/.."
CONSUL_VERSION=v1.14.11
CONSUL_API=v1.18.1
CONSUL_SDK=v0.13.0
CONSUL_PROTO_PUBLIC=v0.2.1
out="$PWD/bin/consul"
if [ -x "$out" ] && [ "$("$out" version 2>/dev/null | sed -n 1p)" = "Consul ${CONSUL_VERSION}" ]; then
  echo "bin/consul is ${CONSUL_VERSION}: up to date"
  exit 0
fi
mkdir -p bin
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
export GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0
cat > go.mod <<MOD
module consulbuild

go 1.20

require (
	github.com/hashicorp/consul ${CONSUL_VERSION}
	github.com/hashicorp/consul/api ${CONSUL_API}
	github.com/hashicorp/consul/sdk ${CONSUL_SDK}
	github.com/hashicorp/consul/proto-public ${CONSUL_PROTO_PUBLIC}
)

replace launchpad.net/gocheck => github.com/go-check/check v0.0.0-20140225173054-eb6ee6f84d0a
MOD
cat > tools.go <<'SRC'
//go:build tools

package consulbuild

import _ "github.com/hashicorp/consul"
SRC
echo "building consul ${CONSUL_VERSION} (one-time, several minutes)..."
start=$(date +%s)
go mod tidy >/dev/null
go build -trimpath -ldflags "-s -w" -o "$out.tmp" github.com/hashicorp/consul
mv "$out.tmp" "$out"
echo "built bin/consul ($("$out" version | head -1)) in $(( $(date +%s) - start ))s"
