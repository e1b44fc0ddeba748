// List-append: a transactional workload and an Elle-style checker.
//
// Each key holds a list of integers. A transaction does 1-3 micro-operations on
// random keys: read a key's list, or append a unique integer to it (read the list,
// write it back one longer). Every appended value is unique, so each element names
// the transaction that wrote it, and the longest list read of a key gives the order
// of its versions. From that the checker builds the dependency graph between
// committed transactions (Adya): ww (the next version of a key), wr (read a
// version), rw (read a version another transaction then overwrote), and names what
// snapshot isolation forbids:
//   G0        a cycle of ww edges (dirty write)
//   G1a       a read of a value appended by a transaction that aborted
//   G1b       a read of a value that was not its transaction's last append to the key
//   G1c       a cycle of ww and wr edges (circular information flow)
//   G-single  a cycle with exactly one rw edge (read skew); a two-transaction one on
//             one key, both appending, is a lost update, named so
//   incompatible-order  two reads of a key that are not prefixes of one list
// G2 (cycles with two or more rw edges: write skew) is allowed under snapshot
// isolation; it is counted, not reported as a violation.
// Thread safety: run_list_append spawns its own threads; the checker is a pure function.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "rdb/client.h"

namespace rdb::chaos {

inline constexpr const char* kListPrefix = "chaos/list/";

struct ListOp {
  bool append = false;
  std::string key;
  std::int64_t value = 0;          // append: the value appended
  std::vector<std::int64_t> read;  // the list as this operation saw it (an append: before it)
};

struct ListTxn {
  enum class Outcome { kOk, kFailed, kUnknown };
  std::uint64_t id = 0;
  Outcome outcome = Outcome::kFailed;
  std::vector<ListOp> ops;
};

struct ListAppendVerdict {
  std::map<std::string, std::uint64_t> counts;  // anomaly name -> how many (G2 included)
  std::vector<std::string> examples;            // one explanation per forbidden anomaly found
  std::uint64_t transactions = 0;               // committed ones in the graph
  bool ok() const { return examples.empty(); }
};

ListAppendVerdict check_list_append(const std::vector<ListTxn>& txns);

struct ListAppendOptions {
  int keys = 6;
  int clients = 3;
  std::chrono::milliseconds duration{10000};
  std::uint64_t seed = 1;
};

// Runs transactions until `duration`; returns every one with its outcome.
std::vector<ListTxn> run_list_append(RdbClient& client, const ListAppendOptions& options);
// After the faults heal: one transaction reading every key (recorded like the others).
void list_append_final_read(RdbClient& client, const ListAppendOptions& options, std::vector<ListTxn>& txns);

}  // namespace rdb::chaos
