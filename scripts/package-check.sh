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
  local rc=$?
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT
fail() {
  echo "package-check: FAIL: $*" >&2
  exit 1
}
step() { echo "package-check: $*"; }

step "Release build in $BUILD"
if [ ! -f "$BUILD/build.ninja" ]; then
  cmake -S "$root" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DRDB_TEST_SWITCHES=OFF \
    -DCMAKE_INSTALL_PREFIX=/usr >/dev/null
fi
cmake --build "$BUILD" -j"$JOBS" --target rdb-server rdb-pd rdb-etcd rdb-cli rdb-bench rdb_client_shared \
  rdb_default_configs

step "install into a clean root (DESTDIR)"
ROOT=$WORK/root
DESTDIR=$ROOT cmake --install "$BUILD" >/dev/null
STAGE=$ROOT/usr
for f in usr/bin/rdb-server usr/bin/rdb-pd usr/bin/rdb-etcd usr/bin/rdb-cli usr/bin/rdb-bench \
  usr/include/rdb/client.h usr/include/rdb/status.h usr/include/rdb/result.h \
  etc/rdb/rdb-server.toml etc/rdb/rdb-pd.toml etc/rdb/rdb-etcd.toml usr/lib/systemd/system/rdb-server.service; do
  [ -e "$ROOT/$f" ] || fail "cmake --install did not install $f"
done
[ -n "$(find "$STAGE/lib" -name 'librdbclient.so.*')" ] || fail "cmake --install did not install librdbclient.so"
[ -n "$(find "$STAGE/lib" -path '*/cmake/rdb/rdbConfig.cmake')" ] || fail "cmake --install did not install rdbConfig.cmake"
# A shipped binary has no test-only switches.
if "$STAGE/bin/rdb-server" --help | grep -q -- '--test-'; then
  fail "the Release rdb-server has test-only switches"
fi
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
for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
PIDS=()

step "Debian packages (cpack)"
rm -f "$BUILD"/*.deb
(cd "$BUILD" && cpack -G DEB >/dev/null) || fail "cpack failed"
SERVER_DEB=$(ls "$BUILD"/rdb_*.deb)
DEV_DEB=$(ls "$BUILD"/rdb-dev_*.deb)
dpkg-deb -c "$SERVER_DEB" >"$WORK/server.list"
dpkg-deb -c "$DEV_DEB" >"$WORK/dev.list"
for f in ./usr/bin/rdb-server ./usr/bin/rdb-pd ./usr/bin/rdb-etcd ./usr/bin/rdb-cli ./etc/rdb/rdb-server.toml \
  ./etc/rdb/rdb-pd.toml ./etc/rdb/rdb-etcd.toml ./usr/lib/systemd/system/rdb-pd.service \
  ./usr/lib/systemd/system/rdb-server.service ./usr/lib/systemd/system/rdb-etcd.service; do
  grep -q " $f\$" "$WORK/server.list" || fail "$(basename "$SERVER_DEB") lacks $f"
done
for f in ./usr/include/rdb/client.h ./usr/include/rdb/status.h ./usr/include/rdb/result.h; do
  grep -q " $f\$" "$WORK/dev.list" || fail "$(basename "$DEV_DEB") lacks $f"
done
grep -q "librdbclient.so" "$WORK/dev.list" || fail "$(basename "$DEV_DEB") lacks librdbclient.so"
grep -q "cmake/rdb/rdbConfig.cmake" "$WORK/dev.list" || fail "$(basename "$DEV_DEB") lacks the CMake package"
if grep -q "include/rdb" "$WORK/server.list"; then fail "the server package carries headers"; fi
dpkg-deb -I "$SERVER_DEB" >"$WORK/server.info"
grep -q "Package: rdb$" "$WORK/server.info" || fail "server package name: $(cat "$WORK/server.info")"
grep -q "Depends:.*libgrpc" "$WORK/server.info" || fail "server package has no gRPC dependency (shlibdeps)"
dpkg-deb --ctrl-tarfile "$SERVER_DEB" | tar -xO ./conffiles | grep -q "^/etc/rdb/rdb-server.toml$" ||
  fail "/etc/rdb/rdb-server.toml is not a conffile"
echo "  $(basename "$SERVER_DEB"): $(grep -c . "$WORK/server.list") entries; $(basename "$DEV_DEB"): $(grep -c . "$WORK/dev.list")"

step "the packages unpacked into a clean root, the daemons started from the packaged configs"
PKG=$WORK/pkgroot
dpkg-deb -x "$SERVER_DEB" "$PKG"
dpkg-deb -x "$DEV_DEB" "$PKG"
# The packaged files, with this test's ports and dirs given as flags over them.
"$PKG/usr/bin/rdb-pd" --config "$PKG/etc/rdb/rdb-pd.toml" --addr 127.0.0.1:0 --status-addr 127.0.0.1:0 \
  --data-dir "$WORK/pkg-pd" --ready-file "$WORK/pkg-pd.ready" 2>"$WORK/pkg-pd.log" &
PIDS+=($!)
wait_for_file "$WORK/pkg-pd.ready" 30 || fail "packaged rdb-pd did not start: $(tail -5 "$WORK/pkg-pd.log")"
PD=$(json_field "$WORK/pkg-pd.ready" addr)
"$PKG/usr/bin/rdb-server" --config "$PKG/etc/rdb/rdb-server.toml" --pd "$PD" --addr 127.0.0.1:0 \
  --status-addr 127.0.0.1:0 --data-dir "$WORK/pkg-s1" --ready-file "$WORK/pkg-s1.ready" 2>"$WORK/pkg-s1.log" &
PIDS+=($!)
wait_for_file "$WORK/pkg-s1.ready" 30 || fail "packaged rdb-server did not start: $(tail -5 "$WORK/pkg-s1.log")"
"$PKG/usr/bin/rdb-cli" --pd "$PD" raw-put package/check ok >/dev/null || fail "rdb-cli raw-put failed"
[ "$("$PKG/usr/bin/rdb-cli" --pd "$PD" raw-get package/check)" = ok ] || fail "rdb-cli raw-get did not read it back"
# examples/ built against the unpacked -dev package, too.
cmake -S "$root/examples" -B "$WORK/examples-deb" -G Ninja -DCMAKE_PREFIX_PATH="$PKG/usr" >/dev/null
cmake --build "$WORK/examples-deb" >/dev/null
LD_LIBRARY_PATH=$(dirname "$(find "$PKG/usr/lib" -name 'librdbclient.so.*' | head -1)") \
  "$WORK/examples-deb/rdb-client-example" "$PD" >/dev/null || fail "the example built against rdb-dev failed"
step "OK"
