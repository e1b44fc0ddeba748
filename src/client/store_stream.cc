#include "client/store_stream.h"

#include <deque>
#include <set>
#include <unordered_map>
#include <utility>
#include <vector>

namespace rdb {
namespace {

using Request = kvrpc::BatchCommandsRequest::Request;
using Response = kvrpc::BatchCommandsResponse::Response;

// A message is cut at this many requests or bytes so one burst cannot build a
// message near gRPC's size limit (values are up to 8 MiB each).
constexpr int kMaxRequestsPerMessage = 1024;
constexpr std::size_t kMaxBytesPerMessage = std::size_t{4} << 20;

}  // namespace

class StoreStream::Call final
    : public grpc::ClientBidiReactor<kvrpc::BatchCommandsRequest, kvrpc::BatchCommandsResponse> {
 public:
  // Binds the reactor to a new gRPC stream; writes issued before start() are held
  // by gRPC until the call starts.
  explicit Call(StoreStream& owner) : owner_(owner) { owner_.stub_->async()->BatchCommands(&ctx_, this); }

  void start() {
    StartRead(&in_);
    StartCall();
  }

  void cancel() { ctx_.TryCancel(); }

  bool broken_locked() const { return broken_; }

  void enqueue_locked(std::uint64_t id, Request request, Callback done) {
    waiting_.emplace(id, std::move(done));
    queued_.push_back({id, std::move(request)});
    if (!writing_ && !broken_) {
      start_write_locked();
    }
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard lock(owner_.mu_);
    writing_ = false;
    if (!ok) {
      broken_ = true;  // the stream is over; OnDone fails what is waiting
      return;
    }
    if (!queued_.empty()) {
      start_write_locked();
    }
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      return;  // the stream ended; OnDone follows
    }
    std::vector<std::pair<Callback, Response>> ready;
    ready.reserve(static_cast<std::size_t>(in_.responses_size()));
    {
      std::lock_guard lock(owner_.mu_);
      for (int i = 0; i < in_.responses_size() && i < in_.request_ids_size(); ++i) {
        auto it = waiting_.find(in_.request_ids(i));
        if (it == waiting_.end()) {
          continue;  // not ours (a store answering twice would be a bug there)
        }
        ready.emplace_back(std::move(it->second), std::move(*in_.mutable_responses(i)));
        waiting_.erase(it);
      }
    }
    in_.Clear();
    owner_.last_answer_.store(std::chrono::steady_clock::now().time_since_epoch().count());
    StartRead(&in_);
    for (auto& [done, response] : ready) {
      StoreReply reply;
      if (response.status_code() != 0) {
        reply.status = grpc::Status(static_cast<grpc::StatusCode>(response.status_code()), response.status_message());
      }
      reply.response = std::move(response);
      done(std::move(reply));
    }
  }

  void OnDone(const grpc::Status& status) override {
    std::unordered_map<std::uint64_t, Callback> waiting;
    std::set<std::uint64_t> never_sent;
    {
      std::lock_guard lock(owner_.mu_);
      broken_ = true;
      if (owner_.current_ == this) {
        owner_.current_ = nullptr;
      }
      waiting.swap(waiting_);
      for (const auto& q : queued_) {
        never_sent.insert(q.id);
      }
      queued_.clear();
    }
    grpc::Status failure =
        status.ok() ? grpc::Status(grpc::StatusCode::UNAVAILABLE, "the store closed the request stream") : status;
    for (auto& [id, done] : waiting) {
      StoreReply reply;
      reply.status = failure;
      reply.maybe_sent = never_sent.count(id) == 0;
      done(std::move(reply));
    }
    owner_.call_done(this);  // deletes this
  }

 private:
  struct Queued {
    std::uint64_t id;
    Request request;
  };

  void start_write_locked() {
    out_.Clear();
    std::size_t bytes = 0;
    while (!queued_.empty() && out_.requests_size() < kMaxRequestsPerMessage && bytes < kMaxBytesPerMessage) {
      Queued& q = queued_.front();
      bytes += q.request.ByteSizeLong();
      out_.add_request_ids(q.id);
      out_.add_requests()->Swap(&q.request);
      queued_.pop_front();
    }
    writing_ = true;
    ++owner_.messages_sent_;
    StartWrite(&out_);
  }

  StoreStream& owner_;
  grpc::ClientContext ctx_;
  kvrpc::BatchCommandsResponse in_;  // only touched by the read path
  // The rest is guarded by owner_.mu_.
  kvrpc::BatchCommandsRequest out_;                      // the message being written
  std::deque<Queued> queued_;                            // not yet handed to gRPC
  std::unordered_map<std::uint64_t, Callback> waiting_;  // unanswered, by request id
  bool writing_ = false;
  bool broken_ = false;
};

StoreStream::StoreStream(std::shared_ptr<grpc::Channel> channel)
    : channel_(std::move(channel)),
      stub_(kvrpc::Kv::NewStub(channel_)),
      last_answer_(std::chrono::steady_clock::now().time_since_epoch().count()) {}

std::chrono::steady_clock::time_point StoreStream::last_answer() const {
  return std::chrono::steady_clock::time_point(std::chrono::steady_clock::duration(last_answer_.load()));
}

StoreStream::~StoreStream() {
  std::unique_lock lock(mu_);
  stopping_ = true;
  for (Call* c : live_) {
    c->cancel();
  }
  all_done_.wait(lock, [this] { return live_.empty() && finishing_ == 0; });
}

void StoreStream::call(Request request, Callback done) {
  Call* fresh = nullptr;
  {
    std::unique_lock lock(mu_);
    if (stopping_) {
      lock.unlock();
      StoreReply reply;
      reply.status = grpc::Status(grpc::StatusCode::CANCELLED, "the client is shutting down");
      reply.maybe_sent = false;
      done(std::move(reply));
      return;
    }
    if (current_ == nullptr || current_->broken_locked()) {
      fresh = new Call(*this);  // NOLINT(cppcoreguidelines-owning-memory): freed in call_done
      current_ = fresh;
      live_.insert(fresh);
    }
    current_->enqueue_locked(next_id_++, std::move(request), std::move(done));
  }
  if (fresh != nullptr) {
    fresh->start();
  }
}

void StoreStream::call_done(Call* call) {
  {
    // Out of live_ first, under the lock: the destructor cancels only live calls, and
    // must never reach one being deleted.
    std::lock_guard lock(mu_);
    live_.erase(call);
    ++finishing_;
  }
  // Freed before the destructor may return: the call's ClientContext holds the
  // channel, whose last release must not race the owner's teardown.
  delete call;  // NOLINT(cppcoreguidelines-owning-memory): OnDone is the reactor's last callback
  std::lock_guard lock(mu_);
  --finishing_;
  all_done_.notify_all();  // under the lock: the destructor may free all_done_ right after
}

std::uint64_t StoreStream::messages_sent() const {
  std::lock_guard lock(mu_);
  return messages_sent_;
}

}  // namespace rdb
