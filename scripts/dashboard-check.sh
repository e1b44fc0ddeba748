#!/usr/bin/env bash
# PD's dashboard in a real browser: starts PD and three stores on free ports in a temp dir,
# splits the key space, loads the page in headless Chromium (Debian's `chromium`), and checks
# what it shows against `rdb-cli cluster --json`: the store count, the region count, one row
# per store, one strip segment per region, the scheduling operations PD made (adding the
# replicas), live request rates. Saves a screenshot (SCREENSHOT, default
# BIN_DIR/../dashboard.png). Exits 77 (skipped) when Chromium is not installed.
# Usage: scripts/dashboard-check.sh [BIN_DIR]
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
BIN=${1:-$here/../build/bin}
SCREENSHOT=${SCREENSHOT:-$BIN/../dashboard.png}
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$CHROMIUM" ]; then
  echo "dashboard-check: no chromium installed (scripts/install-deps.sh installs it): skipped"
  exit 77
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/rdb-dashboard-XXXXXX")
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

"$BIN/rdb-pd" --addr 127.0.0.1:0 --status-addr 127.0.0.1:0 --data-dir "$WORK/pd" --max-replicas 3 \
  --ready-file "$WORK/pd.ready" 2>"$WORK/pd.log" &
PIDS+=($!)
wait_for_file "$WORK/pd.ready" 30 || { echo "rdb-pd did not start"; cat "$WORK/pd.log"; exit 1; }
PD=$(json_field "$WORK/pd.ready" addr)
PD_STATUS=$(json_field "$WORK/pd.ready" status_addr)
for i in 1 2 3; do
  "$BIN/rdb-server" --addr 127.0.0.1:0 --status-addr 127.0.0.1:0 --data-dir "$WORK/s$i" --pd "$PD" \
    --ready-file "$WORK/s$i.ready" 2>"$WORK/s$i.log" &
  PIDS+=($!)
  wait_for_file "$WORK/s$i.ready" 30 || { echo "rdb-server $i did not start"; cat "$WORK/s$i.log"; exit 1; }
done
CLI=("$BIN/rdb-cli" --pd "$PD" --timeout-ms 10000)
# Three replicas of every region, and a few regions.
deadline=$((SECONDS + 60))
until "${CLI[@]}" cluster 2>/dev/null | grep -q "peers.*@store.*@store.*@store"; do
  [ $SECONDS -lt $deadline ] || { echo "no region reached three replicas"; exit 1; }
  sleep 0.2
done
"${CLI[@]}" split dash/c dash/h dash/p >/dev/null || { echo "split failed"; exit 1; }
# Some traffic while the page watches: request rates and TSO.
"$BIN/rdb-bench" --pd "$PD" --workload mixed --async --concurrency 16 --duration 30 --warmup 0 >/dev/null 2>&1 &
PIDS+=($!)

# The page polls every second; Chromium's virtual time runs it for several polls.
"$CHROMIUM" --headless=new --no-sandbox --disable-gpu --window-size=1280,1100 --virtual-time-budget=8000 \
  --dump-dom "http://$PD_STATUS/dashboard" >"$WORK/dom.html" 2>"$WORK/chromium.log"
"$CHROMIUM" --headless=new --no-sandbox --disable-gpu --window-size=1280,1100 --virtual-time-budget=8000 \
  --screenshot="$SCREENSHOT" "http://$PD_STATUS/dashboard" >/dev/null 2>>"$WORK/chromium.log"
"${CLI[@]}" --json cluster >"$WORK/cluster.json" || { echo "rdb-cli cluster failed"; exit 1; }

python3 - "$WORK/dom.html" "$WORK/cluster.json" <<'PY' || failures=$((failures + 1))
import json, re, sys
dom = open(sys.argv[1]).read()
cluster = json.load(open(sys.argv[2]))
def by_id(name):
    m = re.search(r'id="%s"[^>]*>([^<]*)<' % re.escape(name), dom)
    return m.group(1) if m else None
problems = []
def check(what, got, want):
    print(("ok:   " if got == want else "FAIL: ") + f"{what}: page {got!r}, want {want!r}")
    if got != want:
        problems.append(what)
stores = [s for s in cluster["stores"] if s["state"] != "tombstone"]
check("store count", by_id("store-count"), str(len(stores)))
check("region count", by_id("region-count"), str(len(cluster["regions"])))
check("store rows", len(re.findall(r'<tr data-store="\d+"', dom)), len(cluster["stores"]))
check("key space segments", len(re.findall(r'class="region"', dom)), len(cluster["regions"]))
check("PD role", by_id("pd-role"), "leader")
check("scheduling operations listed", len(re.findall(r"<td>add_learner</td>", dom)) >= 2, True)
qps = by_id("total-qps")
check("request rate shown", bool(qps) and re.fullmatch(r"[\d,]+", qps) is not None, True)
check("no error shown", 'id="error" style="display: none;"' in dom or 'id="error"></div>' in dom, True)
sys.exit(1 if problems else 0)
PY
[ -s "$SCREENSHOT" ] || fail "no screenshot at $SCREENSHOT"

# The Grafana dashboard (ops/grafana/rdb-dashboard.json) asks only for metrics PD and the
# stores export.
{
  http_get "$PD_STATUS" /metrics
  for i in 1 2 3; do http_get "$(json_field "$WORK/s$i.ready" status_addr)" /metrics; done
} >"$WORK/metrics.txt"
for m in $(grep -oE 'rdb_[a-z_]+' "$here/../ops/grafana/rdb-dashboard.json" | sed 's/_bucket$//' | sort -u); do
  grep -q "^$m" "$WORK/metrics.txt" || fail "the Grafana dashboard queries $m, which nothing exports"
done
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d['panels'] and all(p['targets'] for p in d['panels'])" \
  "$here/../ops/grafana/rdb-dashboard.json" || fail "ops/grafana/rdb-dashboard.json is not a dashboard with queries"
echo "dashboard-check: screenshot $SCREENSHOT"
if [ $failures -ne 0 ]; then
  echo "--- page:"; head -c 3000 "$WORK/dom.html"; echo; tail -5 "$WORK/chromium.log"
fi
echo "dashboard-check: $failures failed"
[ $failures -eq 0 ]
