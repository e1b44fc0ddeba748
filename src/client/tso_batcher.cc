#include "client/tso_batcher.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <limits>

#include "common/address.h"

namespace rdb {
namespace {
constexpr std::uint32_t kMaxBatch = 1 << 16;  // PD's per-request maximum
constexpr auto kTcpConnectTimeout = std::chrono::seconds(1);
constexpr auto kTcpRetryAfter = std::chrono::seconds(10);
using Clock = std::chrono::steady_clock;

// gRPC dials through an HTTP proxy when one of these is set; a plain TCP connection
// would not, so the batcher then keeps TSO on gRPC.
bool grpc_proxy_configured() {
  for (const char* name : {"grpc_proxy", "https_proxy", "http_proxy"}) {
    const char* v = std::getenv(name);  // NOLINT(concurrency-mt-unsafe): read once, at construction
    if (v != nullptr && *v != '\0') {
      return true;
    }
  }
  return false;
}
}  // namespace

TsoBatcher::TsoBatcher(const std::shared_ptr<grpc::Channel>& pd_channel, std::size_t max_in_flight)
    : TsoBatcher([pd_channel] { return pd_channel; }, nullptr, max_in_flight) {}

TsoBatcher::TsoBatcher(std::function<std::shared_ptr<grpc::Channel>()> channel_source, BrokenHandler on_broken,
                       std::size_t max_in_flight)
    : channel_source_(std::move(channel_source)),
      on_broken_(std::move(on_broken)),
      max_in_flight_(std::max<std::size_t>(max_in_flight, 1)),
      tcp_allowed_(!grpc_proxy_configured()),
      thread_([this] { write_loop(); }) {}

TsoBatcher::~TsoBatcher() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    if (stream_) {
      stream_->cancel();
    }
  }
  work_cv_.notify_all();
  thread_.join();  // the writer joins the reader
}

std::uint64_t TsoBatcher::requests_sent() const {
  std::lock_guard lock(mu_);
  return requests_sent_;
}

std::size_t TsoBatcher::most_in_flight() const {
  std::lock_guard lock(mu_);
  return most_in_flight_;
}

std::uint64_t TsoBatcher::tcp_streams_opened() const {
  std::lock_guard lock(mu_);
  return tcp_streams_opened_;
}

Status TsoBatcher::expired_locked() const {
  return Status::deadline_exceeded(last_failure_.empty()
                                       ? std::string("no timestamp from PD before the deadline")
                                       : fmt::format("no timestamp from PD before the deadline; {}", last_failure_));
}

Result<std::uint64_t> TsoBatcher::get(std::uint32_t count, Clock::time_point deadline) {
  if (count == 0 || count > kMaxBatch) {
    return Status::invalid_argument(fmt::format("TSO count {} is out of range (1 to {})", count, kMaxBatch));
  }
  auto w = std::make_shared<Waiter>();
  w->count = count;
  w->deadline = deadline;
  {
    std::unique_lock lock(mu_);
    if (stopping_) {
      return Status::unavailable("client is shutting down");
    }
    enqueue_locked(w, lock);
  }
  std::unique_lock wait_lock(w->mu);
  if (!w->cv.wait_until(wait_lock, deadline, [&] { return w->done; })) {
    wait_lock.unlock();
    // Unblock a stream stuck on an unresponsive PD so later callers reconnect.
    std::lock_guard lock(mu_);
    if (stream_ && !in_flight_.empty()) {
      stream_->cancel();
    }
    return expired_locked();
  }
  return w->result;
}

void TsoBatcher::get_async(std::uint32_t count, Clock::time_point deadline,
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
    std::unique_lock lock(mu_);
    if (!stopping_) {
      enqueue_locked(std::move(w), lock);
      return;
    }
  }
  w->callback(Status::unavailable("client is shutting down"));
}

