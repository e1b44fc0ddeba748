#!/usr/bin/env bash
# Many regions on this machine: PD + 3 stores on loopback, fresh for each row.
#   bench/regions.sh                      # put and get @256 with 1 vs 64 regions; idle cost at 1k regions
#   DURATION=30 IDLE_REGIONS=1000 bench/regions.sh
#   IDLE_ONLY=1 bench/regions.sh          # only the idle cost
#   IDLE_REGIONS=0 bench/regions.sh       # only the traffic rows
#   PD_ARGS="--leader-schedule-limit 0" ASYNC=1 DURATION=60 IDLE_REGIONS=0 \
#     STORE_ARGS="--raft-log-gc-replicated-entries 0" bench/regions.sh   # leaders kept, async, store flags
# Rows: rdb-bench raw-put and raw-get at 256 in flight over KEYS keys, the keys split
# into 1 and into 64 regions first (rdb-bench --regions). Then the idle cost: the
# keys split into IDLE_REGIONS regions, no traffic, each store's CPU (share of one
# core over IDLE_SECONDS) and RSS. Prints a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
BIN=${BIN:-build/bin}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
KEYS=${KEYS:-10000}
IDLE_REGIONS=${IDLE_REGIONS:-1000}
IDLE_SECONDS=${IDLE_SECONDS:-10}
BASE=${BASE:-25790}  # PD BASE, PD status BASE+1, stores BASE+11..13, status BASE+21..23
[ -x "$BIN/rdb-bench" ] || make build >/dev/null

WORK=$(mktemp -d /tmp/rdb-regions.XXXXXX)
PIDS=()
STORE_PIDS=()
stop_all() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  PIDS=()
  STORE_PIDS=()
}
trap 'stop_all; rm -rf "$WORK"' EXIT
field() { grep -o "\"$2\":[0-9.e+-]*" "$1" | head -1 | cut -d: -f2; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_mib() { awk '/VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }

start_cluster() {
  rm -rf "$WORK/run"
  mkdir -p "$WORK/run"
  # shellcheck disable=SC2086 # STORE_ARGS: extra rdb-server flags, word-split on purpose
  start_bench_cluster "$WORK/run" "$BASE" ${STORE_ARGS:-}
}

row() {  # workload regions
  start_cluster
  "$BIN/rdb-bench" --pd "$PD" --workload "$1" --concurrency 256 --keys "$KEYS" --regions "$2" \
    $([ -z "${ASYNC:-}" ] || echo --async) \
    --duration "$DURATION" --warmup "$WARMUP" --json >"$WORK/$1-$2.json" 2>"$WORK/$1-$2.err"
  stop_all
  awk -v w="$1" -v r="$2" -v o="$(field "$WORK/$1-$2.json" ops_per_s)" -v p="$(field "$WORK/$1-$2.json" p99)" \
    'BEGIN { printf "| %s | 256 | %d | %.0f | %.1f |\n", w, r, o, p / 1000 }'
}

if [ -z "${IDLE_ONLY:-}" ]; then
  echo "| workload | in flight | regions | ops/s | p99 ms |"
  echo "|---|---:|---:|---:|---:|"
  for w in raw-put raw-get; do
    row "$w" 1
    row "$w" 64
  done
fi

# Idle cost with many regions (IDLE_REGIONS=0 skips it).
[ "$IDLE_REGIONS" -gt 0 ] || exit 0
start_cluster
"$BIN/rdb-bench" --pd "$PD" --workload raw-put --concurrency 1 --keys "$KEYS" --regions "$IDLE_REGIONS" \
  --ops 1 --warmup 0 >/dev/null 2>"$WORK/split.err" || { cat "$WORK/split.err"; exit 1; }
deadline=$((SECONDS + 120))
until [ "$("$BIN/rdb-cli" --pd "$PD" --json cluster | grep -o '"start_key":' | wc -l)" -ge "$IDLE_REGIONS" ]; do
  [ $SECONDS -lt $deadline ] || { echo "PD does not know $IDLE_REGIONS regions"; exit 1; }
  sleep 1
done
sleep 5  # let the elections and first heartbeats of the new regions pass
before=(); for p in "${STORE_PIDS[@]}"; do before+=("$(ticks "$p")"); done
sleep "$IDLE_SECONDS"
hz=$(getconf CLK_TCK)
echo
echo "Idle, $IDLE_REGIONS regions (3 replicas each), ${IDLE_SECONDS} s:"
i=0
for p in "${STORE_PIDS[@]}"; do
  after=$(ticks "$p")
  awk -v a="$after" -v b="${before[$i]}" -v hz="$hz" -v s="$IDLE_SECONDS" -v rss="$(rss_mib "$p")" -v n=$((i + 1)) \
    'BEGIN { printf "  store %d: %.1f %% of a core, RSS %d MiB\n", n, 100 * (a - b) / hz / s, rss }'
  i=$((i + 1))
done
