#!/usr/bin/env bash
# Re-replicates one big region and samples every store's memory while it happens
# (issue 11: a 10 GiB region is re-replicated with each side's RSS growing by at
# most 256 MiB).
#
# One store holds the region alone while rdb-bench loads SIZE_GIB of incompressible
# 64 KiB values; then two empty stores join, PD adds a replica on each, and each
# gets the whole region as a snapshot. RSS (VmRSS) of every store is sampled every
# 0.5 s from before they join until both have installed it.
#
#   bench/snapshot-rss.sh            # SIZE_GIB=10, SNAP_RATE=0 (unpaced)
#   SIZE_GIB=1 bench/snapshot-rss.sh # a quick run
# Needs about 4 x SIZE_GIB of free disk under WORK_DIR (default /var/tmp).
set -euo pipefail

SIZE_GIB=${SIZE_GIB:-10}
SNAP_RATE=${SNAP_RATE:-0}
WORK_DIR=${WORK_DIR:-/var/tmp}
BIN=${BIN:-$(cd "$(dirname "$0")/.." && pwd)/build/bin}
VALUE=65536
KEYS=$((SIZE_GIB * 16384))

dir=$(mktemp -d "$WORK_DIR/rdb-snapshot-rss.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
metric() { curl -s "http://$1/metrics" | awk -v m="$2" '$1 == m {print $2}' | head -1; }

pd_port=$(port)
"$BIN/rdb-pd" --addr "127.0.0.1:$pd_port" --data-dir "$dir/pd" --log-level warn >"$dir/pd.log" 2>&1 &
pids+=($!)
declare -A store_pid store_status
start_store() {
  local i=$1 status_port
  status_port=$(port)
  "$BIN/rdb-server" --addr 127.0.0.1:0 --status-addr "127.0.0.1:$status_port" --pd "127.0.0.1:$pd_port" \
    --data-dir "$dir/s$i" --snap-max-bytes-per-sec "$SNAP_RATE" --reserve-space 0 >"$dir/s$i.log" 2>&1 &
  store_pid[$i]=$!
  store_status[$i]="127.0.0.1:$status_port"
  pids+=($!)
}
start_store 1
for _ in $(seq 100); do
  "$BIN/rdb-cli" --pd "127.0.0.1:$pd_port" raw-put probe x >/dev/null 2>&1 && break
  sleep 0.2
done

echo "loading $SIZE_GIB GiB ($KEYS keys of $VALUE random bytes) into store 1 ..."
t0=$(date +%s)
"$BIN/rdb-bench" --pd "127.0.0.1:$pd_port" --workload raw-get --keys "$KEYS" --value-size "$VALUE" \
  --random-values --concurrency 32 --duration 0.1 --warmup 0 >/dev/null
echo "loaded in $(($(date +%s) - t0)) s; store 1 RSS $(($(rss_kib "${store_pid[1]}") / 1024)) MiB"

start_store 2
start_store 3
sleep 1
declare -A base peak
for i in 1 2 3; do
  base[$i]=$(rss_kib "${store_pid[$i]}")
  peak[$i]=${base[$i]}
done
echo "baseline RSS (MiB): store1 $((base[1] / 1024)), store2 $((base[2] / 1024)), store3 $((base[3] / 1024))"
t0=$(date +%s)
while :; do
  for i in 1 2 3; do
    r=$(rss_kib "${store_pid[$i]}")
    ((r > peak[$i])) && peak[$i]=$r
  done
  a2=$(metric "${store_status[2]}" rdb_raft_snapshots_applied_total)
  a3=$(metric "${store_status[3]}" rdb_raft_snapshots_applied_total)
  if [[ "${a2:-0}" != 0 && "${a3:-0}" != 0 ]]; then break; fi
  if (($(date +%s) - t0 > 3600)); then echo "snapshots did not arrive within an hour" >&2; exit 1; fi
  sleep 0.5
done
secs=$(($(date +%s) - t0))
echo "both new stores installed the snapshot $secs s after joining"
for i in 1 2 3; do
  echo "store$i: baseline $((base[$i] / 1024)) MiB, peak $((peak[$i] / 1024)) MiB, growth $(((peak[$i] - base[$i]) / 1024)) MiB"
done
grep -h "generated a snapshot\|received a snapshot\|installing a snapshot" "$dir"/s*.log | sed 's/^/  /'
