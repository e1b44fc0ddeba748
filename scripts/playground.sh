#!/usr/bin/env bash
# Runs a local rdb cluster in the foreground: a PD group of P rdb-pd members (default
# 3, on ports 2379, 2381, 2383), N rdb-server stores (default 3: every region is
# replicated 3 ways) and one rdb-etcd gateway (etcd's API on port 12379), data under
# one folder. Ctrl-C stops everything cleanly.
# Usage: scripts/playground.sh [--pds P] [--stores N] [--data DIR] [--bin DIR] [--tls]
#   (or: make playground; PLAYGROUND_ARGS="--stores 1" make playground; make playground TLS=1)
#   --tls: makes a CA and certificates under DIR/certs (scripts/gen-certs.sh) and runs
#          every daemon with mutual TLS; the CLI flags to use are printed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
BIN="$here/../build/bin"
DATA="${RDB_PLAYGROUND_DIR:-$PWD/playground-data}"
STORES=3
PDS=3
TLS=0
while [ $# -gt 0 ]; do
  case "$1" in
    --stores) STORES=$2; shift 2 ;;
    --pds) PDS=$2; shift 2 ;;
    --data) DATA=$2; shift 2 ;;
    --bin) BIN=$2; shift 2 ;;
    --tls) TLS=1; shift ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "playground: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done
[[ "$STORES" =~ ^[1-9][0-9]*$ ]] || { echo "playground: --stores must be a positive number" >&2; exit 2; }
[[ "$PDS" =~ ^[1-9]$ ]] || { echo "playground: --pds must be 1 to 9" >&2; exit 2; }
mkdir -p "$DATA"
DATA=$(cd "$DATA" && pwd)

PIDS=()
stop_all() {
  trap - INT TERM EXIT
  echo
  echo "playground: stopping..."
  # Stores first, then PD, each with SIGTERM so they shut down cleanly.
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill -TERM "${PIDS[$i]}" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  echo "playground: stopped; data kept in $DATA"
}
trap 'stop_all; exit 0' INT TERM
trap stop_all EXIT

PD_TLS=()
STORE_TLS=()
ETCD_TLS=()
CLI_TLS=""
ETCDCTL_TLS=""
if [ "$TLS" = 1 ]; then
  "$here/gen-certs.sh" "$DATA/certs" pd store client etcd >/dev/null
  C="$DATA/certs"
  PD_TLS=(--ca "$C/ca.pem" --cert "$C/pd.pem" --key "$C/pd.key")
  STORE_TLS=(--ca "$C/ca.pem" --cert "$C/store.pem" --key "$C/store.key")
  ETCD_TLS=(--ca "$C/ca.pem" --cert "$C/etcd.pem" --key "$C/etcd.key")
  CLI_TLS="--ca $C/ca.pem --cert $C/client.pem --key $C/client.key"
  ETCDCTL_TLS="--cacert $C/ca.pem --cert $C/client.pem --key $C/client.key"
fi

PD_ADDR=127.0.0.1:2379
REPLICAS=$(( STORES < 3 ? STORES : 3 ))
# PD member i serves on 2377+2i (status 2378+2i); a group of one keeps the old layout.
INITIAL=""
PD_ENDPOINTS=""
for ((i = 1; i <= PDS; i++)); do
  INITIAL+="${INITIAL:+,}pd$i=127.0.0.1:$((2377 + 2 * i))"
  PD_ENDPOINTS+="${PD_ENDPOINTS:+,}127.0.0.1:$((2377 + 2 * i))"
done
# Each daemon runs from a config file in $DATA (its printed defaults with this playground's
# settings; edit one and restart that daemon to try a setting). TLS files stay flags.
# write_config DAEMON FILE KEY=TOML_VALUE...
write_config() {
  local daemon=$1 file=$2 kv key
  shift 2
  "$BIN/$daemon" --print-default-config >"$file"
  for kv in "$@"; do
    key=${kv%%=*}
    grep -qE "^#? ?$key = " "$file" || { echo "playground: $daemon has no config key $key"; exit 1; }
    sed -i -E "s|^#? ?$key = .*|$key = ${kv#*=}|" "$file"
  done
}
for ((i = 1; i <= PDS; i++)); do
  if [ "$PDS" = 1 ]; then
    name=pd; group=()
  else
    name=pd$i; group=("name=\"pd$i\"" "initial-cluster=\"$INITIAL\"")
  fi
  rm -f "$DATA/$name.ready"
  tso_addr=(); [ "$TLS" = 1 ] || tso_addr=("tso-addr=\"127.0.0.1:$((2390 + i))\"")  # plaintext only
  write_config rdb-pd "$DATA/$name.toml" "addr=\"127.0.0.1:$((2377 + 2 * i))\"" \
    "status-addr=\"127.0.0.1:$((2378 + 2 * i))\"" "data-dir=\"$DATA/$name\"" "ready-file=\"$DATA/$name.ready\"" \
    "max-replicas=$REPLICAS" ${group[@]+"${group[@]}"} ${tso_addr[@]+"${tso_addr[@]}"}
  "$BIN/rdb-pd" --config "$DATA/$name.toml" ${PD_TLS[@]+"${PD_TLS[@]}"} 2>>"$DATA/$name.log" &
  PIDS+=($!)
