#include "durability.h"

#include <fmt/format.h>

#include <map>

#include "workload.h"

namespace rdb::chaos {

DurabilityVerdict check_durability(const std::vector<Operation>& history) {
  DurabilityVerdict v;
  std::map<std::string, const Operation*> writes;
  std::map<std::string, const Operation*> final_reads;
  for (const auto& op : history) {
    if (op.client == kFinalReader) {
      if (op.outcome != Outcome::kOk) {
        v.problems.push_back(fmt::format("final read failed after the faults healed: {}", describe(op)));
      } else if (op.kind == OpKind::kRawGet) {
        final_reads[op.key] = &op;
      }
    } else if (op.kind == OpKind::kRawPut && op.key.rfind(kLogPrefix, 0) == 0) {
      writes[op.key] = &op;
    }
  }
  for (const auto& [key, w] : writes) {
    auto it = final_reads.find(key);
    if (it == final_reads.end()) {
      if (w->outcome == Outcome::kOk) {
        ++v.acknowledged;
        v.problems.push_back(fmt::format("acknowledged write never read back: {}", describe(*w)));
      }
      continue;
    }
    const Operation& r = *it->second;
    bool applied = r.found && r.result_value == w->value;
    if (r.found && r.result_value != w->value) {
      v.problems.push_back(
          fmt::format("{} holds {:?}, which was never written to it ({})", key, r.result_value, describe(*w)));
    }
    switch (w->outcome) {
      case Outcome::kOk:
        ++v.acknowledged;
        if (applied) {
          ++v.read_back;
        } else if (!r.found) {
          v.problems.push_back(fmt::format("LOST acknowledged write: {}; final read {}", describe(*w), describe(r)));
        }
        break;
      case Outcome::kFailed:
        if (applied) {
          v.problems.push_back(
              fmt::format("write reported as failed was applied: {}; final read {}", describe(*w), describe(r)));
        }
        break;
      case Outcome::kUnknown:
        ++(applied ? v.unknown_applied : v.unknown_lost);
        break;
    }
  }
  v.ok = v.problems.empty();
  return v;
}

}  // namespace rdb::chaos
