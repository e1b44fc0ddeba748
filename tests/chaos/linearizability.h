// A linearizability checker for rdb histories (Wing & Gong's search with
// Lowe's memoisation of (linearized set, state)), applied per key: operations
// on different keys never constrain each other, so each key is checked alone.
//
// Sequential model, per key: the versioned space is a register of (exists,
// value, version high-water mark) — get returns (found, value, version); cas
// succeeds iff the expected version equals the visible version (0 when absent)
// and bumps the high-water mark; cas_delete writes a tombstone that keeps the
// version. The raw space is a plain register (raw_put, raw_get).
// Failed operations never took effect and are ignored. Unknown operations may
// take effect at any point after their invocation, or never; their results are
// unconstrained.
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "history.h"

namespace rdb::chaos {

struct KeyVerdict {
  std::string key;  // "v:<key>" (versioned) or "r:<key>" (raw)
  bool linearizable = true;
  std::size_t operations = 0;
  std::string explanation;  // for a failure: the operations and where the search got stuck
};

struct Verdict {
  bool linearizable = true;
  std::size_t operations = 0;
  std::size_t keys = 0;
  std::vector<KeyVerdict> failures;  // smallest failing key first
  double seconds = 0;
};

KeyVerdict check_key(const std::string& key, std::vector<Operation> ops);
Verdict check_history(const std::vector<Operation>& history);

}  // namespace rdb::chaos
