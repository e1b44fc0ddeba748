#!/usr/bin/env bash
# How fast clients recover when the Raft leader hangs (issue: a hung store must not
# stall its clients). Starts the playground (PD + 3 stores) in a temp dir, runs
# rdb-bench raw-put with 16 in flight, SIGSTOPs the leader's store at PAUSE_AT s for
# PAUSE_FOR s, and prints rdb-bench's per-second throughput around the pause.
#   bench/pause-leader.sh [PAUSE_AT] [PAUSE_FOR] [extra rdb-bench flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
pause_at=${1:-4}
pause_for=${2:-8}
shift $(( $# > 2 ? 2 : $# ))
bin=build/bin
dir=$(mktemp -d)
scripts/playground.sh --data "$dir" >"$dir/playground.out" 2>&1 &
pg=$!
cleanup() {
  pkill -CONT -f "rdb-server.*$dir" 2>/dev/null || true
  kill -INT "$pg" 2>/dev/null || true
  wait "$pg" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
for _ in $(seq 1 120); do
  if "$bin/rdb-cli" --pd 127.0.0.1:2379 --json cluster 2>/dev/null |
    python3 -c 'import json,sys; r=json.load(sys.stdin)["regions"]; sys.exit(0 if r and len([p for p in r[0]["peers"] if not p.get("is_learner")])==3 and r[0]["leader"]["id"] else 1)' 2>/dev/null; then
    break
  fi
  sleep 0.5  # polling the cluster's state, with a bound
done
duration=$(( pause_at + pause_for + 6 ))
"$bin/rdb-bench" --pd 127.0.0.1:2379 --workload raw-put --concurrency 16 --warmup 0 --duration "$duration" "$@" \
  2>"$dir/bench.err" >"$dir/bench.out" &
bench=$!
sleep "$pause_at"  # the fault schedule
leader_addr=$("$bin/rdb-cli" --pd 127.0.0.1:2379 --json cluster | python3 -c '
import json,sys
c=json.load(sys.stdin); lid=c["regions"][0]["leader"]["store_id"]
print([s["address"] for s in c["stores"] if s["id"]==lid][0])')
leader_pid=$(pgrep -f "rdb-server --addr $leader_addr .*$dir")
echo "pausing the leader (store at $leader_addr, pid $leader_pid) at ${pause_at}s for ${pause_for}s"
kill -STOP "$leader_pid"
sleep "$pause_for"  # the fault schedule
kill -CONT "$leader_pid"
wait "$bench" || true
cat "$dir/bench.err"
grep -E "ops/s|errors|throughput" "$dir/bench.out" || cat "$dir/bench.out"
