#!/usr/bin/env bash
# End-to-end check of every rdb API with real processes: starts rdb-pd and
# rdb-server on free ports in a temp dir, drives every rdb-cli command, checks
# outputs and exit codes, the status endpoints, a SIGKILL restart, and a clean stop.
# Usage: scripts/verify-core.sh [BIN_DIR]   (default: build/bin)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
BIN=${1:-$here/../build/bin}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/rdb-verify-XXXXXX")
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT

failures=0
checks=0
check() {  # check DESCRIPTION EXPECTED_EXIT EXPECTED_STDOUT_SUBSTRING -- command...
  local desc=$1 want_rc=$2 want_out=$3; shift 4
  local out rc
  out=$("$@" 2>"$WORK/last.err"); rc=$?
  checks=$((checks + 1))
  if [ "$rc" != "$want_rc" ] || [[ "$out" != *"$want_out"* ]]; then
    failures=$((failures + 1))
    echo "FAIL: $desc: exit $rc (want $want_rc), output: $out $(cat "$WORK/last.err")"
  else
    echo "ok:   $desc"
  fi
}

start_pd() {
  rm -f "$WORK/pd.ready"
  "$BIN/rdb-pd" --addr 127.0.0.1:0 --status-addr 127.0.0.1:0 --data-dir "$WORK/pd" \
    --ready-file "$WORK/pd.ready" 2>>"$WORK/pd.log" &
  PD_PID=$!; PIDS+=("$PD_PID")
  wait_for_file "$WORK/pd.ready" 30 || { echo "rdb-pd did not start"; cat "$WORK/pd.log"; exit 1; }
  PD=$(json_field "$WORK/pd.ready" addr)
  PD_STATUS=$(json_field "$WORK/pd.ready" status_addr)
}
start_store() {
  rm -f "$WORK/s1.ready"
  "$BIN/rdb-server" --addr 127.0.0.1:0 --status-addr 127.0.0.1:0 --data-dir "$WORK/s1" --pd "$PD" \
    --ready-file "$WORK/s1.ready" 2>>"$WORK/s1.log" &
  S1_PID=$!; PIDS+=("$S1_PID")
  wait_for_file "$WORK/s1.ready" 30 || { echo "rdb-server did not start"; cat "$WORK/s1.log"; exit 1; }
  S1_STATUS=$(json_field "$WORK/s1.ready" status_addr)
}

start_pd
start_store
CLI=("$BIN/rdb-cli" --pd "$PD" --timeout-ms 5000)

check "raw-put"               0 OK                      -- "${CLI[@]}" raw-put v/a alpha
check "raw-get"               0 alpha                   -- "${CLI[@]}" raw-get v/a
check "raw-get --json"        0 '"value":"alpha"'       -- "${CLI[@]}" --json raw-get v/a
check "raw-get missing"       1 ''                      -- "${CLI[@]}" raw-get v/missing
check "raw-batch-put"         0 OK                      -- "${CLI[@]}" raw-batch-put v/b beta v/c gamma
check "raw-batch-get"         0 '"key":"v/c"'           -- "${CLI[@]}" --json raw-batch-get v/c v/zz
check "raw-scan"              0 $'v/a\talpha'           -- "${CLI[@]}" raw-scan v/ v0
check "raw-scan reverse"      0 $'v/c\nv/b'             -- "${CLI[@]}" raw-scan v/ v0 --reverse --keys-only --limit 2
check "raw-delete"            0 OK                      -- "${CLI[@]}" raw-delete v/a
check "raw-get deleted"       1 ''                      -- "${CLI[@]}" raw-get v/a
check "raw-batch-delete"      0 OK                      -- "${CLI[@]}" raw-batch-delete v/b
check "raw-delete-range"      0 OK                      -- "${CLI[@]}" raw-delete-range v/ v0
check "scan after delete"     0 ''                      -- "${CLI[@]}" raw-scan v/ v0
check "cas create"            0 '"version":1'           -- "${CLI[@]}" --json cas v/k 0 one
check "cas conflict"          3 '"succeeded":false'     -- "${CLI[@]}" --json cas v/k 0 two
check "get"                   0 '"value":"one"'         -- "${CLI[@]}" --json get v/k
check "cas update"            0 '"version":2'           -- "${CLI[@]}" --json cas v/k 1 two
check "cas delete"            0 '"version":3'           -- "${CLI[@]}" --json cas v/k 2 --delete
check "get deleted"           1 '"found":false'         -- "${CLI[@]}" --json get v/k
check "cas recreate"          0 '"version":4'           -- "${CLI[@]}" --json cas v/k 0 three
check "tso"                   0 '"count":16'            -- "${CLI[@]}" --json tso --count 16
check "usage error"           2 ''                      -- "${CLI[@]}" raw-put only-key
check "limit error"           2 ''                      -- "${CLI[@]}" raw-scan a --limit 99999
check "server /metrics"       0 rdb_kv_requests_total   -- http_get "$S1_STATUS" /metrics
check "server /status"        0 '"role":"store"'        -- http_get "$S1_STATUS" /status
check "pd /metrics"           0 rdb_pd_tso_requests     -- http_get "$PD_STATUS" /metrics
check "pd /status"            0 '"bootstrapped":true'   -- http_get "$PD_STATUS" /status

