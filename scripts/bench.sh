#!/usr/bin/env bash
# bench.sh [quick|full] [asfbench flags...] — build the suite, run the benchmark harness against
# the suite and its baselines, and write bench/results/<timestamp>/report.md (+ PNG charts).
#   quick: one to two minutes (one point of every target)   full: several minutes (every load)
set -euo pipefail
cd "$(dirname "$0")/.."

profile=${1:-quick}
case "$profile" in
quick | full) ;;
*)
	echo "usage: $0 [quick|full] [asfbench flags...]" >&2
	exit 2
	;;
esac
shift || true

# The FastAPI + uvicorn baseline runs on Debian's packages with /usr/bin/python3, with
# uvloop and httptools as uvicorn runs in production: without httptools uvicorn falls back
# to h11, which writes a response's head and body apart, and the client's delayed ACK then
# holds every request ~40 ms (scripts/engines.sh, run by make engines, installs them too).
if ! /usr/bin/python3 -c 'import fastapi, uvicorn, uvloop, httptools' 2>/dev/null; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		echo "bench: installing python3-fastapi python3-uvicorn python3-uvloop python3-httptools (Debian packages)" >&2
		apt-get update -qq &&
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
				python3-fastapi python3-uvicorn python3-uvloop python3-httptools >/dev/null ||
			echo "bench: apt-get failed; the FastAPI baseline will be skipped" >&2
	else
		echo "bench: python3-fastapi/python3-uvicorn missing and not root; the FastAPI baseline will be skipped" >&2
	fi
fi

extra=()
if ! make build; then
	echo "bench: make build failed; measuring the baselines only" >&2
	extra+=(--no-suite --no-suite-reason "make build failed")
fi
mkdir -p bin
go build -trimpath -o bin/asfbench ./tools/cmd/asfbench
# The helper programs whose figures the report folds in: loaderbench (Python engine overhead,
# C engine in process vs isolation; built without -trimpath so it finds examples/engines/c-echo)
# and lbbench (lbclient Pick throughput and load-change propagation, 1000 loaders / 50 services).
# A failed build leaves their figures marked "not measured" in the report.
go build -o bin/loaderbench ./tools/cmd/loaderbench ||
	echo "bench: loaderbench build failed; the loader figures will be missing" >&2
go build -trimpath -o bin/lbbench ./tools/cmd/lbbench ||
	echo "bench: lbbench build failed; the lbclient figures will be missing" >&2

# 2000 WebSocket sessions need a few thousand descriptors on each side.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

exec ./bin/asfbench --profile "$profile" --bin bin --out bench/results "${extra[@]}" "$@"
