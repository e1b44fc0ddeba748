#!/usr/bin/env bash
# Long run of the hostile-message harness of the Raft core (tests/sim/raft_fuzz.h).
#   scripts/fuzz-raft.sh [SEEDS] [FIRST_SEED]      default: 100000 seeds from 1
# A failing seed prints the command that replays it. `make test` runs a short
# version (RaftMessageFuzz, 300 seeds, also under ASan).
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=${1:-100000}
first=${2:-1}
make build >/dev/null
exec build/bin/rdb-raft-sim --fuzz --seed "$first" --seeds "$seeds"
