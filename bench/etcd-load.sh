#!/usr/bin/env bash
# Store more than etcd can (issue 15): PD + STORES stores + one rdb-etcd gateway; rdb-bench's etcd
# driver puts SIZE_GIB of incompressible VALUE-byte values through the gateway (each key once,
# LOADERS at a time), then measures linearizable Range latency on the loaded keys. Prints the
# load's time and rate (and the rate over each tenth of it, from the gateway's put counter),
# then the Range figures, the regions and each store's disk use.
#
#   bench/etcd-load.sh                       # SIZE_GIB=20 STORES=1 REPLICAS=1
#   SIZE_GIB=1 bench/etcd-load.sh            # a quick run
#   STORES=3 REPLICAS=3 SIZE_GIB=10 bench/etcd-load.sh
#   PD_ON_TMPFS=1 bench/etcd-load.sh         # PD's data under /dev/shm
#   STORE_ARGS="--region-split-size 8MiB" SIZE_GIB=2 bench/etcd-load.sh  # many regions sooner
#   PD_ARGS="--gc-life-time 30s" bench/etcd-load.sh   # GC early
# Needs about 1.3 x SIZE_GIB x REPLICAS of free disk under WORK_DIR (default /var/tmp), more
# while PD moves regions between stores (snapshot files).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
BIN=${BIN:-build/bin}
SIZE_GIB=${SIZE_GIB:-20}
REPLICAS=${REPLICAS:-1}
STORES=${STORES:-1}
VALUE=${VALUE:-262144}
LOADERS=${LOADERS:-32}
RANGE_SECONDS=${RANGE_SECONDS:-20}
WORK_DIR=${WORK_DIR:-/var/tmp}
KEYS=$((SIZE_GIB * 1024 * 1024 * 1024 / VALUE))
[ -x "$BIN/rdb-bench" ] || make build >/dev/null

