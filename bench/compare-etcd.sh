#!/usr/bin/env bash
# Side-by-side benchmark of rdb and etcd on this machine, same load generator
# (rdb-bench with --driver rdb / --driver etcd), same matrix, one script run.
#   bench/compare-etcd.sh                 # 10 s per row (+2 s warm-up)
#   DURATION=30 bench/compare-etcd.sh     # longer rows
# Installs Debian's etcd-server if missing. Starts a 3-member etcd (default
# settings: fsync'd WAL) and measures it, stops it, then starts PD + 3 rdb stores
# (default settings: synced writes) and measures it. Both clusters run on loopback
# with their own temp data dirs, one after the other. Prints a Markdown table with
# both figures and the ratio per row, the stores' memory, and how to reproduce.
# With GATEWAY=1 (the default) the same etcd-driver rows also run against rdb-etcd (etcd's
# API served over the rdb cluster by one gateway): the "gateway" columns. GATEWAY=0 skips them.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
BIN=${BIN:-build/bin}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
VALUE_SIZE=${VALUE_SIZE:-1024}
KEYS=${KEYS:-10000}
ETCD_BASE=${ETCD_BASE:-23790}   # etcd client ports BASE+1..3, peer ports BASE+11..13
RDB_BASE=${RDB_BASE:-24790}     # PD BASE, PD status BASE+1, stores BASE+11..13, status BASE+21..23, gateway BASE+30
GATEWAY=${GATEWAY:-1}
# RAFT_TCP=1 (the default): Raft between the stores on the plain-TCP transport (rdb-server
# --raft-addr, docs/design.md); RAFT_TCP=0: on gRPC.
RAFT_TCP=${RAFT_TCP:-1}
# TSO_TCP=1 (the default): PD serves TSO on plain TCP too (rdb-pd --tso-addr) and the clients
# move there; TSO_TCP=0: TSO on the gRPC stream only.
TSO_TCP=${TSO_TCP:-1}

# The matrix: workload:in-flight (transferN: a transaction reading and writing N keys;
# rdb's Transaction, etcd's Txn guarded by every key's mod_revision; ycsb-a/b/c: YCSB's core
# workloads A (50 % reads, 50 % updates), B (95/5), C (read-only) over zipfian keys). ROWS="..."
# picks rows. A row workload:in-flight:async (raw-put, raw-get, ycsb-*) drives both systems from
# one thread without a thread per request (rdb-bench --async: rdb's asynchronous client, etcd
# through gRPC's callback API); the others use one thread per request in flight. Before the clusters, the machine's floor: one fdatasync and one loopback round trip.
# After the rows, the cost: the servers' CPU (every etcd member; PD + every store) while idle
# and per operation at fixed offered rates (CPU_ROWS="workload:rate ...", 64 in flight,
# rdb-bench --target-rate). CPU_ROWS="" skips them.
if [ -n "${ROWS:-}" ]; then
  read -r -a ROWS <<<"$ROWS"
else
  ROWS=(raw-put:1 raw-put:16 raw-put:64 raw-put:256 raw-get:1 raw-get:16 raw-get:256 cas:16 cas:256
    transfer1:1 transfer1:16 transfer1:256 transfer2:1 transfer2:16 transfer2:256 ycsb-a:64 ycsb-b:64 ycsb-c:64)
fi

read -r -a CPU_ROWS <<<"${CPU_ROWS-raw-put:2000 raw-put:4000 raw-get:2000 raw-get:4000}"
IDLE_SECONDS=${IDLE_SECONDS:-5}

if ! command -v etcd >/dev/null; then
  SUDO=$([ "$(id -u)" -eq 0 ] && echo "" || echo sudo)
  $SUDO apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q etcd-server >/dev/null
fi
[ -x "$BIN/rdb-bench" ] || make build >/dev/null

