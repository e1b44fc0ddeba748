#!/usr/bin/env bash
# Chaos soak runs against a real local cluster: any duration and scenario mix.
# Each scenario's history (history.jsonl), text summary (report.txt) and timeline
# (report.html) are kept under --out (default ./chaos-out).
#   scripts/chaos.sh                                   # every scenario, 60 s each
#   scripts/chaos.sh --scenario mixed --duration 600   # a 10-minute mixed soak
#   scripts/chaos.sh --scenario partition-leader,one-way --seed 7 --clients 16
# Any rdb-chaos flag is accepted (build/bin/rdb-chaos --help). Exit status: 0 all
# runs passed, 1 a violation was found, 2 a run could not be made.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
make --no-print-directory build BUILD_DIR="$BUILD_DIR" >/dev/null
args=("$@")
if [[ ! " ${args[*]-} " =~ " --scenario" ]]; then
  args+=(--scenario all)
fi
exec "$BUILD_DIR/bin/rdb-chaos" "${args[@]}"
