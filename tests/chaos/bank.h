// The bank: a transactional workload and its checker. N accounts start with the same
// balance; clients move random amounts between two accounts in transactions, and
// others read every account in one snapshot (a transaction's scan). Under snapshot
// isolation every snapshot sums to the initial total and no balance goes negative,
// whatever the faults did — commits that were undetermined included, as a transfer
// moves money atomically or not at all.
// Thread safety: run_bank spawns its own threads; the result is returned at the end.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "rdb/client.h"

namespace rdb::chaos {

inline constexpr const char* kBankPrefix = "chaos/bank/";

struct BankOptions {
  int accounts = 5;
  std::int64_t initial = 100;  // per account
  int clients = 3;
  std::chrono::milliseconds duration{10000};
  std::uint64_t seed = 1;
};

struct BankRead {
  std::uint64_t start_ts = 0;
  std::vector<std::int64_t> balances;  // by account; empty when the read failed
};

struct BankResult {
  bool set_up = false;                                                     // the accounts were created
  std::uint64_t committed = 0, aborted = 0, undetermined = 0, failed = 0;  // transfers
  std::uint64_t reads_failed = 0;
  std::vector<BankRead> reads;  // snapshots that succeeded, the final one last
  bool final_read = false;
  std::string final_read_error;                   // the last failed attempt's, when final_read stayed false
  std::vector<std::string> final_read_diagnosis;  // what was learned about a failed final read
  // Empty when every snapshot summed to the total with no negative balance; else the
  // first violation.
  std::string violation;
  bool ok() const { return set_up && final_read && violation.empty(); }
};

// Creates the accounts (retrying until done or the duration passes), then runs the
// transfers and snapshot reads until `duration`.
BankResult run_bank(RdbClient& client, const BankOptions& options);
// After the faults heal: one more snapshot with a patient client.
void bank_final_read(RdbClient& client, const BankOptions& options, BankResult& result);
// Checks every snapshot in `result` (fills result.violation).
void check_bank(const BankOptions& options, BankResult& result);

}  // namespace rdb::chaos