WORK=$(mktemp -d /tmp/rdb-vs-etcd.XXXXXX)
PIDS=()
stop_all() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  PIDS=()
}
trap 'stop_all; rm -rf "$WORK"' EXIT

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
sum_ticks() { local t=0 p; for p in "$@"; do t=$((t + $(ticks "$p"))); done; echo "$t"; }
HZ=$(getconf CLK_TCK)
# idle NAME PIDS...: the processes' CPU (% of one core) over IDLE_SECONDS without traffic
idle() {
  local name=$1; shift
  local before; before=$(sum_ticks "$@")
  sleep "$IDLE_SECONDS"  # a measurement window, not a wait for a condition
  awk -v t="$(($(sum_ticks "$@") - before))" -v hz="$HZ" -v s="$IDLE_SECONDS" 'BEGIN { printf "%.1f", 100 * t / hz / s }' \
    >"$WORK/$name-idle.txt"
  printf '  %-5s idle: %s %% of a core\n' "$name" "$(cat "$WORK/$name-idle.txt")"
}
# cpu NAME ROW BENCH_ARGS... (SERVER_PIDS set): ROW=workload:rate offered at 64 in flight; keeps
# "<% of a core> <CPU us per op> <ops/s>" in $WORK/NAME-cpu-ROW.txt
cpu() {
  local name=$1 row=$2; shift 2
  local workload=${row%%:*} rate=${row##*:} before t0 t1
  before=$(sum_ticks "${SERVER_PIDS[@]}"); t0=$(date +%s%N)
  "$BIN/rdb-bench" "$@" --workload "$workload" --concurrency 64 --target-rate "$rate" --value-size "$VALUE_SIZE" \
    --keys "$KEYS" --duration "$DURATION" --warmup "$WARMUP" --json >"$WORK/$name-cpu-$row.json" 2>"$WORK/$name-cpu-$row.err" ||
    { echo "rdb-bench failed ($name cpu $row):"; tail -3 "$WORK/$name-cpu-$row.err"; exit 1; }
  t1=$(date +%s%N)
  # Offered at a fixed rate, the run's operations are ops/s times its whole length (warm-up too).
  awk -v t="$(($(sum_ticks "${SERVER_PIDS[@]}") - before))" -v hz="$HZ" -v ns="$((t1 - t0))" \
    -v o="$(field "$WORK/$name-cpu-$row.json" ops_per_s)" \
    'BEGIN { cpu = t / hz; wall = ns / 1e9; printf "%.0f %.0f %.0f\n", 100 * cpu / wall, (o > 0 ? 1e6 * cpu / (o * wall) : 0), o }' \
    >"$WORK/$name-cpu-$row.txt"
  read -r pct us ops <"$WORK/$name-cpu-$row.txt"
  printf '  %-5s %-14s %6.0f ops/s  servers %4d %% of a core, %5d us CPU per op\n' "$name" "$row" "$ops" "$pct" "$us"
}

rss_mib() { awk '/VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$1/status" 2>/dev/null || echo "?"; }
field() { grep -o "\"$2\":[0-9.e+-]*" "$1" | head -1 | cut -d: -f2; }

# bench NAME ROW ARGS...: one rdb-bench run, JSON kept as $WORK/NAME-ROW.json
bench() {
  local name=$1 row=$2; shift 2
  local workload conc mode extra=()
  IFS=: read -r workload conc mode <<<"$row"
  [ "$mode" != async ] || extra+=(--async)
  case $workload in
    transfer[12]) extra+=(--transfer-keys "${workload#transfer}"); workload=transfer ;;
    ycsb-[abc]) extra+=(--distribution zipfian) ;;
  esac
  "$BIN/rdb-bench" "$@" "${extra[@]}" --workload "$workload" --concurrency "$conc" --value-size "$VALUE_SIZE" --keys "$KEYS" \
    --duration "$DURATION" --warmup "$WARMUP" --json >"$WORK/$name-$row.json" 2>"$WORK/$name-$row.err" ||
    { echo "rdb-bench failed ($name $row):"; tail -3 "$WORK/$name-$row.err"; exit 1; }
  printf '  %-5s %-12s %10.0f ops/s  p99 %8.1f ms\n' "$name" "$row" "$(field "$WORK/$name-$row.json" ops_per_s)" \
    "$(awk -v u="$(field "$WORK/$name-$row.json" p99)" 'BEGIN {print u / 1000}')"
}

