#include "client/tso_batcher.h"

#include <fmt/format.h>

namespace rdb {
namespace {
constexpr std::uint32_t kMaxBatch = 1 << 16;  // PD's per-request maximum
}

TsoBatcher::TsoBatcher(std::shared_ptr<grpc::Channel> pd_channel)
    : stub_(pdpb::PD::NewStub(std::move(pd_channel))), thread_([this] { run(); }) {}

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
  std::unique_lock lock(mu_);
  queue_.push_back(w);
  work_cv_.notify_one();
  if (!done_cv_.wait_until(lock, deadline, [&] { return w->done; })) {
    // Unblock a stream stuck on an unresponsive PD so later callers reconnect.
    if (stream_ctx_) {
      stream_ctx_->TryCancel();
    }
    return Status::deadline_exceeded("no timestamp from PD before the deadline");
  }
  return w->result;
}

Result<std::uint64_t> TsoBatcher::round_trip(std::uint32_t total) {
  grpc::ClientReaderWriter<pdpb::TsoRequest, pdpb::TsoResponse>* stream = nullptr;
  {
    std::lock_guard lock(mu_);
    if (!stream_) {
      stream_ctx_ = std::make_unique<grpc::ClientContext>();
      stream_ = stub_->Tso(stream_ctx_.get());
    }
    stream = stream_.get();
    ++requests_sent_;
  }
  pdpb::TsoRequest req;
  req.set_count(total);
  pdpb::TsoResponse resp;
  if (stream->Write(req) && stream->Read(&resp)) {
    if (resp.header().has_error() && resp.header().error().type() != pdpb::OK) {
      return Status::internal(fmt::format("PD refused the TSO request: {}", resp.header().error().message()));
    }
    if (resp.count() != total) {
      return Status::internal(fmt::format("PD granted {} timestamps, {} were asked", resp.count(), total));
    }
    return resp.first_timestamp();
  }
  // The stream broke: collect its status and start afresh next time.
  std::unique_ptr<grpc::ClientReaderWriter<pdpb::TsoRequest, pdpb::TsoResponse>> dead;
  {
    std::lock_guard lock(mu_);
    dead = std::move(stream_);
  }
  dead->WritesDone();
  grpc::Status s = dead->Finish();
  {
    std::lock_guard lock(mu_);
    stream_ctx_.reset();
  }
  return Status::unavailable(fmt::format("TSO stream to PD failed: {}", s.ok() ? "closed by PD" : s.error_message()));
}

void TsoBatcher::run() {
  std::unique_lock lock(mu_);
  for (;;) {
    work_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (stopping_) {
      for (auto& w : queue_) {
        w->done = true;
        w->result = Status::unavailable("client is shutting down");
      }
      queue_.clear();
      done_cv_.notify_all();
      return;
    }
    std::vector<std::shared_ptr<Waiter>> batch;
    std::uint32_t total = 0;
    while (!queue_.empty() && total + queue_.front()->count <= kMaxBatch) {
      total += queue_.front()->count;
      batch.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    lock.unlock();
    Result<std::uint64_t> first = round_trip(total);
    lock.lock();
    std::uint64_t offset = 0;
    for (auto& w : batch) {
      w->done = true;
      if (first.is_ok()) {
        w->result = first.value() + offset;
        offset += w->count;
      } else {
        w->result = first.status();
      }
    }
    done_cv_.notify_all();
  }
}

}  // namespace rdb