void TsoBatcher::enqueue_locked(std::shared_ptr<Waiter> w, std::unique_lock<std::mutex>& lock) {
  queue_.push_back(std::move(w));
  // One wake-up for the first caller when the stream has room; none while the reader
  // delivers an answer or a request is being written (both send what queued next).
  if (writer_waiting_ && queue_.size() == 1 && in_flight_.size() < max_in_flight_ && !delivering_ && !writing_) {
    lock.unlock();
    work_cv_.notify_one();
  }
}

void TsoBatcher::send_queued(std::unique_lock<std::mutex>& lock) {
  while (stream_ && !closing_ && !writing_ && !queue_.empty() && in_flight_.size() < max_in_flight_) {
    std::vector<std::shared_ptr<Waiter>> expired;
    Batch batch = take_batch_locked(expired);
    if (!expired.empty()) {
      Status why = expired_locked();
      writing_ = true;  // keeps the stream (and the order of requests) while the lock is free
      lock.unlock();
      for (auto& w : expired) {
        finish(*w, why);
      }
      lock.lock();
      writing_ = false;
      idle_cv_.notify_all();
      if (!stream_ || closing_) {
        for (auto it = batch.waiters.rbegin(); it != batch.waiters.rend(); ++it) {
          queue_.push_front(std::move(*it));
        }
        return;
      }
    }
    if (batch.waiters.empty()) {
      continue;
    }
    pdpb::TsoRequest req;
    req.mutable_header()->set_cluster_id(cluster_id_.load());
    req.set_count(batch.total);
    auto* stream = stream_.get();
    in_flight_.push_back(std::move(batch));
    most_in_flight_ = std::max(most_in_flight_, in_flight_.size());
    ++requests_sent_;
    writing_ = true;
    lock.unlock();
    stream->write(req);  // a failed write means a dead stream: the reader's read fails and closes it
    lock.lock();
    writing_ = false;
    idle_cv_.notify_all();
  }
}

void TsoBatcher::finish(Waiter& w, Result<std::uint64_t> result) {
  if (w.callback) {
    w.callback(std::move(result));  // on the batcher's thread, no lock held
    return;
  }
  {
    std::lock_guard lock(w.mu);
    w.result = std::move(result);
    w.done = true;
  }
  w.cv.notify_one();
}

void TsoBatcher::finish_all(Batch& batch, const Status& status) {
  for (auto& w : batch.waiters) {
    finish(*w, status);
  }
}

TsoBatcher::Batch TsoBatcher::take_batch_locked(std::vector<std::shared_ptr<Waiter>>& expired) {
  Batch batch;
  auto now = Clock::now();
  while (!queue_.empty() && batch.total + queue_.front()->count <= kMaxBatch) {
    auto& front = queue_.front();
    if (front->deadline <= now) {
      expired.push_back(std::move(front));  // a blocking caller has returned already
    } else {
      batch.total += front->count;
      batch.last_deadline = std::max(batch.last_deadline, front->deadline);
      batch.waiters.push_back(std::move(front));
    }
    queue_.pop_front();
  }
  return batch;
}

void TsoBatcher::open_stream_locked(std::unique_lock<std::mutex>& lock) {
  if (reader_.joinable()) {
    lock.unlock();  // the last stream's reader has closed it and is leaving
    reader_.join();
    lock.lock();
  }
  if (auto ch = channel_source_(); ch != channel_ || !stub_) {
    channel_ = std::move(ch);
    stub_ = pdpb::PD::NewStub(channel_);
  }
  bool on_tcp = false;
  if (tcp_allowed_ && !tcp_addr_.empty() && tcp_channel_ == channel_ && Clock::now() >= tcp_retry_at_) {
    const std::string addr = tcp_addr_;
    lock.unlock();  // connecting may take up to its timeout; nobody sends while stream_ is empty
    auto tcp = open_tcp_tso_stream(addr, kTcpConnectTimeout);
    lock.lock();
    if (tcp.is_ok()) {
      stream_ = std::move(tcp).value();
      on_tcp = true;
      ++tcp_streams_opened_;
    } else if (stopping_) {
      return;  // the writer sees stopping_ next
    } else {
      last_failure_ = tcp.status().message();
      tcp_addr_.clear();  // learnt again from a gRPC answer, after a pause
      tcp_retry_at_ = Clock::now() + kTcpRetryAfter;
    }
  }
  if (!on_tcp) {
    stream_ = open_grpc_tso_stream(*stub_);
  }
  stream_on_tcp_ = on_tcp;
  ++streams_opened_;
  reader_ = std::thread([this, stream = stream_.get(), on_tcp] { read_loop(stream, on_tcp); });
}

