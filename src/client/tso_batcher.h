// TsoBatcher: shares one PD TSO stream among many concurrent callers.
//
// Callers queue their counts; one background thread sends everything queued as
// a single TsoRequest, reads the reply and hands each caller its own slice of
// the consecutive range. So N concurrent callers cost about one round trip, not N.
// A caller that passes its deadline gives up (its slice, if granted later, is
// simply unused: timestamps need not be dense) and cancels a stuck stream so
// the next batch reconnects.
// Thread safety: get() may be called from any thread. The destructor cancels the
// stream and joins the thread; no get() may be running then.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "common/result.h"
#include "pdpb.grpc.pb.h"

namespace rdb {

class TsoBatcher {
 public:
  explicit TsoBatcher(const std::shared_ptr<grpc::Channel>& pd_channel);
  // Each (re)connection asks `channel_source` where PD is now, and a broken stream is
  // reported to `on_broken` with its channel and, when its member answered NOT_LEADER,
  // the leader's address it named (so a PD client can move to the leader or another member).
  using BrokenHandler = std::function<void(const std::shared_ptr<grpc::Channel>&, const std::string& leader_hint)>;
  TsoBatcher(std::function<std::shared_ptr<grpc::Channel>()> channel_source, BrokenHandler on_broken);
  // The cluster id stamped on every TSO request (PD refuses requests without it).
  void set_cluster_id(std::uint64_t id) { cluster_id_ = id; }
  ~TsoBatcher();
  TsoBatcher(const TsoBatcher&) = delete;
  TsoBatcher& operator=(const TsoBatcher&) = delete;

  // Returns the first of `count` consecutive timestamps.
  Result<std::uint64_t> get(std::uint32_t count, std::chrono::steady_clock::time_point deadline);

  // Calls `done` with the first timestamp (on the batcher thread) once answered.
  // A request still queued at its deadline is answered with DEADLINE_EXCEEDED.
  void get_async(std::uint32_t count, std::chrono::steady_clock::time_point deadline,
                 std::function<void(Result<std::uint64_t>)> done);

  // How many TsoRequests were sent (for tests and metrics).
  std::uint64_t requests_sent() const;

 private:
  // Each waiter has its own condition variable: a finished batch wakes exactly its
  // callers, not every thread blocked in get() (with 64 callers on 2 cores, waking
  // all of them per batch cost more than the round trip).
  struct Waiter {
    std::uint32_t count = 0;
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;  // guarded by mu
    Result<std::uint64_t> result = Status::internal("pending");
    std::function<void(Result<std::uint64_t>)> callback;  // async callers
    std::chrono::steady_clock::time_point deadline;
  };
  static void finish(Waiter& w, Result<std::uint64_t> result);
  void run();
  // Sends one batch; returns the first timestamp or an error. Called without mu_.
  Result<std::uint64_t> round_trip(std::uint32_t total);

  std::function<std::shared_ptr<grpc::Channel>()> channel_source_;
  BrokenHandler on_broken_;
  std::shared_ptr<grpc::Channel> channel_;  // of the live stream; guarded by mu_
  std::unique_ptr<pdpb::PD::Stub> stub_;    // guarded by mu_
  mutable std::mutex mu_;
  std::condition_variable work_cv_;
  std::deque<std::shared_ptr<Waiter>> queue_;
  bool stopping_ = false;
  std::uint64_t requests_sent_ = 0;
  // The live stream; guarded by mu_ for cancellation from other threads.
  std::unique_ptr<grpc::ClientContext> stream_ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<pdpb::TsoRequest, pdpb::TsoResponse>> stream_;
  std::atomic<std::uint64_t> cluster_id_{0};
  std::thread thread_;
};

}  // namespace rdb