# ---- the floor under a put: the disk the data dirs are on, the loopback network
FLOOR=$("$BIN/rdb-bench" --floor "$WORK" --duration "$DURATION" --json)
floor_field() { echo "$FLOOR" | grep -o "\"$1\":{[^}]*\"p50\":[0-9.e+-]*" | grep -o '"p50":[0-9.e+-]*' | cut -d: -f2; }
FLOOR_SYNC_US=$(floor_field fdatasync)
FLOOR_RTT_US=$(floor_field loopback_rtt)
FLOOR_SYNC_RATE=$(echo "$FLOOR" | grep -o '"per_s":[0-9.e+-]*' | head -1 | cut -d: -f2)
printf 'floor: fdatasync of a 4 KiB append p50 %.0f us (%.0f/s, one at a time), loopback round trip p50 %.1f us\n' \
  "$FLOOR_SYNC_US" "$FLOOR_SYNC_RATE" "$FLOOR_RTT_US"

# ---- etcd: 3 members
CLUSTER=""
for i in 1 2 3; do CLUSTER+="${CLUSTER:+,}e$i=http://127.0.0.1:$((ETCD_BASE + 10 + i))"; done
ETCD_ENDPOINTS=""
ETCD_PIDS=()
for i in 1 2 3; do
  etcd --name "e$i" --data-dir "$WORK/etcd$i" \
    --listen-client-urls "http://127.0.0.1:$((ETCD_BASE + i))" --advertise-client-urls "http://127.0.0.1:$((ETCD_BASE + i))" \
    --listen-peer-urls "http://127.0.0.1:$((ETCD_BASE + 10 + i))" \
    --initial-advertise-peer-urls "http://127.0.0.1:$((ETCD_BASE + 10 + i))" \
    --initial-cluster "$CLUSTER" --initial-cluster-state new --initial-cluster-token rdb-bench \
    >"$WORK/etcd$i.log" 2>&1 &
  PIDS+=($!); ETCD_PIDS+=($!)
  ETCD_ENDPOINTS+="${ETCD_ENDPOINTS:+,}127.0.0.1:$((ETCD_BASE + i))"
done
for i in 1 2 3; do
  deadline=$((SECONDS + 60))
  until http_get "127.0.0.1:$((ETCD_BASE + i))" /health 2>/dev/null | grep -q '"health":"true"'; do
    [ $SECONDS -lt $deadline ] || { echo "etcd member $i did not become healthy:"; tail -5 "$WORK/etcd$i.log"; exit 1; }
    sleep 0.2
  done