bool TsoBatcher::move_to_tcp_locked(const std::string& advertised) {
  if (!tcp_allowed_ || advertised.empty() || !in_flight_.empty() || closing_ || stopping_ ||
      Clock::now() < tcp_retry_at_) {
    return false;
  }
  // A member's word, checked before it is dialled: HOST:PORT, nothing else.
  if (advertised.size() > 256 || !parse_host_port(advertised).is_ok()) {
    return false;
  }
  tcp_addr_ = advertised;
  tcp_channel_ = channel_;
  return true;
}

void TsoBatcher::write_loop() {
  std::unique_lock lock(mu_);
  bool cancelled_stuck = false;  // this stream was cancelled for want of an answer
  std::uint64_t stream_seen = 0;
  for (;;) {
    // While the reader delivers an answer it sends what queues meanwhile itself.
    auto can_send = [&] {
      return stopping_ ||
             (!queue_.empty() && !closing_ && !writing_ && !delivering_ && in_flight_.size() < max_in_flight_);
    };
    if (streams_opened_ != stream_seen) {
      stream_seen = streams_opened_;
      cancelled_stuck = false;
    }
    writer_waiting_ = true;
    bool woken = true;
    if (in_flight_.empty() || cancelled_stuck || closing_) {
      work_cv_.wait(lock, can_send);  // NOLINT(bugprone-infinite-loop): other threads change the state
    } else {
      const auto oldest_gives_up = in_flight_.front().last_deadline;  // a copy: the reader may pop it meanwhile
      woken = work_cv_.wait_until(lock, oldest_gives_up, can_send);
    }
    writer_waiting_ = false;
    if (!woken) {
      // Every caller of the oldest request has given up: the stream is stuck (a PD that
      // accepts but does not answer). Cancelling it makes the reader requeue and reconnect.
      if (!in_flight_.empty() && Clock::now() >= in_flight_.front().last_deadline && stream_ && !closing_) {
        stream_->cancel();
        cancelled_stuck = true;
      }
      continue;
    }
    if (stopping_) {
      break;
    }
    if (!stream_) {
      if (failed_streams_ > 0) {  // PD failing over or down: back off a little, 1 ms doubling to 50 ms
        auto pause = std::chrono::milliseconds(std::min(1 << std::min(failed_streams_ - 1, 6), 50));
        if (work_cv_.wait_for(lock, pause, [&] { return stopping_; })) {
          break;
        }
      }
      open_stream_locked(lock);
    }
    send_queued(lock);
  }
  if (stream_) {
    stream_->cancel();
  }
  lock.unlock();
  if (reader_.joinable()) {
    reader_.join();  // it requeues what was in flight
  }
  lock.lock();
  std::deque<std::shared_ptr<Waiter>> left;
  left.swap(queue_);
  lock.unlock();  // callbacks may call get_async (refused now) and must not find mu_ held
  for (auto& w : left) {
    finish(*w, Status::unavailable("client is shutting down"));
  }
}

