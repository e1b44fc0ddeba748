#!/usr/bin/env bash
# TSO availability across PD leader kills (issue 13's failover figure). Starts a PD
# group of three members in a temp dir, runs rdb-bench --workload tso against all of
# them with --gap-report-ms, and KILLS times: finds the leader (rdb-cli pd-members),
# kill -9s it, waits for TSO to come back, restarts the member on its address.
# Prints the distribution of the outages rdb-bench saw (no successful TSO call).
#   bench/pd-failover.sh [KILLS] [extra rdb-pd flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
kills=${1:-50}
shift $(( $# > 0 ? 1 : 0 ))
bin=build/bin
dir=$(mktemp -d)
base=${PD_FAILOVER_PORT:-24790}
initial="pd1=127.0.0.1:$((base + 1)),pd2=127.0.0.1:$((base + 2)),pd3=127.0.0.1:$((base + 3))"
endpoints="127.0.0.1:$((base + 1)),127.0.0.1:$((base + 2)),127.0.0.1:$((base + 3))"
declare -A pid
start_member() {
  local i=$1
  shift
  "$bin/rdb-pd" --name "pd$i" --initial-cluster "$initial" --data-dir "$dir/pd$i" \
    --status-addr "127.0.0.1:$((base + 10 + i))" "$@" 2>>"$dir/pd$i.log" &
  pid[$i]=$!
}
cleanup() {
  kill "${pid[@]}" "${bench:-}" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
for i in 1 2 3; do start_member "$i" "$@"; done
leader() {
  "$bin/rdb-cli" --pd "$endpoints" --timeout-ms 10000 --json pd-members |
    python3 -c 'import json,sys; print([m["name"] for m in json.load(sys.stdin)["members"] if m["leader"]][0])'
}
leader >/dev/null  # the group is up
# Long enough for every kill (about 3 s each); the kills end before it does.
"$bin/rdb-bench" --pd "$endpoints" --workload tso --concurrency 8 --warmup 0 --duration $(( 6 + kills * 4 )) \
  --gap-report-ms 100 --json 2>"$dir/bench.err" >"$dir/bench.out" &
bench=$!
sleep 2  # steady load before the first kill
for k in $(seq 1 "$kills"); do
  victim=$(leader)
  n=${victim#pd}
  kill -9 "${pid[$n]}"
  wait "${pid[$n]}" 2>/dev/null || true
  # TSO is back once a fresh call through the survivors answers.
  "$bin/rdb-cli" --pd "$endpoints" --timeout-ms 20000 tso >/dev/null
  start_member "$n" "$@"
  sleep 1.5  # the restarted member catches up before the next kill (the schedule)
  echo "kill $k/$kills: $victim" >&2
done
wait "$bench"
python3 - "$dir/bench.out" "$kills" <<'PY'
import json, sys
r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
gaps = sorted(r.get("gaps_ms", []))
kills = int(sys.argv[2])
print(f"TSO throughput over the run: {r['timestamps_per_s']:.0f}/s; {kills} leader kills, {len(gaps)} outages >= 100 ms")
if gaps:
    q = lambda p: gaps[min(len(gaps) - 1, int(p * len(gaps)))]
    print(f"outage ms: min {gaps[0]:.0f}  p50 {q(0.5):.0f}  p90 {q(0.9):.0f}  p99 {q(0.99):.0f}  max {gaps[-1]:.0f}")
    print("all:", " ".join(f"{g:.0f}" for g in gaps))
PY