done
echo "etcd $(etcd --version | head -1 | awk '{print $3}'): 3 members on $ETCD_ENDPOINTS"
SERVER_PIDS=("${ETCD_PIDS[@]}")
[ ${#CPU_ROWS[@]} -eq 0 ] || idle etcd "${SERVER_PIDS[@]}"
for row in "${ROWS[@]}"; do bench etcd "$row" --driver etcd --endpoints "$ETCD_ENDPOINTS"; done
for row in "${CPU_ROWS[@]}"; do cpu etcd "$row" --driver etcd --endpoints "$ETCD_ENDPOINTS"; done
ETCD_RSS=""; for p in "${ETCD_PIDS[@]}"; do ETCD_RSS+="${ETCD_RSS:+/}$(rss_mib "$p")"; done
stop_all

# ---- rdb: PD + 3 stores
PD="127.0.0.1:$RDB_BASE"
TSO_ARGS=()
[ "$TSO_TCP" = 0 ] || TSO_ARGS=(--tso-addr 127.0.0.1:0)
"$BIN/rdb-pd" --addr "$PD" --status-addr "127.0.0.1:$((RDB_BASE + 1))" --data-dir "$WORK/pd" \
  --ready-file "$WORK/pd.ready" --max-replicas 3 "${TSO_ARGS[@]}" 2>"$WORK/pd.log" &
PIDS+=($!)
PD_PID=$!
wait_for_file "$WORK/pd.ready" 30 || { echo "rdb-pd did not start"; tail -5 "$WORK/pd.log"; exit 1; }
STORE_PIDS=()
RAFT_ARGS=()
[ "$RAFT_TCP" = 0 ] || RAFT_ARGS=(--raft-addr 127.0.0.1:0)
for i in 1 2 3; do
  "$BIN/rdb-server" --addr "127.0.0.1:$((RDB_BASE + 10 + i))" --status-addr "127.0.0.1:$((RDB_BASE + 20 + i))" \
    --data-dir "$WORK/store$i" --pd "$PD" --ready-file "$WORK/store$i.ready" "${RAFT_ARGS[@]}" 2>"$WORK/store$i.log" &
  PIDS+=($!); STORE_PIDS+=($!)
  wait_for_file "$WORK/store$i.ready" 60 || { echo "rdb-server $i did not start"; tail -5 "$WORK/store$i.log"; exit 1; }
done
deadline=$((SECONDS + 60))
three_voters() { "$BIN/rdb-cli" --pd "$PD" cluster 2>/dev/null | grep "leader [0-9]*@store" | grep -v learner |
  grep -q "peers.*@store.*@store.*@store"; }
until three_voters; do
  [ $SECONDS -lt $deadline ] || { echo "rdb did not reach 3 replicas with a leader"; "$BIN/rdb-cli" --pd "$PD" cluster; exit 1; }
  sleep 0.2
done
RDB_IDLE_RSS=""; for p in "${STORE_PIDS[@]}"; do RDB_IDLE_RSS+="${RDB_IDLE_RSS:+/}$(rss_mib "$p")"; done
echo "rdb $("$BIN/rdb-server" --version): PD $PD + 3 stores (idle RSS $RDB_IDLE_RSS MiB)"
SERVER_PIDS=("$PD_PID" "${STORE_PIDS[@]}")
[ ${#CPU_ROWS[@]} -eq 0 ] || idle rdb "${SERVER_PIDS[@]}"
RDB_PEAK_RSS=""
for row in "${ROWS[@]}"; do
  bench rdb "$row" --driver rdb --pd "$PD"
  if [ "$row" = raw-put:256 ]; then
    RDB_PEAK_RSS=""; for p in "${STORE_PIDS[@]}"; do RDB_PEAK_RSS+="${RDB_PEAK_RSS:+/}$(rss_mib "$p")"; done
  fi
done
for row in "${CPU_ROWS[@]}"; do cpu rdb "$row" --driver rdb --pd "$PD"; done
RDB_END_RSS=""; for p in "${STORE_PIDS[@]}"; do RDB_END_RSS+="${RDB_END_RSS:+/}$(rss_mib "$p")"; done
if [ "$GATEWAY" = 1 ]; then
  GW="127.0.0.1:$((RDB_BASE + 30))"
  "$BIN/rdb-etcd" --pd "$PD" --addr "$GW" --ready-file "$WORK/gw.ready" 2>"$WORK/gw.log" &
  PIDS+=($!)
  wait_for_file "$WORK/gw.ready" 60 || { echo "rdb-etcd did not start"; tail -5 "$WORK/gw.log"; exit 1; }
  echo "rdb-etcd gateway on $GW (etcd's API over the same rdb cluster)"
  for row in "${ROWS[@]}"; do bench gw "$row" --driver etcd --endpoints "$GW"; done
fi
TSO=$("$BIN/rdb-bench" --pd "$PD" --workload tso --concurrency 64 --duration "$DURATION" --warmup 1 --json 2>/dev/null)
TSO_ASYNC=$("$BIN/rdb-bench" --pd "$PD" --workload tso --tso-async --concurrency 64 --duration "$DURATION" --warmup 1 \
  --json 2>/dev/null)
stop_all

# ---- the table
label() {
  case $1 in
    raw-put) echo "put ${VALUE_SIZE} B" ;;
    raw-get) echo "linearizable get" ;;
    cas) echo "CAS (read + compare-and-swap)" ;;
    transfer1) echo "1-key transaction (read, write)" ;;
    transfer2) echo "2-key transfer transaction" ;;
    ycsb-a) echo "YCSB A (50/50, zipfian)" ;;
    ycsb-b) echo "YCSB B (95/5, zipfian)" ;;
    ycsb-c) echo "YCSB C (reads, zipfian)" ;;
  esac
}
echo
echo "| workload | in flight | etcd ops/s | rdb ops/s | rdb/etcd | etcd p99 ms | rdb p99 ms | gateway ops/s | gateway/etcd | gateway p99 ms |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for row in "${ROWS[@]}"; do
  e="$WORK/etcd-$row.json"; r="$WORK/rdb-$row.json"; g="$WORK/gw-$row.json"
  go=""; gp=""
  if [ -f "$g" ]; then go=$(field "$g" ops_per_s); gp=$(field "$g" p99); fi
  IFS=: read -r workload conc mode <<<"$row"
  w=$(label "$workload"); [ "$mode" != async ] || w="$w, async client"
  awk -v w="$w" -v c="$conc" -v eo="$(field "$e" ops_per_s)" -v ro="$(field "$r" ops_per_s)" \
    -v ep="$(field "$e" p99)" -v rp="$(field "$r" p99)" -v go="$go" -v gp="$gp" \
    'BEGIN { printf "| %s | %d | %.0f | %.0f | %.2fx | %.1f | %.1f |", w, c, eo, ro, (eo > 0 ? ro / eo : 0), ep / 1000, rp / 1000;
             if (go == "") printf " - | - | - |\n"; else printf " %.0f | %.2fx | %.1f |\n", go, (eo > 0 ? go / eo : 0), gp / 1000 }'