void TsoBatcher::read_loop(TsoStream* stream, bool on_tcp) {
  std::string why;  // the stream is left for this reason (else: its final status)
  std::string leader_hint;
  bool failed = true;
  pdpb::TsoResponse resp;
  while (stream->read(&resp)) {
    if (resp.header().error().type() == pdpb::NOT_LEADER) {
      leader_hint = resp.header().leader();  // leave this member, as after a broken stream
      why = fmt::format("the PD member does not lead: {}", resp.header().error().message());
      break;
    }
    Batch batch;
    {
      std::lock_guard lock(mu_);
      if (in_flight_.empty()) {
        why = "PD answered a TSO request that was not asked";
        break;
      }
      batch = std::move(in_flight_.front());
      in_flight_.pop_front();
      failed_streams_ = 0;
      delivering_ = true;
    }
    deliver(batch, resp);
    std::unique_lock lock(mu_);
    delivering_ = false;
    if (!on_tcp && move_to_tcp_locked(resp.tso_addr())) {
      why = "moving to PD's TCP TSO endpoint";
      failed = false;  // what queued meanwhile leaves on the new stream
      break;
    }
    send_queued(lock);
  }
  close_stream(why, leader_hint, failed);
}

void TsoBatcher::deliver(Batch& batch, const pdpb::TsoResponse& resp) {
  if (resp.header().has_error() && resp.header().error().type() != pdpb::OK) {
    return finish_all(batch,
                      Status::internal(fmt::format("PD refused the TSO request: {}", resp.header().error().message())));
  }
  if (resp.count() != batch.total) {
    return finish_all(
        batch, Status::internal(fmt::format("PD granted {} timestamps, {} were asked", resp.count(), batch.total)));
  }
  // Timestamps order transactions: a range that overflows, or that does not lie above
  // every timestamp handed out before, is refused rather than given to anyone.
  const std::uint64_t first = resp.first_timestamp();
  if (first == 0 || first > std::numeric_limits<std::uint64_t>::max() - batch.total) {
    return finish_all(batch, Status::internal(fmt::format(
                                 "PD granted an invalid timestamp range: {} timestamps from {}", batch.total, first)));
  }
  {
    std::lock_guard lock(mu_);
    if (first <= highest_delivered_) {
      return finish_all(
          batch, Status::internal(fmt::format("PD granted timestamps from {}, not above {} it granted before", first,
                                              highest_delivered_)));
    }
    highest_delivered_ = first + batch.total - 1;
  }
  // Halfway, what the first callers queued again leaves on the stream while the others
  // are answered: two batches travel at once, and no thread waits for the whole delivery.
  const std::size_t half = batch.waiters.size() / 2;
  std::uint64_t offset = 0;
  for (std::size_t i = 0; i < batch.waiters.size(); ++i) {
    if (i == half && half > 0 && max_in_flight_ > 1) {
      std::unique_lock lock(mu_);
      send_queued(lock);
    }
    auto& w = *batch.waiters[i];
    finish(w, first + offset);
    offset += w.count;
  }
}

void TsoBatcher::close_stream(const std::string& why, const std::string& leader_hint, bool failed) {
  std::unique_lock lock(mu_);
  closing_ = true;
  stream_->cancel();  // ends a write blocked on a dead or departing member
  idle_cv_.wait(lock, [&] { return !writing_; });
  auto dead = std::move(stream_);
  // What was on the stream goes first next time, in its order.
  for (auto batch = in_flight_.rbegin(); batch != in_flight_.rend(); ++batch) {
    for (auto w = batch->waiters.rbegin(); w != batch->waiters.rend(); ++w) {
      queue_.push_front(std::move(*w));
    }
  }
  in_flight_.clear();
  const bool stopping = stopping_;
  std::shared_ptr<grpc::Channel> broken = channel_;
  lock.unlock();
  const std::string ended = dead->finish();
  if (failed && on_broken_ && !stopping) {
    on_broken_(broken, leader_hint);
  }
  lock.lock();
  if (failed) {
    last_failure_ =
        !why.empty() ? why : fmt::format("the TSO stream to PD failed: {}", ended.empty() ? "closed by PD" : ended);
    ++failed_streams_;
    if (stream_on_tcp_ && leader_hint.empty()) {
      tcp_addr_.clear();  // back to gRPC for a while: a broken endpoint must not cost every retry
      tcp_retry_at_ = Clock::now() + kTcpRetryAfter;
    }
  }
  stream_on_tcp_ = false;
  closing_ = false;
  lock.unlock();
  work_cv_.notify_one();
}

}  // namespace rdb
