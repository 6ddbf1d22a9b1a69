#!/usr/bin/env bash
# Builds the Athena Serving container images from the binaries in bin/ (`make build`).
#
#   scripts/images.sh              # every image
#   scripts/images.sh webgate atom # only these (names below)
#
# Images (tag $ASF_IMAGE_TAG, default dev):
#   asf/polaris asf/lbclient asf/atom asf/webgate asf/init   static Go binaries on scratch
#   asf/nats (nats-server v2.15.2) asf/consul (v1.14.11)     built from their Go modules
#   asf/loader                                              Debian base + python3 (cgo loader)
#   asf/loader-demo-py asf/loader-demo-c                     loader + the example engines
#
# No registry is needed: the Debian base (asf/base:bookworm) is made here with debootstrap
# and `docker import`, once (kept while the image exists; ASF_REBUILD_BASE=1 remakes it).
# Elsewhere set ASF_BASE_IMAGE=debian:bookworm-slim (any bookworm image) and
# ASF_STATIC_BASE (default scratch) to use public bases.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
TAG=${ASF_IMAGE_TAG:-dev}
BASE_IMAGE=${ASF_BASE_IMAGE:-asf/base:bookworm}
STATIC_BASE=${ASF_STATIC_BASE:-scratch}
NATS_VERSION=v2.15.2
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
all=(nats consul polaris lbclient atom webgate init loader loader-demo-py loader-demo-c)
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
base_image() {
  if [ "$BASE_IMAGE" != asf/base:bookworm ]; then return; fi
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

# --- binaries ----------------------------------------------------------------------
need_bin() { [ -x "bin/$1" ] || { echo "images: bin/$1 missing: run make build" >&2; exit 1; }; }

helpers() {
  log "building asfbox and asfinit"
  (cd deploy/images/asfbox && GOWORK=off CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$root/bin/" . ./cmd/asfinit)
}

nats_server() {
  if [ -x bin/nats-server ] && bin/nats-server --version 2>/dev/null | grep -q "${NATS_VERSION#v}"; then return; fi
  log "building nats-server $NATS_VERSION"
  GOWORK=off CGO_ENABLED=0 GOBIN="$root/bin" go install -trimpath -ldflags '-s -w' "github.com/nats-io/nats-server/v2@$NATS_VERSION"
}

c_demo() {
  mkdir -p "$1/c-echo"
  gcc -shared -fPIC -O2 -pthread -Iservices/loader/include -o "$1/c-echo/libwrapper.so" examples/engines/c-echo/wrapper.c
}

# --- contexts ----------------------------------------------------------------------
# static_ctx DIR: rootfs/ with a passwd naming uid 65532, a sticky /tmp, and an empty data/.
static_ctx() {
  mkdir -p "$1/rootfs/etc" "$1/rootfs/tmp" "$1/data"
  chmod 1777 "$1/rootfs/tmp"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nasf:x:65532:65532:asf:/data:/sbin/nologin\n' >"$1/rootfs/etc/passwd"
  printf 'root:x:0:\nasf:x:65532:\n' >"$1/rootfs/etc/group"
}

build() { # name context [docker build args...]
  local name=$1 ctx=$2
  shift 2
  log "asf/$name:$TAG"
  docker build -q -t "asf/$name:$TAG" -f "deploy/images/$name/Dockerfile" "$@" "$ctx" 2>&1 >/dev/null \
    | { grep -vE "DEPRECATED|legacy builder|buildx|^ *$" || true; } >&2
}

image() {
  local name=$1 ctx="$work/$1"
  mkdir -p "$ctx"
  case $name in
    polaris|lbclient|atom|webgate)
      need_bin "$name"; static_ctx "$ctx"
      cp bin/asfbox "bin/$name" "$ctx/"
      build "$name" "$ctx" --build-arg "BASE=$STATIC_BASE" ;;
    init)
      static_ctx "$ctx"; cp bin/asfinit "$ctx/"
      build init "$ctx" --build-arg "BASE=$STATIC_BASE" ;;
    nats)
      nats_server; static_ctx "$ctx"; cp bin/asfbox bin/nats-server "$ctx/"
      build nats "$ctx" --build-arg "BASE=$STATIC_BASE" ;;
    consul)
      [ -x bin/consul ] || ./scripts/consul.sh
      static_ctx "$ctx"; cp bin/asfbox bin/consul "$ctx/"
      build consul "$ctx" --build-arg "BASE=$STATIC_BASE" ;;
    loader)
      need_bin loader; mkdir -p "$ctx/sdk"
      cp bin/asfbox bin/loader "$ctx/"
      cp -r sdk/python "$ctx/sdk/python"
      find "$ctx/sdk" -name __pycache__ -prune -exec rm -rf {} +
      build loader "$ctx" --build-arg "BASE=$BASE_IMAGE" ;;
    loader-demo-py)
      cp -r examples/engines/python-echo "$ctx/python-echo"
      build loader-demo-py "$ctx" --build-arg "LOADER=asf/loader:$TAG" ;;
    loader-demo-c)
      c_demo "$ctx"
      build loader-demo-c "$ctx" --build-arg "LOADER=asf/loader:$TAG" ;;
  esac
}

start=$(date +%s)
wanted loader && base_image
helpers
for name in "${all[@]}"; do
  wanted "$name" && image "$name"
done
log "done in $(( $(date +%s) - start ))s"
docker images --format '{{.Repository}}:{{.Tag}}\t{{.Size}}' | grep -E "^asf/[a-z-]+:($TAG|bookworm)" | sort
