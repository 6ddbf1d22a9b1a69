#!/usr/bin/env bash
# Installs what the example engines need and builds the C ones.
#
#   scripts/engines.sh [all]        install (when root) + build          (default)
#   scripts/engines.sh install      install the Debian packages (root only; others: say what is missing)
#   scripts/engines.sh build        build bin/engines/libtts.so and bin/engines/libasr.so
#   scripts/engines.sh status       print one line per engine: NAME ok|skipped REASON
#
# Engines and their Debian packages:
#   tts     (C, examples/engines/tts)     libespeak-ng-dev espeak-ng-data
#   asr     (C, examples/engines/asr)     libpocketsphinx-dev pocketsphinx-en-us (pulls libsphinxbase-dev)
#   digits  (Python, examples/engines/digits) python3-sklearn python3-numpy python3-pil
# and for the forward engine's tests (tests/forward): python3-fastapi python3-uvicorn, an
# upstream API served by FastAPI + uvicorn under /usr/bin/python3, with python3-uvloop
# python3-httptools as uvicorn runs in production (asfbench's FastAPI baseline and its test);
# and python3-websocket for the Python WebAPI 2.0 client (examples/webapi/iat_client.py,
# tests/engines).
# Output directory: $ASF_ENGINES_DIR, default bin/engines. Never fails because an engine
# cannot be built: it says which one was skipped and why (exit 0); only a broken build
# of an engine whose packages are present fails (exit 1).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out=${ASF_ENGINES_DIR:-$root/bin/engines}
PKGS=(libespeak-ng-dev espeak-ng-data libpocketsphinx-dev pocketsphinx-en-us python3-sklearn python3-numpy python3-pil python3-venv python3-fastapi python3-uvicorn python3-uvloop python3-httptools python3-websocket)
INC=$root/services/loader/include
CC=${CC:-gcc}
PY=${ASF_PYTHON:-/usr/bin/python3}

missing() {
  local m=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || m+=("$p")
  done
  echo "${m[@]:-}"
}

install() {
  local need
  need=$(missing "${PKGS[@]}")
  [ -z "$need" ] && { echo "engines: Debian packages present"; return 0; }
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "engines: not root (or no apt-get): cannot install: $need"
    return 0
  fi
  echo "engines: installing $need"
  export DEBIAN_FRONTEND=noninteractive
  # shellcheck disable=SC2086
  if ! apt-get install -y -q --no-install-recommends $need >/tmp/asf-engines-apt.log 2>&1; then
    apt-get update -q >>/tmp/asf-engines-apt.log 2>&1
    # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends $need >>/tmp/asf-engines-apt.log 2>&1 ||
      echo "engines: apt-get install failed (see /tmp/asf-engines-apt.log)"
  fi
}

# status_of NAME prints "ok" or "skipped REASON".
status_of() {
  case $1 in
    tts)
      local m; m=$(missing libespeak-ng-dev espeak-ng-data)
      [ -n "$m" ] && { echo "skipped: Debian packages missing: $m"; return; }
      command -v "$CC" >/dev/null || { echo "skipped: no C compiler ($CC)"; return; }
      echo ok ;;
    asr)
      local m; m=$(missing libpocketsphinx-dev pocketsphinx-en-us)
      [ -n "$m" ] && { echo "skipped: Debian packages missing: $m"; return; }
      command -v "$CC" >/dev/null || { echo "skipped: no C compiler ($CC)"; return; }
      command -v pkg-config >/dev/null || { echo "skipped: pkg-config missing"; return; }
      echo ok ;;
    digits)
      [ -x "$PY" ] || { echo "skipped: $PY missing"; return; }
      "$PY" -c 'import sklearn, numpy' 2>/dev/null || { echo "skipped: scikit-learn not importable by $PY (Debian python3-sklearn)"; return; }
      echo ok ;;
  esac
}

build() {
  mkdir -p "$out"
  local fail=0 st
  st=$(status_of tts)
  if [ "$st" = ok ]; then
    if $CC -shared -fPIC -O2 -Wall -pthread -I"$INC" -o "$out/libtts.so" examples/engines/tts/wrapper.c -lespeak-ng; then
      echo "tts: built $out/libtts.so"
    else echo "tts: BUILD FAILED"; fail=1; fi
  else
    rm -f "$out/libtts.so"; echo "tts: $st"
  fi
  st=$(status_of asr)
  if [ "$st" = ok ]; then
    # shellcheck disable=SC2046
    if $CC -shared -fPIC -O2 -Wall -pthread -I"$INC" $(pkg-config --cflags pocketsphinx) -o "$out/libasr.so" \
        examples/engines/asr/wrapper.c $(pkg-config --libs pocketsphinx); then
      echo "asr: built $out/libasr.so"
    else echo "asr: BUILD FAILED"; fail=1; fi
  else
    rm -f "$out/libasr.so"; echo "asr: $st"
  fi
  echo "digits: $(status_of digits)"
  return $fail
}

case ${1:-all} in
  install) install ;;
  build) build ;;
  status) for e in tts asr digits; do echo "$e $(status_of $e)"; done ;;
  all) install; build ;;
  *) echo "usage: $0 [all|install|build|status]" >&2; exit 2 ;;
esac
