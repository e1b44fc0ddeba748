// Operation histories for the linearizability checker (issue: chaos testing).
//
// A history is what concurrent clients observed: each operation's invoke and
// completion times and its outcome — ok (with the result), failed (certainly
// not applied) or unknown (timed out / undetermined: it may or may not have
// taken effect). Histories are stored one JSON object per line so they can be
// re-checked later:
//   {"id":7,"client":2,"key":"k1","op":"cas","expected_version":3,"value":"v9",
//    "invoke_ns":100,"complete_ns":250,"outcome":"ok",
//    "result":{"succeeded":true,"version":4}}
// Faults injected during the run are recorded in the same file, one line each:
//   {"fault":"partition-leader","target":"s2","start_ns":2000000000,"end_ns":5000000000}
// op is one of get, cas, cas_delete, raw_put, raw_get. result fields: found,
// value, version (get, raw_get), succeeded, version, found, value (cas: on a
// conflict version/found/value describe the key as it was).
// Thread safety: value types.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"

namespace rdb::chaos {

enum class OpKind { kGet, kCas, kCasDelete, kRawPut, kRawGet };
enum class Outcome { kOk, kFailed, kUnknown };

struct Operation {
  std::uint64_t id = 0;
  std::uint64_t client = 0;
  std::string key;
  OpKind kind = OpKind::kGet;
  std::uint64_t expected_version = 0;  // cas, cas_delete
  std::string value;                   // cas, raw_put: the value written
  std::uint64_t invoke_ns = 0;
  std::uint64_t complete_ns = 0;  // ignored for unknown outcomes (they may take effect any time later)
  Outcome outcome = Outcome::kOk;
  // result (ok outcomes)
  bool found = false;
  std::string result_value;
  std::uint64_t version = 0;
  bool succeeded = false;
};

// A fault window: what was done, to which node(s), from start to end (healed).
struct FaultEvent {
  std::string kind;    // e.g. kill, pause, partition-leader, one-way, pd-restart
  std::string target;  // e.g. "s2", "s1|s2,s3" for a split
  std::uint64_t start_ns = 0;
  std::uint64_t end_ns = 0;
};

struct History {
  std::vector<Operation> operations;
  std::vector<FaultEvent> faults;
};

const char* op_kind_name(OpKind k);
const char* outcome_name(Outcome o);
std::string to_json_line(const Operation& op);
Result<Operation> parse_json_line(const std::string& line);
std::string to_json_line(const FaultEvent& fault);
Result<FaultEvent> parse_fault_line(const std::string& line);
Result<History> read_history_file(const std::string& path);
// The operations only.
Result<std::vector<Operation>> read_history(const std::string& path);
std::string describe(const Operation& op);

}  // namespace rdb::chaos
