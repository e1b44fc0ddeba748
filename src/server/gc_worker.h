// GcWorker: removes transactional versions no read can see any more. PD's GC safe
// point (learned from store heartbeats, persisted here, only growing) bounds the
// reads still allowed; for every region this store leads, the worker walks the
// region's "txn_write" records in chunks and proposes TXN Gc commands (through Raft,
// so every replica drops the same records) for, per key: every version older than
// the newest one at or below the safe point, that one too when it is a delete, and
// rollback / lock-only records at or below it. Locks are left to their resolution.
// A region is walked again only when the safe point moved or its epoch changed.
// Memory: one chunk of records and one command at a time.
// Thread safety: learn_safe_point() from any thread; start/stop from one.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "common/metrics.h"
#include "server/concurrency_manager.h"
#include "server/raft_store.h"
#include "storage/storage_engine.h"

namespace rdb {

class GcWorker {
 public:
  // Loads the persisted safe point into `concurrency`. Borrows everything.
  GcWorker(StorageEngine& engine, RaftStore& store, ConcurrencyManager& concurrency, std::chrono::milliseconds interval,
           MetricsRegistry& metrics);
  ~GcWorker();
  GcWorker(const GcWorker&) = delete;
  GcWorker& operator=(const GcWorker&) = delete;

  void start();
  void stop();
  // PD's word; persisted before it is used. A lower value than known is ignored.
  Status learn_safe_point(std::uint64_t safe_point);
  // One pass over the regions led here now (the thread runs it every interval).
  void run_once();

 private:
  void run();
  // Collects one region's old versions; false when it stopped early (leadership, errors).
  bool collect(const RegionStatus& region, std::uint64_t safe_point);
  bool propose(const RegionStatus& region, std::uint64_t safe_point, std::vector<std::string>& write_keys);

  StorageEngine& engine_;
  RaftStore& store_;
  ConcurrencyManager& concurrency_;
  const std::chrono::milliseconds interval_;
  Counter& versions_removed_;
  std::mutex learn_mu_;  // one persist at a time
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
  // region id -> (safe point, epoch version) of its last complete pass; the worker's own.
  std::map<std::uint64_t, std::pair<std::uint64_t, std::uint64_t>> done_;
};

}  // namespace rdb
