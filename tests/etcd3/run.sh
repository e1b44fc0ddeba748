#!/usr/bin/env bash
# Runs the npm etcd3 suite (suite.mjs) against rdb-etcd: PD + one store + a gateway on
# ephemeral ports in a temp dir, all stopped at the end. Usage: run.sh BIN_DIR
# Exit 77 (CTest: skipped) when Node.js or npm is missing; the packages come from the npm
# registry (package-lock.json pins them) into tests/etcd3/node_modules on first run.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../../scripts/lib.sh"
BIN=$(cd "${1:?usage: run.sh BIN_DIR}" && pwd)
command -v node >/dev/null && command -v npm >/dev/null || { echo "etcd3 suite: node/npm missing: skipped"; exit 77; }
if [ ! -d "$here/node_modules/etcd3" ]; then
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi
WORK=$(mktemp -d /tmp/rdb-etcd3.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
addr_of() { grep -o '"addr":"[^"]*"' "$1" | cut -d'"' -f4; }
"$BIN/rdb-pd" --addr 127.0.0.1:0 --status-addr 127.0.0.1:0 --data-dir "$WORK/pd" --ready-file "$WORK/pd.ready" \
  --max-replicas 1 2>"$WORK/pd.log" &
PIDS+=($!)
wait_for_file "$WORK/pd.ready" 30 || { tail -5 "$WORK/pd.log"; exit 1; }
PD=$(addr_of "$WORK/pd.ready")
"$BIN/rdb-server" --addr 127.0.0.1:0 --status-addr 127.0.0.1:0 --data-dir "$WORK/s1" --pd "$PD" \
  --ready-file "$WORK/s1.ready" 2>"$WORK/s1.log" &
PIDS+=($!)
wait_for_file "$WORK/s1.ready" 60 || { tail -5 "$WORK/s1.log"; exit 1; }
"$BIN/rdb-etcd" --pd "$PD" --addr 127.0.0.1:0 --ready-file "$WORK/gw.ready" 2>"$WORK/gw.log" &
PIDS+=($!)
wait_for_file "$WORK/gw.ready" 60 || { tail -5 "$WORK/gw.log"; exit 1; }
GW=$(addr_of "$WORK/gw.ready")
cd "$here"
if ! ETCD_ENDPOINT="$GW" node --test --test-reporter=spec suite.mjs; then
  echo "--- gateway log"; tail -20 "$WORK/gw.log"
  exit 1
fi
