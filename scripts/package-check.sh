#!/usr/bin/env bash
# What a user of rdb's packages gets, checked from outside (CI runs it from `make test`):
#  1. a Release build (-DCMAKE_BUILD_TYPE=Release, test switches off: what packagers build) of
#     everything rdb installs;
#  2. `cmake --install` into a clean prefix, then examples/ built as a separate project against
#     it (find_package(rdb CONFIG REQUIRED), rdb::client) and run against the installed
#     rdb-pd and rdb-server, on free ports in a temp dir;
#  3. `cpack` Debian packages, their contents and metadata inspected, both unpacked into a
#     clean root, the unpacked daemons started from the packaged default config.
# Usage: scripts/package-check.sh [BUILD_DIR]   (default: build-release)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
. "$here/lib.sh"
BUILD=${1:-$root/build-release}
JOBS=${JOBS:-2}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/rdb-package-XXXXXX")
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() {
  echo "package-check: FAIL: $*" >&2
  exit 1
}
step() { echo "package-check: $*"; }

step "Release build in $BUILD"
if [ ! -f "$BUILD/build.ninja" ]; then
  cmake -S "$root" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DRDB_TEST_SWITCHES=OFF >/dev/null
fi
cmake --build "$BUILD" -j"$JOBS" --target rdb-server rdb-pd rdb-etcd rdb-cli rdb-bench rdb_client_shared

step "install into a clean prefix"
STAGE=$WORK/prefix
cmake --install "$BUILD" --prefix "$STAGE" >/dev/null
for f in bin/rdb-server bin/rdb-pd bin/rdb-etcd bin/rdb-cli include/rdb/client.h include/rdb/status.h \
  include/rdb/result.h lib/cmake/rdb/rdbConfig.cmake; do
  [ -e "$STAGE/$f" ] || fail "cmake --install did not install $f"
done
# The installed headers include nothing but the standard library and each other.
if grep -h '#include "' "$STAGE"/include/rdb/*.h | grep -v '"rdb/'; then
  fail "an installed header includes a header that is not installed"
fi

step "examples/ built on their own against the installed package"
cmake -S "$root/examples" -B "$WORK/examples" -G Ninja -DCMAKE_PREFIX_PATH="$STAGE" >/dev/null
cmake --build "$WORK/examples" >/dev/null

step "the example against the installed daemons"
BIN=$STAGE/bin
"$BIN/rdb-pd" --addr 127.0.0.1:0 --status-addr 127.0.0.1:0 --data-dir "$WORK/pd" \
  --ready-file "$WORK/pd.ready" 2>"$WORK/pd.log" &
PIDS+=($!)
wait_for_file "$WORK/pd.ready" 30 || fail "installed rdb-pd did not start: $(tail -5 "$WORK/pd.log")"
PD=$(json_field "$WORK/pd.ready" addr)
"$BIN/rdb-server" --addr 127.0.0.1:0 --status-addr 127.0.0.1:0 --data-dir "$WORK/s1" --pd "$PD" \
  --ready-file "$WORK/s1.ready" 2>"$WORK/s1.log" &
PIDS+=($!)
wait_for_file "$WORK/s1.ready" 30 || fail "installed rdb-server did not start: $(tail -5 "$WORK/s1.log")"
out=$("$WORK/examples/rdb-client-example" "$PD") || fail "rdb-client-example failed: $out"
for want in "example/greeting = hello" "counter 0 -> 1" "balance 0 -> 100" "10 timestamps starting at"; do
  [[ "$out" == *"$want"* ]] || fail "rdb-client-example printed no '$want': $out"
done
echo "$out" | sed 's/^/  /'
step "OK"
