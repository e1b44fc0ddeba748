#!/usr/bin/env bash
# Time from a region crossing its split threshold to PD showing it split.
#   bench/split-time.sh                   # 3 runs, default --split-check-interval-ms (10 s)
#   RUNS=5 CHECK_MS=1000 bench/split-time.sh
# Each run: a fresh PD + 3 stores with --region-split-size 1MiB (a region splits past
# 1.5 MiB), then rdb-bench writes 1 KiB values over 2,000 keys (about 1.9 MiB) as fast as
# it can; the clock starts when those writes are done (the threshold was crossed a
# little before) and stops when `rdb-cli cluster` shows more than one region.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
BIN=${BIN:-build/bin}
RUNS=${RUNS:-3}
CHECK_MS=${CHECK_MS:-10000}
BASE=${BASE:-27790}
[ -x "$BIN/rdb-bench" ] || make build >/dev/null
WORK=$(mktemp -d /tmp/rdb-split-time.XXXXXX)
PIDS=()
STORE_PIDS=()
stop_all() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  PIDS=()
}
trap 'stop_all; rm -rf "$WORK"' EXIT
now_ms() { date +%s%3N; }

for run in $(seq 1 "$RUNS"); do
  rm -rf "$WORK/run" && mkdir -p "$WORK/run"
  start_bench_cluster "$WORK/run" "$BASE" --region-split-size 1MiB --split-check-interval-ms "$CHECK_MS"
  # 6,000 puts of 1 KiB over 2,000 keys: about 95 % of the keys, some 1.9 MiB.
  "$BIN/rdb-bench" --pd "$PD" --workload raw-put --concurrency 16 --keys 2000 --ops 6000 --value-size 1024 \
    --warmup 0 >/dev/null 2>&1
  crossed=$(now_ms)
  deadline=$((SECONDS + 120))
  until [ "$("$BIN/rdb-cli" --pd "$PD" --json cluster | grep -o '"start_key":' | wc -l)" -gt 1 ]; do
    [ $SECONDS -lt $deadline ] || { echo "run $run: no split within 120 s"; exit 1; }
    sleep 0.05
  done
  echo "run $run: split seen $(( $(now_ms) - crossed )) ms after the writes (check interval $CHECK_MS ms)"
  stop_all
done
