// TsoBatcher: shares one PD TSO stream among many concurrent callers.
//
// Callers queue their counts; everything queued leaves as a single TsoRequest and a
// reader thread hands each caller of the answered request its own slice of the
// consecutive range. So N concurrent callers cost about one round trip, not N.
// One request is on the stream at a time by default: the reader sends what queued while
// it delivered an answer (no other thread woken), a writer thread sends to an idle
// stream and opens streams. With `max_in_flight` > 1 (PD answers a stream's requests in
// order) the writer sends while the stream has room and the reader sends halfway through
// a delivery: lower latency for callers arriving while a batch travels, at the price of
// smaller batches — on a 2-core machine, where the per-request work of both ends is the
// limit, 2 in flight gave 40 % fewer timestamps/s (docs/performance.md), hence the default.
// A leader that serves TSO on plain TCP too (rdb-pd --tso-addr) says where on its gRPC
// answers; the batcher then moves there (client/tso_stream.h): the same requests without
// gRPC's per-message work on either end. It stays on gRPC when an HTTP proxy is set for
// gRPC (grpc_proxy, https_proxy or http_proxy: the plain connection would bypass it),
// and for 10 s after the TCP endpoint could not be reached or its stream failed (a
// member that stopped leading is left as on gRPC, and its successor's endpoint used).
// A stream that breaks, or whose member does not lead, is replaced; the batches that
// were on it are sent again on the next stream (timestamps need not be dense: a slice
// granted but not delivered is simply unused) until each caller's deadline. A caller
// that passes its deadline gives up and cancels a stuck stream so the next batch
// reconnects.
// Thread safety: get() and get_async() may be called from any thread, async callbacks
// included. The destructor cancels the stream and joins both threads; no get() may be
// running then.
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
#include <string>
#include <thread>
#include <vector>

#include "client/tso_stream.h"
#include "common/result.h"
#include "pdpb.grpc.pb.h"

namespace rdb {

class TsoBatcher {
 public:
  explicit TsoBatcher(const std::shared_ptr<grpc::Channel>& pd_channel, std::size_t max_in_flight = 1);
  // Each (re)connection asks `channel_source` where PD is now, and a broken stream is
  // reported to `on_broken` with its channel and, when its member answered NOT_LEADER,
  // the leader's address it named (so a PD client can move to the leader or another member).
  using BrokenHandler = std::function<void(const std::shared_ptr<grpc::Channel>&, const std::string& leader_hint)>;
  TsoBatcher(std::function<std::shared_ptr<grpc::Channel>()> channel_source, BrokenHandler on_broken,
             std::size_t max_in_flight = 1);
  // The cluster id stamped on every TSO request (PD refuses requests without it).
  void set_cluster_id(std::uint64_t id) { cluster_id_ = id; }
  ~TsoBatcher();
  TsoBatcher(const TsoBatcher&) = delete;
  TsoBatcher& operator=(const TsoBatcher&) = delete;

  // Returns the first of `count` consecutive timestamps.
  Result<std::uint64_t> get(std::uint32_t count, std::chrono::steady_clock::time_point deadline);

  // Calls `done` with the first timestamp (on the batcher's reader thread) once answered.
  // A request not answered by its deadline is answered with DEADLINE_EXCEEDED.
  void get_async(std::uint32_t count, std::chrono::steady_clock::time_point deadline,
                 std::function<void(Result<std::uint64_t>)> done);

