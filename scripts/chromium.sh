#!/usr/bin/env bash
# Installs headless Chromium (Debian's `chromium` package) for polaris's console
# end-to-end test (services/polaris/console_e2e_test.go). Without it that test skips.
# It is a no-op when a chromium binary is already on PATH; it needs root (apt-get).
set -euo pipefail
for b in chromium chromium-browser google-chrome; do
  if command -v "$b" >/dev/null 2>&1; then
    echo "$b present: $("$b" --version 2>/dev/null || true)"
    exit 0
  fi
done
if [ "$(id -u)" != 0 ]; then
  echo "chromium.sh: not root; install Debian's chromium package to run the console e2e test" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
chromium --version
