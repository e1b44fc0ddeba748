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
  // Opens a fault window now; returns its handle for fault_healed().
  std::size_t fault_started(const std::string& kind, const std::string& target);
  void fault_healed(std::size_t handle);
  std::vector<FaultEvent> faults() const;
  // Writes one JSON line per fault and per operation to `path` (replacing it).
  Status write(const std::string& path) const;

 private:
  std::chrono::steady_clock::time_point start_;
  std::atomic<std::uint64_t> ids_{0};
  mutable std::mutex mu_;
  std::vector<Operation> ops_;
  std::vector<FaultEvent> faults_;
};

struct WorkloadOptions {
  int clients = 8;
  int keys = 4;
  std::chrono::milliseconds duration{10000};
  std::uint64_t seed = 1;
  // Mostly raw puts and log writes (no CAS, few reads): keeps every client writing
  // even while reads would block, e.g. on an isolated leader.
  bool write_heavy = false;
  // If set, reads go to one of these clients at random (e.g. clients pointed at
  // each store directly), writes to the main one.
  std::vector<RdbClient*> read_clients;
};

// Runs until `duration` passes; each client uses `client` concurrently.
void run_workload(RdbClient& client, const WorkloadOptions& options, Recorder& recorder);

// Besides the shared keys, clients write unique "log" keys (kLogPrefix + client-n)
// once each; after the run every acknowledged one must be readable.
inline constexpr const char* kKeyPrefix = "chaos/";
inline constexpr const char* kLogPrefix = "chaos/log/";
// The client id of final reads in the history.
inline constexpr std::uint64_t kFinalReader = 1000;

// After the faults heal: reads every shared key (raw and versioned) and every log
// key that was written (acknowledged, failed or unknown), recorded like any
// operation, so the checkers see whether acknowledged writes survived.
void final_reads(RdbClient& client, const WorkloadOptions& options, Recorder& recorder);

}  // namespace rdb::chaos
