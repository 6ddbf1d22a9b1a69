#!/usr/bin/env bash
# Helm chart tests: builds bin/helm from its Go module (once; kept while it reports the
# pinned version) and runs deploy/helm/test (lint, template, strict decoding into k8s.io/api).
set -euo pipefail
cd "$(dirname "$0")/../../.."
HELM_VERSION=v3.20.2
out="$PWD/bin/helm"
if ! { [ -x "$out" ] && "$out" version --short 2>/dev/null | grep -q "^${HELM_VERSION}"; }; then
  echo "building helm ${HELM_VERSION} from helm.sh/helm/v3 (one-time)..."
  mkdir -p bin
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && printf 'module helmbuild\n\ngo 1.24\n' >go.mod &&
    GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0 GOBIN="$PWD/out" go install -trimpath \
      -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}" "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}")
  mv "$tmp/out/helm" "$out"
fi
"$out" version --short
cd deploy/helm/test
GOWORK=off HELM="$out" go test -count=1 ./...
