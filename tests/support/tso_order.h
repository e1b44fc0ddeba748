// The TSO's promise, checked over every timestamp a test obtained: each is unique,
// and real-time order holds — a timestamp answered before another was asked for is
// below it. Used by the PD group tests and the chaos harness.
// Pure functions; thread-safe.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace rdb::testing {

struct TsoOp {
  std::chrono::steady_clock::time_point invoked;
  std::chrono::steady_clock::time_point answered;
  std::uint64_t ts = 0;
};

// nullopt when the promise held; else what broke it.
inline std::optional<std::string> tso_order_violation(std::vector<TsoOp> ops) {
  std::set<std::uint64_t> seen;
  for (const auto& op : ops) {
    if (!seen.insert(op.ts).second) {
      return "timestamp " + std::to_string(op.ts) + " was handed out twice";
    }
  }
  std::vector<TsoOp> by_answer = ops;
  std::sort(ops.begin(), ops.end(), [](const TsoOp& a, const TsoOp& b) { return a.invoked < b.invoked; });
  std::sort(by_answer.begin(), by_answer.end(), [](const TsoOp& a, const TsoOp& b) { return a.answered < b.answered; });
  std::size_t done = 0;
  std::uint64_t highest_done = 0;
  for (const auto& op : ops) {
    while (done < by_answer.size() && by_answer[done].answered < op.invoked) {
      highest_done = std::max(highest_done, by_answer[done].ts);
      ++done;
    }
    if (op.ts <= highest_done) {
      return "timestamp " + std::to_string(op.ts) + " was asked for after " + std::to_string(highest_done) +
             " had been answered: time went back";
    }
  }
  return std::nullopt;
}

}  // namespace rdb::testing
