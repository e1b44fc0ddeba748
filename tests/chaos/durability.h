// The durability check of a chaos run: after the faults heal, every
// acknowledged write must be readable. It looks at the unique "log" keys (one
// write each, never overwritten — see workload.h) and the final reads:
// an acknowledged log write must be found with its value, a write reported as
// failed must not be, and every final read must succeed (the cluster recovered).
// Overwritten shared keys are covered by the linearizability checker instead.
// Thread safety: pure function.
#pragma once

#include <string>
#include <vector>

#include "history.h"

namespace rdb::chaos {

struct DurabilityVerdict {
  bool ok = true;
  std::size_t acknowledged = 0;  // acknowledged log writes
  std::size_t read_back = 0;     // ... found with their value by the final reads
  std::size_t unknown_applied = 0;
  std::size_t unknown_lost = 0;       // unknown outcome, not applied: allowed
  std::vector<std::string> problems;  // lost writes, failed-but-applied writes, failed final reads
};

DurabilityVerdict check_durability(const std::vector<Operation>& history);

}  // namespace rdb::chaos
