#!/usr/bin/env bash
# `etcdctl check perf` against rdb-etcd (PD + 3 stores + one gateway) and against a real
# 3-member etcd, one after the other on this machine. Prints etcdctl's verdicts.
#   bench/etcd-check-perf.sh            # --load=s
#   LOAD=m bench/etcd-check-perf.sh     # s, m, l or xl (etcdctl's load profiles)
#   STORE_ARGS=--lease-reads LOAD=m bench/etcd-check-perf.sh   # extra rdb-server flags
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
BIN=${BIN:-build/bin}
LOAD=${LOAD:-s}
WORK=$(mktemp -d /tmp/rdb-check-perf.XXXXXX)
PIDS=()
stop_all() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  PIDS=()
}
trap 'stop_all; rm -rf "$WORK"' EXIT
addr_of() { grep -o '"addr":"[^"]*"' "$1" | cut -d'"' -f4; }

"$BIN/rdb-pd" --addr 127.0.0.1:0 --status-addr 127.0.0.1:0 --data-dir "$WORK/pd" --ready-file "$WORK/pd.ready" \
  --max-replicas 3 2>"$WORK/pd.log" &
PIDS+=($!)
wait_for_file "$WORK/pd.ready" 30 || { tail -5 "$WORK/pd.log"; exit 1; }
PD=$(addr_of "$WORK/pd.ready")
for i in 1 2 3; do
  "$BIN/rdb-server" --addr 127.0.0.1:0 --status-addr 127.0.0.1:0 --data-dir "$WORK/s$i" --pd "$PD" \
    --ready-file "$WORK/s$i.ready" ${STORE_ARGS:-} 2>"$WORK/s$i.log" &
  PIDS+=($!)
  wait_for_file "$WORK/s$i.ready" 60 || { tail -5 "$WORK/s$i.log"; exit 1; }
done
"$BIN/rdb-etcd" --pd "$PD" --addr 127.0.0.1:0 --ready-file "$WORK/gw.ready" 2>"$WORK/gw.log" &
PIDS+=($!)
wait_for_file "$WORK/gw.ready" 60 || { tail -5 "$WORK/gw.log"; exit 1; }
GW=$(addr_of "$WORK/gw.ready")
echo "== rdb-etcd ($GW: PD + 3 stores), etcdctl check perf --load=$LOAD"
etcdctl --endpoints="$GW" check perf --load="$LOAD" 2>&1 | tr '\r' '\n' | grep -E '^(PASS|FAIL)|[Ee]rror' || true
stop_all

BASE=${ETCD_BASE:-23890}
CLUSTER=""
for i in 1 2 3; do CLUSTER+="${CLUSTER:+,}e$i=http://127.0.0.1:$((BASE + 10 + i))"; done
ENDPOINTS=""
for i in 1 2 3; do
  etcd --name "e$i" --data-dir "$WORK/etcd$i" --listen-client-urls "http://127.0.0.1:$((BASE + i))" \
    --advertise-client-urls "http://127.0.0.1:$((BASE + i))" --listen-peer-urls "http://127.0.0.1:$((BASE + 10 + i))" \
    --initial-advertise-peer-urls "http://127.0.0.1:$((BASE + 10 + i))" --initial-cluster "$CLUSTER" \
    >"$WORK/etcd$i.log" 2>&1 &
  PIDS+=($!)
  ENDPOINTS+="${ENDPOINTS:+,}127.0.0.1:$((BASE + i))"
done
deadline=$((SECONDS + 30))
until etcdctl --endpoints="$ENDPOINTS" endpoint health >/dev/null 2>&1; do
  [ $SECONDS -lt $deadline ] || { echo "etcd did not become healthy"; exit 1; }
  sleep 0.2
done
echo "== etcd $(etcd --version | head -1 | awk '{print $3}') (3 members), etcdctl check perf --load=$LOAD"
etcdctl --endpoints="$ENDPOINTS" check perf --load="$LOAD" 2>&1 | tr '\r' '\n' | grep -E '^(PASS|FAIL)|[Ee]rror' || true
