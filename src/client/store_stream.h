// StoreStream: one BatchCommands stream to one store, shared by every caller
// that sends a point request (RawGet, RawPut, RawDelete, Get, CompareAndSwap)
// there.
//
// Why: one unary gRPC call per request costs both sides a call setup, metadata,
// a completion and a wake-up; with 256 requests in flight that overhead was as
// large as the store's own work. Here requests queue, and each stream message
// carries whatever queued while the previous message was being written (no timer:
// a lone request goes out at once). The store packs its answers the same way.
//
// Outcomes: each call's callback runs exactly once — with the store's answer, or
// with a failure when the stream breaks or the StoreStream is destroyed. A failed
// request reports whether it may have reached the store (`maybe_sent`): requests
// still queued when the stream broke certainly did not, so even a write may be
// retried; anything already handed to gRPC may have been executed.
// Thread safety: call() from any thread. Callbacks run on gRPC's threads (or
// inline in call() when the stream cannot start); they must not block for long.
// The destructor cancels the stream and waits until every callback has run.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <set>

#include "kvrpc.grpc.pb.h"

namespace rdb {

struct StoreReply {
  grpc::Status status;                              // the sub-request's status, or why the stream failed
  bool maybe_sent = true;                           // on failure: may the request have reached the store?
  kvrpc::BatchCommandsResponse::Response response;  // valid when status is OK
};

class StoreStream {
 public:
  using Callback = std::function<void(StoreReply)>;

  explicit StoreStream(std::shared_ptr<grpc::Channel> channel);
  ~StoreStream();
  StoreStream(const StoreStream&) = delete;
  StoreStream& operator=(const StoreStream&) = delete;

  void call(kvrpc::BatchCommandsRequest::Request request, Callback done);

  // Stream messages sent so far (for tests: batching packs several requests per message).
  std::uint64_t messages_sent() const;
  // When the store last answered anything on this StoreStream (its creation time
  // before the first answer). A store with requests waiting that has answered
  // nothing for a while is hung (paused, overloaded to a stop), not merely slow.
  std::chrono::steady_clock::time_point last_answer() const;

 private:
  class Call;  // one gRPC stream; a broken one is replaced by the next call()
  void call_done(Call* call);

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<kvrpc::Kv::Stub> stub_;
  mutable std::mutex mu_;
  std::condition_variable all_done_;
  Call* current_ = nullptr;          // accepting requests; guarded by mu_
  std::set<Call*> live_;             // streams whose OnDone has not run; guarded by mu_
  std::size_t finishing_ = 0;        // streams being deleted by their OnDone; guarded by mu_
  std::uint64_t next_id_ = 1;        // guarded by mu_
  std::uint64_t messages_sent_ = 0;  // guarded by mu_
  std::atomic<std::chrono::steady_clock::rep> last_answer_;
  bool stopping_ = false;  // guarded by mu_
};

}  // namespace rdb
