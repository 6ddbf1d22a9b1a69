#!/usr/bin/env bash
# Builds the Athena Serving container images with deploy/images/Dockerfile (one target per
# image, the repository as build context) — the images docker-compose builds — without an
# image registry: the bases are made here first.
#
#   scripts/images.sh              # every image
#   scripts/images.sh webgate atom # only these (names below)
#
# Images (tag $ASF_IMAGE_TAG, default dev):
#   asf/polaris asf/lbclient asf/atom asf/webgate    static Go binaries on scratch
#   asf/init                                         asfinit and asfsecrets (one-shot jobs)
#   asf/nats (nats-server v2.15.2) asf/consul (v1.14.11)  built from their Go modules
#   asf/loader                                       cgo loader + python3 on Debian bookworm
#   asf/loader-demo-py asf/loader-demo-c              loader + the example engines
#   asf/proxy                                        HAProxy on asf/base (deploy/images/proxy):
#                                                    compose's front proxy before webgate
#   asf/jaeger (Jaeger v2, module v1.75.0)           compose's trace backend and UI
#   asf/prometheus (v0.316.0, no web UI)             compose's Prometheus with the alerting rules
#                                                    these two from bin/jaeger and bin/prometheus,
#                                                    built on the host from their Go modules
#                                                    (scripts/jaeger.sh, scripts/prometheus.sh);
#                                                    they take asfbox from asf/polaris
#
# Local bases, made once (kept while they exist; ASF_REBUILD_BASE=1 remakes them):
#   asf/base:bookworm            Debian bookworm (debootstrap --variant=minbase, docker import):
#                                the loader base (LOADER_BASE), as debian:bookworm-slim
#   asf/golang:<go>-bookworm     asf/base + gcc + this machine's Go (`go env GOROOT`) and CA
#                                bundle: the build stages' toolchain (GO_IMAGE), as
#                                golang:1.26-bookworm; modules come through `go env GOPROXY`
# With a registry, ASF_GO_IMAGE=golang:1.26-bookworm ASF_LOADER_BASE=debian:bookworm-slim
# use the public bases instead (the Dockerfile's defaults).
set -euo pipefail
cd "$(dirname "$0")/.."
TAG=${ASF_IMAGE_TAG:-dev}
LOADER_BASE=${ASF_LOADER_BASE:-asf/base:bookworm}
GO_IMAGE=${ASF_GO_IMAGE:-}
# The mirror: ASF_DEBIAN_MIRROR, else the first Debian (non-security) mirror of this
# machine's apt sources, else deb.debian.org.
apt_mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    awk '/^URIs:/ {for (i = 2; i <= NF; i++) if ($i !~ /security/ && $i ~ /debian/) {print $i; exit}}' "$f"
  done | head -1
  if [ -r /etc/apt/sources.list ]; then
    awk '$1 == "deb" && $2 !~ /security/ && $2 ~ /debian/ {print $2; exit}' /etc/apt/sources.list
  fi
  return 0
}
DEBIAN_MIRROR=${ASF_DEBIAN_MIRROR:-$(apt_mirror 2>/dev/null | head -1 || true)}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
all=(polaris lbclient atom webgate init loader loader-demo-py loader-demo-c nats consul proxy jaeger prometheus)
want=("$@")
[ ${#want[@]} -gt 0 ] || want=("${all[@]}")

log() { printf '%s images: %s\n' "$(date +%H:%M:%S)" "$*"; }
has_image() { docker image inspect "$1" >/dev/null 2>&1; }
wanted() { local w; for w in "${want[@]}"; do [ "$w" = "$1" ] && return 0; done; return 1; }

docker info >/dev/null 2>&1 || { echo "images: no Docker engine reachable" >&2; exit 1; }
for w in "${want[@]}"; do
  case " ${all[*]} " in *" $w "*) ;; *) echo "images: unknown image $w (${all[*]})" >&2; exit 2 ;; esac
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# --- the Debian base ---------------------------------------------------------------
base_done=
base_image() {
  [ -z "$base_done" ] || return 0
  base_done=1
  if has_image asf/base:bookworm && [ -z "${ASF_REBUILD_BASE:-}" ]; then
    log "asf/base:bookworm present (cached)"
    return
  fi
  if ! command -v debootstrap >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing debootstrap"
    { apt-get install -y -qq --no-install-recommends debootstrap >/dev/null 2>&1 ||
      { apt-get update -qq && apt-get install -y -qq --no-install-recommends debootstrap >/dev/null; }; } ||
      echo "images: apt-get install debootstrap failed" >&2
  fi
  command -v debootstrap >/dev/null || { echo "images: debootstrap missing (apt-get install debootstrap)" >&2; exit 1; }
  log "debootstrap bookworm (minbase) from $DEBIAN_MIRROR"
  local dir="$work/base"
  debootstrap --variant=minbase bookworm "$dir" "$DEBIAN_MIRROR" >"$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* "$dir"/var/log/*.log
  tar -C "$dir" -c . | docker import -c 'ENV LANG=C.UTF-8' -c 'CMD ["/bin/bash"]' - asf/base:bookworm >/dev/null
  log "asf/base:bookworm imported"
}

