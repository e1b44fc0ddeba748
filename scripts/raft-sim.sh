#!/usr/bin/env bash
# Soak the Raft core in the deterministic simulation: any number of seeds.
# Usage: scripts/raft-sim.sh [SEEDS] [FIRST_SEED] [extra rdb-raft-sim flags...]
#   scripts/raft-sim.sh 1000000          # a million seeds
#   scripts/raft-sim.sh 1 4242 --verbose # replay one seed
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
seeds=${1:-100000}
first=${2:-1}
shift $(( $# > 2 ? 2 : $# ))
[ -x "$here/../build/bin/rdb-raft-sim" ] || make -C "$here/.." build
exec "$here/../build/bin/rdb-raft-sim" --seed "$first" --seeds "$seeds" "$@"
