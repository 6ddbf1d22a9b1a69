#!/usr/bin/env bash
# Builds the binaries of the live Helm test once into a cache folder and prints that folder:
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl (Kubernetes v1.37.2,
# this module), kwok (sigs.k8s.io/kwok, simulated nodes and pods) with its stages config, and
# helm ($HELM_VERSION, with the Kubernetes version it assumes set to the one built here).
#
# The folder is $ASF_K8S_CACHE (default $HOME/.cache/asf-k8s)/<hash of go.mod, go.sum, this
# script>; a folder is used only once complete, so an interrupted build starts again. Cold
# build about 8 minutes on 2 cores; warm, nothing to do.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
K8S_VERSION=v1.37.2
HELM_VERSION=${HELM_VERSION:-v3.20.2}
cache="${ASF_K8S_CACHE:-$HOME/.cache/asf-k8s}"
key=$(cat "$here/go.mod" "$here/go.sum" "$here/build.sh" <(echo "$HELM_VERSION") | sha256sum | cut -c1-12)
dir="$cache/$K8S_VERSION-$key"
if [ -f "$dir/.complete" ]; then
  echo "$dir"
  exit 0
fi
mkdir -p "$cache"
# One build at a time per cache; a second run waits and then finds the folder complete.
exec 9>"$cache/.lock"
flock 9
if [ -f "$dir/.complete" ]; then
  echo "$dir"
  exit 0
fi
echo "building the Kubernetes $K8S_VERSION control plane, etcd, kwok and helm $HELM_VERSION into $dir (one-time, about 8 minutes on 2 cores)..." >&2
start=$SECONDS
tmp="$dir.tmp.$$"
rm -rf "$tmp" && mkdir -p "$tmp/bin"
trap 'rm -rf "$tmp"' EXIT
major=${K8S_VERSION#v}; major=${major%%.*}
minor=${K8S_VERSION#v*.}; minor=${minor%%.*}
ver=""
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ver+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=$major -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
done
export GOWORK=off GOFLAGS=-mod=readonly CGO_ENABLED=0
(cd "$here" && go build -trimpath -ldflags "-s -w$ver" -o "$tmp/bin/" tool) >&2
# `go build tool` names etcd's main package (go.etcd.io/etcd/server/v3) after its path.
for f in server v3; do [ -x "$tmp/bin/$f" ] && mv "$tmp/bin/$f" "$tmp/bin/etcd"; done
[ -x "$tmp/bin/etcd" ] || { echo "build.sh: no etcd binary in $tmp/bin" >&2; exit 1; }

# kwok's stages: nodes become Ready fast and renew their leases, pods run fast.
kwokdir=$(cd "$here" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)
for s in node/fast node/heartbeat-with-lease pod/fast; do
  for f in "$kwokdir/kustomize/stage/$s"/*.yaml; do
    [ "$(basename "$f")" = kustomization.yaml ] && continue
    echo "---"
    cat "$f"
  done
done >"$tmp/stages.yaml"

# helm, told which Kubernetes it talks to (else it assumes 1.20 for .Capabilities and lint).
hv=""
for p in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
  hv+=" -X $p.k8sVersionMajor=$major -X $p.k8sVersionMinor=$minor"
done
(mkdir -p "$tmp/helmmod" && cd "$tmp/helmmod" && printf 'module helmbuild\n\ngo 1.24\n' >go.mod &&
  GOFLAGS=-mod=mod GOBIN="$tmp/bin" go install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}$hv" "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}") >&2
rm -rf "$tmp/helmmod"
touch "$tmp/.complete"
rm -rf "$dir" && mv "$tmp" "$dir"
echo "built in $((SECONDS - start))s" >&2
echo "$dir"