# --- the Go toolchain base ----------------------------------------------------------
go_image() {
  command -v go >/dev/null || { echo "images: go missing: the local Go base is made from this machine's Go (or set ASF_GO_IMAGE)" >&2; exit 1; }
  local ver goroot
  ver=$(go env GOVERSION) goroot=$(go env GOROOT)
  GO_IMAGE=asf/golang:${ver#go}-bookworm
  if has_image "$GO_IMAGE" && [ -z "${ASF_REBUILD_BASE:-}" ]; then
    log "$GO_IMAGE present (cached)"
    return
  fi
  base_image
  log "making $GO_IMAGE from $goroot"
  local ctx="$work/golang"
  mkdir -p "$ctx"
  cp -a "$goroot" "$ctx/go"
  rm -rf "$ctx/go/pkg/obj" "$ctx/go/.git"
  # This machine's trust store, so module downloads reach GOPROXY as the host's go does.
  cp /etc/ssl/certs/ca-certificates.crt "$ctx/" 2>/dev/null || : >"$ctx/ca-certificates.crt"
  cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM asf/base:bookworm
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends gcc libc6-dev ca-certificates \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb
COPY ca-certificates.crt /tmp/host-ca.crt
RUN if [ -s /tmp/host-ca.crt ]; then cp /tmp/host-ca.crt /etc/ssl/certs/ca-certificates.crt; fi; rm /tmp/host-ca.crt
COPY go /usr/local/go
ENV GOTOOLCHAIN=local GOPATH=/go PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
WORKDIR /go
DOCKERFILE
  quiet docker build -q -t "$GO_IMAGE" "$ctx"
  rm -rf "$ctx"
}

# quiet CMD...: runs a docker command, showing only its errors.
quiet() {
  "$@" 2>&1 >/dev/null | { grep -vE "DEPRECATED|legacy builder|buildx|BuildKit|^ *$" || true; } >&2
}

image() {
  log "asf/$1:$TAG"
  if [ "$1" = proxy ]; then
    quiet docker build -q -t "asf/proxy:$TAG" --build-arg "BASE=$LOADER_BASE" deploy/images/proxy
    return
  fi
  if [ "$1" = jaeger ] || [ "$1" = prometheus ]; then
    host_image "$1"
    return
  fi
  quiet docker build -q -f deploy/images/Dockerfile --target "$1" -t "asf/$1:$TAG" \
    --build-arg "GO_IMAGE=$GO_IMAGE" --build-arg "LOADER_BASE=$LOADER_BASE" \
    --build-arg "VERSION=$(git describe --tags --dirty 2>/dev/null || echo dev)" --build-arg "COMMIT=$(git rev-parse HEAD 2>/dev/null)" \
    --build-arg "GOPROXY=${ASF_GOPROXY:-$(go env GOPROXY 2>/dev/null || echo https://proxy.golang.org,direct)}" .
}

# host_image NAME: asf/jaeger or asf/prometheus from the binary built on the host (a static
# Go build, cached in bin/) and deploy/images/NAME/Dockerfile; asfbox and the user come from
# asf/polaris of the same tag (built first when missing).
host_image() {
  local ctx="$work/$1"
  mkdir -p "$ctx"
  has_image "asf/polaris:$TAG" || image polaris
  case $1 in
    jaeger)
      ./scripts/jaeger.sh | sed 's/^/  /'
      cp bin/jaeger deploy/jaeger/config.yaml "$ctx/" ;;
    prometheus)
      ./scripts/prometheus.sh prometheus | sed 's/^/  /'
      cp bin/prometheus deploy/prometheus/compose.yml deploy/prometheus/alerts.yml "$ctx/" ;;
  esac
  cp "deploy/images/$1/Dockerfile" "$ctx/"
  quiet docker build -q -t "asf/$1:$TAG" --build-arg "ASF_IMAGE=asf/polaris:$TAG" "$ctx"
  rm -rf "$ctx"
}

start=$(date +%s)
[ "$LOADER_BASE" != asf/base:bookworm ] || base_image
[ -n "$GO_IMAGE" ] || go_image
for name in "${all[@]}"; do
  if wanted "$name"; then image "$name"; fi
done
log "done in $(( $(date +%s) - start ))s"
docker images --format '{{.Repository}}:{{.Tag}}\t{{.Size}}' | grep -E "^asf/[a-z-]+:($TAG|bookworm|[0-9.]+-bookworm)" | sort
