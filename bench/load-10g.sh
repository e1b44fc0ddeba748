#!/usr/bin/env bash
# A 10 GiB load across regions (issue 12): PD + 3 stores with the default split
# size (96 MiB), rdb-bench loads SIZE_GIB of incompressible 64 KiB values at
# CONCURRENCY in flight; the regions split as the data grows and PD spreads them.
# Prints the load's time and rate, then — once the cluster settled — the regions
# and leaders per store, their sizes, disk use and RSS.
#
#   bench/load-10g.sh                 # SIZE_GIB=10
#   SIZE_GIB=1 bench/load-10g.sh      # a quick run
#   STORE_ARGS="--raft-log-gc-threshold 64" bench/load-10g.sh
# Needs about 3.5 x SIZE_GIB of free disk under WORK_DIR (default /var/tmp).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
BIN=${BIN:-build/bin}
SIZE_GIB=${SIZE_GIB:-10}
CONCURRENCY=${CONCURRENCY:-64}
SETTLE_SECONDS=${SETTLE_SECONDS:-60}
WORK_DIR=${WORK_DIR:-/var/tmp}
BASE=${BASE:-27790}
VALUE=65536
KEYS=$((SIZE_GIB * 16384))
[ -x "$BIN/rdb-bench" ] || make build >/dev/null

WORK=$(mktemp -d "$WORK_DIR/rdb-load.XXXXXX")
PIDS=()
STORE_PIDS=()
LOGS=${LOGS:-/tmp/rdb-load-logs}
finish() {
  local rc=$?
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "$rc" != 0 ]; then  # keep the daemons' logs of a failed run
    rm -rf "$LOGS" && mkdir -p "$LOGS" && cp "$WORK"/*.log "$LOGS"/ 2>/dev/null && echo "logs kept in $LOGS" >&2
  fi
  rm -rf "$WORK"
}
trap finish EXIT
# shellcheck disable=SC2086  # STORE_ARGS: extra rdb-server flags, split on spaces
start_bench_cluster "$WORK" "$BASE" --reserve-space 0 ${STORE_ARGS:-}

echo "loading $SIZE_GIB GiB ($KEYS keys of $VALUE random bytes, $CONCURRENCY in flight) ..."
t0=$(date +%s.%N)
"$BIN/rdb-bench" --pd "$PD" --workload raw-get --keys "$KEYS" --value-size "$VALUE" --random-values \
  --concurrency "$CONCURRENCY" --duration 0.1 --warmup 0 >/dev/null
t1=$(date +%s.%N)
awk -v a="$t0" -v b="$t1" -v g="$SIZE_GIB" 'BEGIN { s = b - a; printf "loaded in %.0f s: %.1f MiB/s\n", s, g * 1024 / s }'
echo "regions right after the load: $("$BIN/rdb-cli" --pd "$PD" cluster | grep -c "region " || true)"
echo "settling for $SETTLE_SECONDS s ..."
sleep "$SETTLE_SECONDS"
"$BIN/rdb-cli" --pd "$PD" --json cluster >"$WORK/cluster.json"
python3 - "$WORK/cluster.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
regions = c["regions"]
print(f"regions: {len(regions)}")
for s in c["stores"]:
    print(f"store {s['id']}: {s['region_count']} regions, {s['leader_count']} leaders, "
          f"{s.get('region_size', 0) / 2**30:.2f} GiB of regions")
sizes = sorted(r.get("approximate_size", 0) for r in regions)
if sizes:
    print(f"region sizes: min {sizes[0] / 2**20:.0f} MiB, median {sizes[len(sizes) // 2] / 2**20:.0f} MiB, "
          f"max {sizes[-1] / 2**20:.0f} MiB")
PY
for i in 1 2 3; do
  echo "store $i: disk $(du -sh "$WORK/store$i" | cut -f1), RSS $(awk '/VmRSS/ {printf "%.0f MiB", $2 / 1024}' "/proc/${STORE_PIDS[$((i - 1))]}/status")"
done
