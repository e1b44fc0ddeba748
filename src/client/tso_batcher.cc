#include "client/tso_batcher.h"

#include <fmt/format.h>

namespace rdb {
namespace {
constexpr std::uint32_t kMaxBatch = 1 << 16;  // PD's per-request maximum
}

TsoBatcher::TsoBatcher(const std::shared_ptr<grpc::Channel>& pd_channel)
    : TsoBatcher([pd_channel] { return pd_channel; }, nullptr) {}

TsoBatcher::TsoBatcher(std::function<std::shared_ptr<grpc::Channel>()> channel_source, BrokenHandler on_broken)
    : channel_source_(std::move(channel_source)), on_broken_(std::move(on_broken)), thread_([this] { run(); }) {}

TsoBatcher::~TsoBatcher() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    if (stream_ctx_) {
      stream_ctx_->TryCancel();
    }
  }
  work_cv_.notify_all();
  thread_.join();
}

std::uint64_t TsoBatcher::requests_sent() const {
  std::lock_guard lock(mu_);
  return requests_sent_;
}

Result<std::uint64_t> TsoBatcher::get(std::uint32_t count, std::chrono::steady_clock::time_point deadline) {
  if (count == 0 || count > kMaxBatch) {
    return Status::invalid_argument(fmt::format("TSO count {} is out of range (1 to {})", count, kMaxBatch));
  }
  auto w = std::make_shared<Waiter>();
  w->count = count;
  w->deadline = deadline;
  {
    std::lock_guard lock(mu_);
    if (stopping_) {
      return Status::unavailable("client is shutting down");
    }
    queue_.push_back(w);
  }
  work_cv_.notify_one();
  std::unique_lock wait_lock(w->mu);
  if (!w->cv.wait_until(wait_lock, deadline, [&] { return w->done; })) {
    wait_lock.unlock();
    // Unblock a stream stuck on an unresponsive PD so later callers reconnect.
    std::lock_guard lock(mu_);
    if (stream_ctx_) {
      stream_ctx_->TryCancel();
    }
    return Status::deadline_exceeded("no timestamp from PD before the deadline");
  }
  return w->result;
}

void TsoBatcher::get_async(std::uint32_t count, std::chrono::steady_clock::time_point deadline,
                           std::function<void(Result<std::uint64_t>)> done) {
  if (count == 0 || count > kMaxBatch) {
    done(Status::invalid_argument(fmt::format("TSO count {} is out of range (1 to {})", count, kMaxBatch)));
    return;
  }
  auto w = std::make_shared<Waiter>();
  w->count = count;
  w->callback = std::move(done);
  w->deadline = deadline;
  {
    std::lock_guard lock(mu_);
    if (!stopping_) {
      queue_.push_back(std::move(w));
      w = nullptr;
    }
  }
  if (w != nullptr) {
    w->callback(Status::unavailable("client is shutting down"));
    return;
  }
  work_cv_.notify_one();
}

void TsoBatcher::finish(Waiter& w, Result<std::uint64_t> result) {
  if (w.callback) {
    w.callback(std::move(result));  // on this (the batcher) thread, no lock held
    return;
  }
  {
    std::lock_guard lock(w.mu);
    w.result = std::move(result);
    w.done = true;
  }
  w.cv.notify_one();
}

