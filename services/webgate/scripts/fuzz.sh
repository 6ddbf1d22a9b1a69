#!/usr/bin/env bash
# Runs every fuzz target of webgate and libs/capability for a bounded time each.
# Usage: services/webgate/scripts/fuzz.sh [fuzztime per target, default 20s]
# A crash is a bug: the failing input is written under the package's testdata/fuzz/.
set -euo pipefail
cd "$(dirname "$0")/../../.."
T="${1:-20s}"
run() { # module-dir package target
	echo "== $1 $2 $3 ($T)"
	(cd "$1" && go test -run='^$' -fuzz="^$3\$" -fuzztime="$T" "$2")
}
run services/webgate ./ase FuzzParseFrame
run services/webgate ./ase FuzzRender
run services/webgate ./auth FuzzParseParams
run services/webgate ./auth FuzzAuthenticate
run services/webgate ./transport FuzzDecodeFrame
run services/webgate ./transport FuzzOIPRequest
run libs ./capability FuzzParse
