#!/usr/bin/env bash
# Helm chart tests. deploy/helm/test/k8s/build.sh builds helm and a Kubernetes control plane
# (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kwok) once into
# $ASF_K8S_CACHE (default $HOME/.cache/asf-k8s); then the Go module deploy/helm/test runs:
# lint, template and strict decoding into k8s.io/api, and the live tests, which start that
# control plane on 127.0.0.1 (stopped and removed when the tests end) and install, upgrade
# and uninstall every chart with every values file.
set -euo pipefail
cd "$(dirname "$0")/../../.."
start=$SECONDS
k8s=$(deploy/helm/test/k8s/build.sh)
echo "helm-test: binaries in $k8s ($((SECONDS - start))s)"
helm="$k8s/bin/helm"
"$helm" version --short
# bin/helm is the same helm, for use by hand.
mkdir -p bin && cp -f "$helm" bin/helm
cd deploy/helm/test
GOWORK=off HELM="$helm" ASF_K8S="$k8s" go test -count=1 -timeout 30m -parallel 4 -v ./... 2>&1 |
  grep -vE '^=== (RUN|PAUSE|CONT|NAME)' || exit "${PIPESTATUS[0]}"
echo "helm-test: done in $((SECONDS - start))s"
