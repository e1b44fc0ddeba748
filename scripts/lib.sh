# Shared shell helpers for rdb scripts (sourced, not run).

# wait_for_file PATH SECONDS: polls until PATH exists and is non-empty.
wait_for_file() {
  local path=$1 deadline=$((SECONDS + $2))
  while [ ! -s "$path" ]; do
    if [ $SECONDS -ge $deadline ]; then
      return 1
    fi
    sleep 0.05
  done
}

# json_field FILE FIELD: prints a top-level string/number field of a one-line JSON file.
json_field() {
  sed -n "s/.*\"$2\":\"\{0,1\}\([^\",}]*\)\"\{0,1\}.*/\1/p" "$1"
}

# http_get HOST:PORT PATH: prints the body of an HTTP GET (no curl needed).
http_get() {
  local host=${1%:*} port=${1##*:}
  exec 3<>"/dev/tcp/$host/$port" || return 1
  printf 'GET %s HTTP/1.0\r\n\r\n' "$2" >&3
  sed '1,/^\r$/d' <&3
  exec 3<&-
}

# start_bench_cluster DIR BASE [rdb-server flags...]: PD (BASE, status BASE+1) and three
# stores (BASE+11..13, status BASE+21..23) with data under DIR, for the bench scripts.
# Sets PD; appends the daemons' pids to PIDS and the stores' to STORE_PIDS (the caller
# kills them); returns once one region has three voters and a leader. PD_ARGS: extra
# rdb-pd flags (e.g. PD_ARGS="--leader-schedule-limit 0" keeps a split's leaders in place).
# RAFT_TCP=1 (the default) runs Raft between the stores on the plain-TCP transport
# (--raft-addr on a free port); RAFT_TCP=0 keeps it on gRPC. TSO_TCP=1 (the default) has PD
# serve TSO on plain TCP too (--tso-addr on a free port); TSO_TCP=0 keeps it on gRPC only.
start_bench_cluster() {
  local dir=$1 base=$2
  shift 2
  PD="127.0.0.1:$base"
  "$BIN/rdb-pd" --addr "$PD" --status-addr "127.0.0.1:$((base + 1))" --data-dir "$dir/pd" \
    --ready-file "$dir/pd.ready" --max-replicas 3 $([ "${TSO_TCP:-1}" = 0 ] || echo --tso-addr 127.0.0.1:0) \
    ${PD_ARGS:-} 2>"$dir/pd.log" &
  PIDS+=($!)
  wait_for_file "$dir/pd.ready" 30 || { echo "rdb-pd did not start"; return 1; }
  local i
  for i in 1 2 3; do
    "$BIN/rdb-server" --addr "127.0.0.1:$((base + 10 + i))" --status-addr "127.0.0.1:$((base + 20 + i))" \
      --data-dir "$dir/store$i" --pd "$PD" --ready-file "$dir/store$i.ready" \
      $([ "${RAFT_TCP:-1}" = 0 ] || echo --raft-addr 127.0.0.1:0) "$@" 2>"$dir/store$i.log" &
    PIDS+=($!)
    STORE_PIDS+=($!)
    wait_for_file "$dir/store$i.ready" 60 || { echo "rdb-server $i did not start"; return 1; }
  done
  local deadline=$((SECONDS + 60))
  until "$BIN/rdb-cli" --pd "$PD" cluster 2>/dev/null | grep "leader [0-9]*@store" |
    grep -q "peers.*@store.*@store.*@store"; do
    [ $SECONDS -lt $deadline ] || { echo "no 3-replica region with a leader"; return 1; }
    sleep 0.2
  done
}