# Config files: each daemon's printed default config reads back to the same defaults; a key
# that is no flag is refused naming it.
for d in rdb-server rdb-pd rdb-etcd; do
  "$BIN/$d" --print-default-config >"$WORK/$d.toml"
  check "$d default config reads back" 0 same -- \
    bash -c "diff <(\"\$1\" --config \"\$2\" --print-default-config) \"\$2\" && echo same" _ "$BIN/$d" "$WORK/$d.toml"
  printf 'addr = "127.0.0.1:0"\nno-such-key = 1\n' >"$WORK/$d-bad.toml"
  check "$d refuses an unknown key" 110 '' -- "$BIN/$d" --config "$WORK/$d-bad.toml"
  grep -q "unknown key 'no-such-key' (line 2)" "$WORK/last.err" ||
    { failures=$((failures + 1)); echo "FAIL: $d's unknown-key error: $(cat "$WORK/last.err")"; }
done

# Crash the store right after an acknowledged write; it must be there after restart.
check "write before crash"    0 OK                      -- "${CLI[@]}" raw-put v/crash survived
kill -9 "$S1_PID"; wait "$S1_PID" 2>/dev/null
# It comes back configured by a file (the printed defaults, edited), --pd still a flag and
# --status-addr a flag overriding the file's.
sed -e 's|^addr = .*|addr = "127.0.0.1:0"|' -e 's|^status-addr = .*|status-addr = "127.0.0.1:1"|' \
  -e "s|^data-dir = .*|data-dir = \"$WORK/s1\"|" -e "s|^# ready-file = .*|ready-file = \"$WORK/s1.ready\"|" \
  "$WORK/rdb-server.toml" >"$WORK/s1.toml"
rm -f "$WORK/s1.ready"
"$BIN/rdb-server" --config "$WORK/s1.toml" --pd "$PD" --status-addr 127.0.0.1:0 2>>"$WORK/s1.log" &
S1_PID=$!; PIDS+=("$S1_PID")
wait_for_file "$WORK/s1.ready" 30 || { echo "rdb-server did not start from its config file"; cat "$WORK/s1.log"; exit 1; }
S1_STATUS=$(json_field "$WORK/s1.ready" status_addr)
check "flag overrides the file" 0 '"role":"store"' -- http_get "$S1_STATUS" /status
check "read after SIGKILL"    0 survived                -- "${CLI[@]}" raw-get v/crash
check "cas after SIGKILL"     0 '"version":4'           -- "${CLI[@]}" --json get v/k

# A clean stop exits 0.
kill -TERM "$S1_PID"; wait "$S1_PID"; rc=$?
checks=$((checks + 1))
if [ $rc -ne 0 ]; then failures=$((failures + 1)); echo "FAIL: rdb-server SIGTERM exit $rc"; else echo "ok:   rdb-server clean stop"; fi
kill -TERM "$PD_PID"; wait "$PD_PID"; rc=$?
checks=$((checks + 1))
if [ $rc -ne 0 ]; then failures=$((failures + 1)); echo "FAIL: rdb-pd SIGTERM exit $rc"; else echo "ok:   rdb-pd clean stop"; fi

echo "verify-core: $((checks - failures)) passed, $failures failed"
[ $failures -eq 0 ]