done
for ((i = 1; i <= PDS; i++)); do
  name=pd$i; [ "$PDS" = 1 ] && name=pd
  wait_for_file "$DATA/$name.ready" 30 || { echo "rdb-pd $name failed to start:"; tail -5 "$DATA/$name.log"; exit 1; }
done

for ((i = 1; i <= STORES; i++)); do
  port=$((20159 + i)); status=$((20179 + i))
  rm -f "$DATA/store$i.ready"
  # Raft between the stores on the plain-TCP transport (docs/design.md); TLS keeps it on gRPC.
  raft_addr=(); [ "$TLS" = 1 ] || raft_addr=("raft-addr=\"127.0.0.1:$((20169 + i))\"")
  write_config rdb-server "$DATA/store$i.toml" "addr=\"127.0.0.1:$port\"" "status-addr=\"127.0.0.1:$status\"" \
    "data-dir=\"$DATA/store$i\"" "pd=\"$PD_ENDPOINTS\"" "ready-file=\"$DATA/store$i.ready\"" ${raft_addr[@]+"${raft_addr[@]}"}
  "$BIN/rdb-server" --config "$DATA/store$i.toml" ${STORE_TLS[@]+"${STORE_TLS[@]}"} 2>>"$DATA/store$i.log" &
  PIDS+=($!)
  wait_for_file "$DATA/store$i.ready" 60 || { echo "rdb-server $i failed to start:"; tail -5 "$DATA/store$i.log"; exit 1; }
done

# etcd's API: a stateless gateway in front of the cluster (any number may run).
ETCD_ADDR=127.0.0.1:12379
rm -f "$DATA/etcd.ready"
write_config rdb-etcd "$DATA/etcd.toml" "addr=\"$ETCD_ADDR\"" "status-addr=\"127.0.0.1:12380\"" \
  "pd=\"$PD_ENDPOINTS\"" "ready-file=\"$DATA/etcd.ready\""
"$BIN/rdb-etcd" --config "$DATA/etcd.toml" ${ETCD_TLS[@]+"${ETCD_TLS[@]}"} 2>>"$DATA/etcd.log" &
PIDS+=($!)
wait_for_file "$DATA/etcd.ready" 60 || { echo "rdb-etcd failed to start:"; tail -5 "$DATA/etcd.log"; exit 1; }
ETCDCTL="etcdctl --endpoints=${ETCD_ADDR}${ETCDCTL_TLS:+ $ETCDCTL_TLS}"

CLI="$(cd "$BIN" && pwd)/rdb-cli"
[ -z "$CLI_TLS" ] || CLI="$CLI $CLI_TLS"
cat <<MSG

rdb playground is running (data and logs in $DATA)
MSG
for ((i = 1; i <= PDS; i++)); do
  echo "  PD $i:    127.0.0.1:$((2377 + 2 * i))    status http://127.0.0.1:$((2378 + 2 * i))/status"
done
for ((i = 1; i <= STORES; i++)); do
  echo "  store $i: 127.0.0.1:$((20159 + i))    status http://127.0.0.1:$((20179 + i))/status"
done
echo "  etcd API: $ETCD_ADDR   status http://127.0.0.1:12380/status (rdb-etcd gateway)"
echo "  dashboard: http://127.0.0.1:2380/dashboard (on the PD leader's status port)"
echo "  configs:  $DATA/*.toml (each daemon's --config; --print-default-config shows every key)"
cat <<MSG

Try, from another shell:
  $CLI --pd $PD_ADDR raw-put hello world
  $CLI --pd $PD_ADDR raw-get hello
  $CLI --pd $PD_ADDR raw-scan "" --limit 10
  $CLI --pd $PD_ADDR cas counter 0 1          # create; exit 3 on conflict
  $CLI --pd $PD_ADDR --json get counter
  $CLI --pd $PD_ADDR tso --count 5
  $CLI --pd $PD_ADDR cluster                  # stores, regions, leaders, peers
  $CLI --pd $PD_ENDPOINTS pd-members   # the PD group; kill its leader, TSO goes on
  $ETCDCTL put greeting hello     # etcd's own client, through rdb-etcd
  $ETCDCTL get greeting -w json
  $ETCDCTL member list            # the gateways

Press Ctrl-C to stop.
MSG

# Stay in the foreground until interrupted. A daemon that dies is reported, not fatal:
# killing a store is a fine way to watch the others fail over.
declare -A reported=()
while true; do
  for p in "${PIDS[@]}"; do
    if [ -z "${reported[$p]:-}" ] && ! kill -0 "$p" 2>/dev/null; then
      echo "playground: a daemon (pid $p) exited; see the logs in $DATA (the others keep running)"
      reported[$p]=1
    fi
  done
  sleep 1
done