WORK=$(mktemp -d "$WORK_DIR/rdb-etcd-load.XXXXXX")
PIDS=()
LOGS=${LOGS:-/tmp/rdb-etcd-load-logs}
PROGRESS=""
PD_DIR=""
finish() {
  local rc=$?
  [ -z "$PROGRESS" ] || kill "$PROGRESS" 2>/dev/null || true
  if [ "$rc" != 0 ]; then  # keep what explains a failed run: logs, metrics, stacks (with gdb)
    rm -rf "$LOGS" && mkdir -p "$LOGS"
    for f in "$WORK"/*.ready; do
      [ -f "$f" ] || continue
      n=$(basename "$f" .ready)
      status=$(grep -o '"status_addr":"[^"]*"' "$f" | cut -d'"' -f4)
      [ -z "$status" ] || curl -s -m 10 "http://$status/metrics" >"$LOGS/$n.metrics" || true
      pid=$(grep -o '"pid":[0-9]*' "$f" | cut -d: -f2)
      if [ -n "$pid" ] && command -v gdb >/dev/null; then
        timeout 60 gdb -batch -p "$pid" -ex "thread apply all bt" >"$LOGS/$n.stacks" 2>&1 || true
      fi
    done
    cp "$WORK"/*.log "$LOGS"/ 2>/dev/null
    echo "logs, metrics (and stacks) kept in $LOGS" >&2
  fi
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -z "$PD_DIR" ] || [ "$PD_DIR" = "$WORK/pd" ] || rm -rf "$PD_DIR"
  rm -rf "$WORK"
}
trap finish EXIT
addr_of() { grep -o "\"$2\":\"[^\"]*\"" "$1" | cut -d'"' -f4; }

PD_DIR=$WORK/pd
if [ -n "${PD_ON_TMPFS:-}" ]; then  # PD's data in memory: its synced writes off the store's disk
  PD_DIR=$(mktemp -d /dev/shm/rdb-pd.XXXXXX)
fi
"$BIN/rdb-pd" --addr 127.0.0.1:0 --status-addr 127.0.0.1:0 --data-dir "$PD_DIR" --ready-file "$WORK/pd.ready" \
  --max-replicas "$REPLICAS" ${PD_ARGS:-} 2>"$WORK/pd.log" &
PIDS+=($!)
wait_for_file "$WORK/pd.ready" 30 || { tail -5 "$WORK/pd.log"; exit 1; }
PD=$(addr_of "$WORK/pd.ready" addr)
for i in $(seq "$STORES"); do
  "$BIN/rdb-server" --addr 127.0.0.1:0 --status-addr 127.0.0.1:0 --data-dir "$WORK/s$i" --pd "$PD" \
    --reserve-space 0 --ready-file "$WORK/s$i.ready" ${STORE_ARGS:-} 2>"$WORK/s$i.log" &
  PIDS+=($!)
  wait_for_file "$WORK/s$i.ready" 60 || { tail -5 "$WORK/s$i.log"; exit 1; }
done
"$BIN/rdb-etcd" --pd "$PD" --addr 127.0.0.1:0 --status-addr 127.0.0.1:0 --ready-file "$WORK/gw.ready" \
  --request-timeout-ms "${REQUEST_TIMEOUT_MS:-30000}" 2>"$WORK/gw.log" &
PIDS+=($!)
wait_for_file "$WORK/gw.ready" 60 || { tail -5 "$WORK/gw.log"; exit 1; }
GW=$(addr_of "$WORK/gw.ready" addr)

echo "loading $SIZE_GIB GiB through rdb-etcd ($KEYS keys of $VALUE random bytes, $LOADERS puts in flight," \
  "$REPLICAS replica(s) on $STORES store(s)) ..."
# Progress: disk use every tenth of the way (the load itself prints nothing until done).
(
  step=$((SIZE_GIB * 1024 / 10))
  next=$step
  t0=$SECONDS
  while sleep 5; do
    # du fails when RocksDB deletes a file under it: that sample is skipped, not fatal
    used=$(du -sm "$WORK" 2>/dev/null | cut -f1) || true
    if [ -n "$used" ] && [ "$used" -ge $((next * REPLICAS)) ]; then
      echo "  $((next / 1024)).$((next % 1024 * 10 / 1024)) GiB on disk per replica after $((SECONDS - t0)) s"
      next=$((next + step))
    fi
  done
) &
PROGRESS=$!
t0=$(date +%s.%N)
"$BIN/rdb-bench" --driver etcd --endpoints "$GW" --workload raw-get --keys "$KEYS" --value-size "$VALUE" \
  --random-values --concurrency "$LOADERS" --duration "$RANGE_SECONDS" --warmup 1 --json >"$WORK/bench.json"
t1=$(date +%s.%N)
kill "$PROGRESS" 2>/dev/null || true
python3 - "$WORK/bench.json" "$t0" "$t1" "$SIZE_GIB" "$KEYS" "$RANGE_SECONDS" <<'PY'
import json, sys
b = json.load(open(sys.argv[1]))
t0, t1, gib, keys, rs = float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
load = (t1 - t0) - rs - 1  # the measured Range phase and its warm-up came after the load
print(f"loaded in {load:.0f} s: {gib * 1024 / load:.1f} MiB/s, {keys / load:.0f} puts/s")
lat = b["latency_us"]
print("Range (linearizable, one key of {} KiB, {} in flight) over {:.0f} s: {:.0f} ops/s, p50 {:.0f} us, "
      "p99 {:.0f} us, max {:.0f} us, errors {}".format(b["value_size"] // 1024, b["concurrency"], b["duration_s"],
                                                      b["ops_per_s"], lat["p50"], lat["p99"], lat["max"], sum(b["errors"].values()) if isinstance(b["errors"], dict) else b["errors"]))
PY
"$BIN/rdb-cli" --pd "$PD" --json cluster >"$WORK/cluster.json"
python3 - "$WORK/cluster.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
print(f"regions: {len(c['regions'])}")
for s in c["stores"]:
    print(f"store {s['id']}: {s['region_count']} regions, {s['leader_count']} leaders, "
          f"{s.get('region_size', 0) / 2**30:.2f} GiB of regions")
PY
for i in $(seq "$STORES"); do echo "store $i disk: $(du -sh "$WORK/s$i" | cut -f1)"; done