done
echo
tso_rate() { echo "$1" | grep -o '"timestamps_per_s":[0-9.e+]*' | cut -d: -f2 | awk '{printf "%.0f", $1}'; }
echo "rdb TSO, 64 callers: $(tso_rate "$TSO") timestamps/s with a thread per caller (get_tso);" \
  "$(tso_rate "$TSO_ASYNC") timestamps/s with 64 requests in flight through get_tso_async"
awk -v s="$FLOOR_SYNC_US" -v r="$FLOOR_RTT_US" -v p="$(field "$WORK/rdb-raw-put:1.json" p50 2>/dev/null || echo 0)" \
  'BEGIN { if (p > 0) printf "put @1 p50 %.0f us against its floor (one fdatasync + one round trip) %.0f us: %.2fx\n", p, s + r, p / (s + r) }'
if [ ${#CPU_ROWS[@]} -gt 0 ]; then
  echo
  echo "Server CPU (etcd: its 3 members; rdb: PD + 3 stores), 64 in flight at a fixed offered rate; idle: etcd $(cat "$WORK/etcd-idle.txt") %, rdb $(cat "$WORK/rdb-idle.txt") % of a core"
  echo
  # "done/s": what each system completed; below the offered rate (a system that cannot keep up)
  # its CPU per op is at a lower rate than the other's, and the ratio is marked.
  echo "| workload | offered ops/s | etcd done/s | rdb done/s | etcd % of a core | rdb % of a core | etcd CPU us/op | rdb CPU us/op | rdb/etcd CPU per op |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
  for row in "${CPU_ROWS[@]}"; do
    read -r ep eu eo <"$WORK/etcd-cpu-$row.txt"; read -r rp ru ro <"$WORK/rdb-cpu-$row.txt"
    awk -v w="$(label "${row%%:*}")" -v r="${row##*:}" -v ep="$ep" -v rp="$rp" -v eu="$eu" -v ru="$ru" -v eo="$eo" -v ro="$ro" \
      'BEGIN { short = (eo < 0.95 * r || ro < 0.95 * r) ? " (a side below the offered rate)" : "";
               printf "| %s | %d | %d | %d | %d | %d | %d | %d | %.2fx%s |\n", w, r, eo, ro, ep, rp, eu, ru, (eu > 0 ? ru / eu : 0), short }'
  done
fi
echo "RSS MiB per process: etcd members after the runs $ETCD_RSS; rdb stores idle $RDB_IDLE_RSS, after put@256 $RDB_PEAK_RSS, at the end $RDB_END_RSS"
echo
echo "Reproduce: bench/compare-etcd.sh (DURATION=$DURATION WARMUP=$WARMUP VALUE_SIZE=$VALUE_SIZE KEYS=$KEYS); one row by hand:"
echo "  $BIN/rdb-bench --driver etcd --endpoints <e1,e2,e3> --workload raw-put --concurrency 256 --value-size $VALUE_SIZE --json"
echo "  $BIN/rdb-bench --driver rdb --pd <pd> --workload raw-put --concurrency 256 --value-size $VALUE_SIZE --json"