  // How many TsoRequests were sent (for tests and metrics).
  std::uint64_t requests_sent() const;
  // The most requests that were on a stream at once (for tests).
  std::size_t most_in_flight() const;
  // Streams opened to PD's plain-TCP endpoint (for tests and metrics).
  std::uint64_t tcp_streams_opened() const;

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
  struct Batch {
    std::vector<std::shared_ptr<Waiter>> waiters;
    std::uint32_t total = 0;
    std::chrono::steady_clock::time_point last_deadline;
  };
  static void finish(Waiter& w, Result<std::uint64_t> result);
  // DEADLINE_EXCEEDED naming the last failure. Called with mu_ held.
  Status expired_locked() const;
  static void finish_all(Batch& batch, const Status& status);
  // Queues `w`, waking the writer when the stream is idle. Called with mu_ held; may release it.
  void enqueue_locked(std::shared_ptr<Waiter> w, std::unique_lock<std::mutex>& lock);
  // Sends queued batches while the live stream has room and nobody else is writing to it.
  // Called with mu_ held; releases it around each Write.
  void send_queued(std::unique_lock<std::mutex>& lock);
  // Hands each caller of an answered batch its slice (or the batch's error), no lock held.
  void deliver(Batch& batch, const pdpb::TsoResponse& resp);
  void write_loop();
  void read_loop(TsoStream* stream, bool on_tcp);
  // After an answer on a gRPC stream: true when the batcher should leave it for the TCP
  // endpoint `advertised` (remembered for this channel). Called with mu_ held.
  bool move_to_tcp_locked(const std::string& advertised);
  // Opens a stream (and its reader) when there is none. Called and returns with mu_ held.
  void open_stream_locked(std::unique_lock<std::mutex>& lock);
  // The reader's end of a stream: requeues what was on it and, when it `failed`, reports
  // it (`why`, else the stream's status, becomes the last failure). Takes mu_.
  void close_stream(const std::string& why, const std::string& leader_hint, bool failed = true);
  // Takes what fits in one request off the queue; expired waiters go to `expired`.
  Batch take_batch_locked(std::vector<std::shared_ptr<Waiter>>& expired);

  std::function<std::shared_ptr<grpc::Channel>()> channel_source_;
  BrokenHandler on_broken_;
  const std::size_t max_in_flight_;         // requests on the stream at once (at least 1)
  std::shared_ptr<grpc::Channel> channel_;  // of the live stream; guarded by mu_
  std::unique_ptr<pdpb::PD::Stub> stub_;    // guarded by mu_
  mutable std::mutex mu_;
  std::condition_variable work_cv_;            // the writer waits on it
  std::condition_variable idle_cv_;            // a closing reader waits on it for the writer's Write
  std::deque<std::shared_ptr<Waiter>> queue_;  // not yet sent; guarded by mu_
  std::deque<Batch> in_flight_;                // sent on the live stream, in order; guarded by mu_
  bool stopping_ = false;
  bool writing_ = false;                 // a thread is in Write() on the live stream; guarded by mu_
  bool delivering_ = false;              // the reader is answering callers (it sends next); guarded by mu_
  bool writer_waiting_ = false;          // guarded by mu_
  bool closing_ = false;                 // the reader is tearing the live stream down; guarded by mu_
  int failed_streams_ = 0;               // streams in a row that broke without an answer; guarded by mu_
  std::string last_failure_;             // why the last stream broke; guarded by mu_
  std::uint64_t highest_delivered_ = 0;  // the last timestamp handed out; guarded by mu_
  std::uint64_t requests_sent_ = 0;
  std::uint64_t streams_opened_ = 0;  // guarded by mu_
  std::size_t most_in_flight_ = 0;
  // The live stream; guarded by mu_ for cancellation from other threads.
  std::unique_ptr<TsoStream> stream_;
  const bool tcp_allowed_;                      // no HTTP proxy for gRPC in the environment
  std::string tcp_addr_;                        // the TCP endpoint tcp_channel_'s member named; guarded by mu_
  std::shared_ptr<grpc::Channel> tcp_channel_;  // guarded by mu_
  std::chrono::steady_clock::time_point tcp_retry_at_{};  // after a failed connect; guarded by mu_
  std::uint64_t tcp_streams_opened_ = 0;                  // guarded by mu_
  bool stream_on_tcp_ = false;                            // the live stream is TCP; guarded by mu_
  std::thread reader_;                                    // of the live (or last) stream; joined by the writer
  std::atomic<std::uint64_t> cluster_id_{0};
  std::thread thread_;  // the writer
};

}  // namespace rdb
