// PdWorker: a store's conversation with PD after start-up.
//
// Every interval it sends a store heartbeat (liveness, region and leader
// counts) and, for each region this store leads whose report changed (or every
// tenth round), a region heartbeat; when PD's
// replica checker answers with a membership change, it asks the RaftStore to
// carry it out. It also resolves store ids to addresses for the Raft transport.
// Thread safety: resolve() may be called from any thread; start/stop from one.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "client/pd_client.h"
#include "pdpb.grpc.pb.h"
#include "server/raft_store.h"

namespace rdb {

class PdWorker {
 public:
  // `pd` outlives the worker.
  PdWorker(PdClient& pd, RaftStore& store, std::chrono::milliseconds interval, std::string data_dir);
  ~PdWorker();
  void start();
  void stop();
  // The address PD has for `store_id`.
  Result<std::string> resolve(std::uint64_t store_id);
  // Its plain-TCP Raft address ("" when it has none).
  Result<std::string> resolve_raft(std::uint64_t store_id);
  // `count` new unique ids from PD (for split regions and their peers): the first.
  Result<std::uint64_t> alloc_ids(std::uint32_t count);
  // Heartbeats now instead of at the next interval (e.g. a split made new regions);
  // never blocks.
  void heartbeat_soon();
  // Called (on the worker thread) with the GC safe point each store heartbeat returns.
  // Set before start().
  void on_gc_safe_point(std::function<void(std::uint64_t)> fn) { on_gc_safe_point_ = std::move(fn); }

 private:
  Result<metapb::Store> lookup_store(std::uint64_t store_id);
  void run();
  void heartbeat();

  PdClient& pd_;
  RaftStore& store_;
  std::chrono::milliseconds interval_;
  std::string data_dir_;
  std::function<void(std::uint64_t)> on_gc_safe_point_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool soon_ = false;
  // Region heartbeats go out when something changed or the region is being worked on,
  // and otherwise every kQuietRounds rounds — or less often, so that quiet reports
  // stay under kMaxQuietPerRound a round: with thousands of idle regions, a report of
  // each every interval would keep PD and the store busy for nothing.
  static constexpr std::uint64_t kQuietRounds = 10;
  static constexpr std::uint64_t kMaxQuietPerRound = 50;
  struct Reported {
    std::string what;  // the report's content when last sent
    std::uint64_t round = 0;
    bool in_motion = false;  // PD answered with a change: report again next round
  };
  std::map<std::uint64_t, Reported> reported_;  // by region id; the worker thread's own
  std::uint64_t round_ = 0;
  std::uint64_t failed_store_heartbeats_ = 0;  // in a row; the worker thread's own
  std::uint64_t last_refusal_log_round_ = 0;   // when refused region reports were last logged
  std::thread thread_;
};

}  // namespace rdb
