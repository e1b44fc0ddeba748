// PdWorker: a store's conversation with PD after start-up.
//
// Every interval it sends a store heartbeat (liveness, region and leader
// counts) and, for each region this store leads, a region heartbeat; when PD's
// replica checker answers with a membership change, it asks the RaftStore to
// carry it out. It also resolves store ids to addresses for the Raft transport.
// Thread safety: resolve() may be called from any thread; start/stop from one.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "pdpb.grpc.pb.h"
#include "server/raft_store.h"

namespace rdb {

class PdWorker {
 public:
  PdWorker(std::shared_ptr<grpc::Channel> pd_channel, std::uint64_t cluster_id, RaftStore& store,
           std::chrono::milliseconds interval, std::string data_dir);
  ~PdWorker();
  void start();
  void stop();
  // The address PD has for `store_id`.
  Result<std::string> resolve(std::uint64_t store_id);
  // `count` new unique ids from PD (for split regions and their peers): the first.
  Result<std::uint64_t> alloc_ids(std::uint32_t count);
  // Heartbeats now instead of at the next interval (e.g. a split made new regions);
  // never blocks.
  void heartbeat_soon();

 private:
  void run();
  void heartbeat();

  std::unique_ptr<pdpb::PD::Stub> pd_;
  std::uint64_t cluster_id_;
  RaftStore& store_;
  std::chrono::milliseconds interval_;
  std::string data_dir_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool soon_ = false;
  std::thread thread_;
};

}  // namespace rdb
