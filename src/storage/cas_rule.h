// The compare-and-swap rule of the versioned key space, as one pure function,
// shared by the local engine and the replicated state machine so both decide
// identically.
//
// A live key matches only its own version; an absent or deleted key matches
// only 0. On success the new record's version is the stored version + 1 —
// the stored version is a high-water mark that tombstones keep — so a version
// is never reused (no ABA). CAS-deleting an absent key succeeds and writes nothing.
// Thread safety: pure function.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/result.h"
#include "storage/storage_engine.h"

namespace rdb {

struct CasDecision {
  CasOutcome outcome;
  std::optional<std::string> record_to_write;  // encoded versioned record, if anything changes
};

// `stored` is the key's current encoded record (nullopt if never written).
Result<CasDecision> decide_cas(const std::optional<std::string>& stored, std::uint64_t expected_version,
                               const std::optional<std::string>& new_value);

}  // namespace rdb
