// The chaos workload: concurrent clients issuing versioned gets, CAS, CAS-deletes,
// raw puts (unique values) and raw gets on a small set of keys, recording every
// operation with invoke/complete times and outcome for the checker.
//
// Outcomes: ok; failed when the client knows the operation did not take effect
// (a read that failed, a write refused before it could apply); unknown when it
// may have (UNDETERMINED, DEADLINE_EXCEEDED, INTERNAL).
// Thread safety: run_workload spawns its own client threads; Recorder is
// internally synchronised.
#pragma once

#include <atomic>
#include <chrono>
#include <mutex>
#include <vector>

#include "history.h"
#include "rdb/client.h"

namespace rdb::chaos {

class Recorder {
 public:
  Recorder() : start_(std::chrono::steady_clock::now()) {}
  std::uint64_t now_ns() const;
  std::uint64_t next_id() { return ++ids_; }
  void record(Operation op);
  std::vector<Operation> operations() const;
  // Appends one JSON line per operation to `path`.
  Status write(const std::string& path) const;

 private:
  std::chrono::steady_clock::time_point start_;
  std::atomic<std::uint64_t> ids_{0};
  mutable std::mutex mu_;
  std::vector<Operation> ops_;
};

struct WorkloadOptions {
  int clients = 8;
  int keys = 4;
  std::chrono::milliseconds duration{10000};
  std::uint64_t seed = 1;
  // If set, reads go to one of these clients at random (e.g. clients pointed at
  // each store directly), writes to the main one.
  std::vector<RdbClient*> read_clients;
};

// Runs until `duration` passes; each client uses `client` concurrently.
void run_workload(RdbClient& client, const WorkloadOptions& options, Recorder& recorder);

// Reads every key once (raw and versioned), recorded like any operation: after the
// faults heal, every acknowledged write must still be visible to these reads.
void final_reads(RdbClient& client, const WorkloadOptions& options, Recorder& recorder);

}  // namespace rdb::chaos
