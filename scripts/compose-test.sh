#!/usr/bin/env bash
# End-to-end test of the docker-compose deployment (deploy/compose), on the documented path:
# the images of `make images` (scripts/images.sh builds missing ones), then `docker-compose
# up` alone — the one-shot secrets service makes every secret. It brings up a private
# compose project with three echo loaders (two, then scaled to three while running), two
# atoms and two lbclients, webgate behind the front proxy, runs tests/compose (which reads
# the demo app's keys with `run --rm secrets show`; signed once and stream requests through
# the proxy, spread over the loaders, atoms and lbclients; webgate scaled to two under load;
# then the chaos table under load: a loader killed, a loader frozen, an atom killed, an
# lbclient killed, a webgate killed, webgate restarted behind the proxy, NATS restarted, a
# polaris replica stopped) and tears everything down (down -v), also on failure or Ctrl-C. ASF_CHAOS_OUT=<file> also writes
# the chaos table there (relative to the repository). Before the chaos table it checks that
# Prometheus scrapes every replica (all up, the alerting rules loaded) and that Jaeger holds
# spans of every hop (one request in ten traced).
#
# With no reachable Docker engine or no docker-compose it says so and exits 0, so
# `make test` can call it everywhere; ASF_COMPOSE_REQUIRED=1 makes that a failure instead.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
compose_dir=$root/deploy/compose
tag=${ASF_IMAGE_TAG:-dev}

skip() {
  echo "compose-test: SKIPPED: $*"
  [ -z "${ASF_COMPOSE_REQUIRED:-}" ] || exit 1
  exit 0
}
if command -v docker-compose >/dev/null 2>&1; then
  dc=(docker-compose)
elif docker compose version >/dev/null 2>&1; then
  dc=(docker compose)
else
  skip "neither docker-compose nor the docker compose plugin is installed"
fi
docker info >/dev/null 2>&1 || skip "no Docker engine reachable (docker info failed)"

start=$(date +%s)
missing=()
for img in polaris lbclient atom webgate init loader loader-demo-py loader-demo-c nats consul jaeger prometheus; do
  docker image inspect "asf/$img:$tag" >/dev/null 2>&1 || missing+=("$img")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "compose-test: building missing images: ${missing[*]}"
  ./scripts/images.sh "${missing[@]}"
fi
# The front proxy: HAProxy from Debian on the loaders' Debian base (about 20 s).
if ! docker image inspect "asf/proxy:$tag" >/dev/null 2>&1; then
  echo "compose-test: building asf/proxy:$tag"
  proxy_base=${ASF_LOADER_BASE:-asf/base:bookworm}
  docker image inspect "$proxy_base" >/dev/null 2>&1 || docker pull -q "$proxy_base" >/dev/null ||
    { echo "compose-test: no $proxy_base for the proxy (make images makes asf/base:bookworm)"; exit 1; }
  docker build -q -t "asf/proxy:$tag" --build-arg "BASE=$proxy_base" \
    deploy/images/proxy 2>&1 | { grep -vE "DEPRECATED|legacy builder|buildx|BuildKit|^ *$|^sha256:" || true; }
fi

project=asftest$$
# One request in ten traced: the test finds spans of every hop in Jaeger within seconds.
export ASF_IMAGE_TAG=$tag ASF_HTTP_PUBLISH=127.0.0.1: ASF_JAEGER_PUBLISH=127.0.0.1: ASF_PROMETHEUS_PUBLISH=127.0.0.1: \
  ASF_TRACE_SAMPLE_RATE=0.1
dc+=(-f "$compose_dir/docker-compose.yml" -p "$project")

cleanup() {
  rc=$?
  if [ $rc != 0 ]; then
    echo "compose-test: FAILED (exit $rc); last log lines:"
    "${dc[@]}" ps || true
    "${dc[@]}" logs --no-color --tail=15 2>&1 | tail -150 || true
  fi
  echo "compose-test: tearing down $project"
  "${dc[@]}" down -v --remove-orphans -t 5 >/dev/null 2>&1 || true
  echo "compose-test: $([ $rc = 0 ] && echo PASS || echo FAIL) in $(( $(date +%s) - start ))s"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "compose-test: up ($project)"
"${dc[@]}" up -d 2>&1 | sed -E '/^(Creating|Starting)/d' 
"${dc[@]}" ps
# A third echo loader joins while everything runs.
"${dc[@]}" up -d --no-recreate --scale loader-echo=3 loader-echo 2>&1 | sed -E '/up-to-date|^(Creating|Starting)/d' 
port=$("${dc[@]}" port proxy 8889)
[ -n "$port" ] || { echo "compose-test: the proxy has no published port"; exit 1; }
jaeger_port=$("${dc[@]}" port jaeger 16686)
prometheus_port=$("${dc[@]}" port prometheus 9090)
echo "compose-test: the proxy on $port, Jaeger on $jaeger_port, Prometheus on $prometheus_port; running tests/compose"
chaos_out=${ASF_CHAOS_OUT:-}
[ -z "$chaos_out" ] || [ "${chaos_out#/}" != "$chaos_out" ] || chaos_out=$root/$chaos_out
(cd tests && ASF_COMPOSE_PROJECT=$project ASF_COMPOSE_URL="http://$port" \
  ASF_COMPOSE_JAEGER_URL="http://$jaeger_port" ASF_COMPOSE_PROMETHEUS_URL="http://$prometheus_port" \
  ASF_COMPOSE_CMD="${dc[*]}" ASF_CHAOS_OUT=$chaos_out \
  go test -count=1 -timeout 10m -v -run TestCompose ./compose)