Result<std::uint64_t> TsoBatcher::round_trip(std::uint32_t total) {
  grpc::ClientReaderWriter<pdpb::TsoRequest, pdpb::TsoResponse>* stream = nullptr;
  {
    std::lock_guard lock(mu_);
    if (!stream_) {
      if (auto ch = channel_source_(); ch != channel_ || !stub_) {
        channel_ = std::move(ch);
        stub_ = pdpb::PD::NewStub(channel_);
      }
      stream_ctx_ = std::make_unique<grpc::ClientContext>();
      stream_ = stub_->Tso(stream_ctx_.get());
    }
    stream = stream_.get();
    ++requests_sent_;
  }
  pdpb::TsoRequest req;
  req.mutable_header()->set_cluster_id(cluster_id_.load());
  req.set_count(total);
  pdpb::TsoResponse resp;
  std::string not_leader;
  std::string leader_hint;
  if (stream->Write(req) && stream->Read(&resp)) {
    if (resp.header().error().type() == pdpb::NOT_LEADER) {
      not_leader = resp.header().error().message();  // leave this member, as after a broken stream
      leader_hint = resp.header().leader();
    } else if (resp.header().has_error() && resp.header().error().type() != pdpb::OK) {
      return Status::internal(fmt::format("PD refused the TSO request: {}", resp.header().error().message()));
    } else if (resp.count() != total) {
      return Status::internal(fmt::format("PD granted {} timestamps, {} were asked", resp.count(), total));
    } else {
      return resp.first_timestamp();
    }
  }
  // The stream broke (or its member does not lead): collect its status and start afresh next time.
  std::unique_ptr<grpc::ClientReaderWriter<pdpb::TsoRequest, pdpb::TsoResponse>> dead;
  {
    std::lock_guard lock(mu_);
    dead = std::move(stream_);
  }
  dead->WritesDone();
  grpc::Status s = dead->Finish();
  std::shared_ptr<grpc::Channel> broken;
  {
    std::lock_guard lock(mu_);
    stream_ctx_.reset();
    broken = channel_;
  }
  if (on_broken_) {
    on_broken_(broken, leader_hint);
  }
  if (!not_leader.empty()) {
    return Status::unavailable(not_leader);
  }
  return Status::unavailable(fmt::format("TSO stream to PD failed: {}", s.ok() ? "closed by PD" : s.error_message()));
}

void TsoBatcher::run() {
  std::unique_lock lock(mu_);
  for (;;) {
    work_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (stopping_) {
      std::deque<std::shared_ptr<Waiter>> left;
      left.swap(queue_);
      lock.unlock();  // callbacks may call get_async (refused now) and must not find mu_ held
      for (auto& w : left) {
        finish(*w, Status::unavailable("client is shutting down"));
      }
      return;
    }
    std::vector<std::shared_ptr<Waiter>> batch;
    std::vector<std::shared_ptr<Waiter>> expired;
    std::uint32_t total = 0;
    auto now = std::chrono::steady_clock::now();
    while (!queue_.empty() && total + queue_.front()->count <= kMaxBatch) {
      auto& front = queue_.front();
      if (front->callback && front->deadline < now) {
        expired.push_back(std::move(front));
      } else {
        total += front->count;
        batch.push_back(std::move(front));
      }
      queue_.pop_front();
    }
    lock.unlock();
    for (auto& w : expired) {
      finish(*w, Status::deadline_exceeded("no timestamp from PD before the deadline"));
    }
    if (batch.empty()) {
      lock.lock();
      continue;
    }
    Result<std::uint64_t> first = round_trip(total);
    // PD failing over (a broken stream, a member that does not lead): try the others
    // until the batch's last deadline, backing off a little.
    auto last_deadline = batch.front()->deadline;
    for (const auto& w : batch) {
      last_deadline = std::max(last_deadline, w->deadline);
    }
    std::chrono::milliseconds backoff(1);
    while (!first.is_ok() && first.status().code() == StatusCode::kUnavailable &&
           std::chrono::steady_clock::now() + backoff < last_deadline) {
      {
        std::unique_lock stop_lock(mu_);
        if (work_cv_.wait_for(stop_lock, backoff, [&] { return stopping_; })) {
          break;
        }
      }
      backoff = std::min(backoff * 2, std::chrono::milliseconds(50));
      first = round_trip(total);
    }
    std::uint64_t offset = 0;
    for (auto& w : batch) {
      if (first.is_ok()) {
        finish(*w, first.value() + offset);
        offset += w->count;
      } else {
        finish(*w, first.status());
      }
    }
    lock.lock();
  }
}

}  // namespace rdb
