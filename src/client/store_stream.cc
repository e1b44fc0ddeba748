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

  // The hold lets callers' threads start writes outside the reactions: it is released
  // once the stream is broken and no write is in flight, and only then can OnDone run.
  void start() {
    AddHold();
    StartRead(&in_);
    StartCall();
  }

  void cancel() { ctx_.TryCancel(); }

  bool broken_locked() const { return broken_; }

  // Queues a request. True when the caller must call write() once it has let go of
  // the lock: the stream was idle, so this caller's thread sends what is queued.
  [[nodiscard]] bool enqueue_locked(std::uint64_t id, Request request, Callback done) {
    waiting_.emplace(id, std::move(done));
    queued_.push_back({id, std::move(request)});
    if (!writing_ && !broken_) {
      take_batch_locked();
      return true;
    }
    return false;
  }

  // Hands the message take_batch_locked() built to gRPC. Called without the lock, so
  // that serializing and sending it (often a syscall on this thread) does not hold up
  // the callers queueing behind it; out_ is not touched again until OnWriteDone.
  void write() { StartWrite(&out_); }

  void OnWriteDone(bool ok) override {
    bool write_more = false;
    bool release = false;
    {
      std::lock_guard lock(owner_.mu_);
      writing_ = false;
      if (!ok) {
        broken_ = true;  // the stream is over; OnDone fails what is waiting
      }
      if (broken_) {
        release = release_hold_locked();
      } else if (!queued_.empty()) {
        take_batch_locked();
        write_more = true;
      }
    }
    if (write_more) {
      write();
    }
    if (release) {
      RemoveHold();
    }
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      // The stream ended: nothing more is written (a write in flight releases the hold
      // when it completes), and OnDone follows.
      bool release = false;
      {
        std::lock_guard lock(owner_.mu_);
        broken_ = true;
        release = release_hold_locked();
      }
      if (release) {
        RemoveHold();
      }
      return;
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

  // True once when the hold may go: the stream is broken and no write is in flight.
  bool release_hold_locked() {
    if (writing_ || hold_released_) {
      return false;
    }
    hold_released_ = true;
    return true;
  }

  // Moves what is queued (up to the message limits) into out_ and marks a write in flight.
  void take_batch_locked() {
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
  bool hold_released_ = false;
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
  Call* writer = nullptr;
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
    if (current_->enqueue_locked(next_id_++, std::move(request), std::move(done))) {
      writer = current_;  // kept alive by its hold while its write is in flight
    }
  }
  if (fresh != nullptr) {
    fresh->start();
  }
  if (writer != nullptr) {
    writer->write();
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
