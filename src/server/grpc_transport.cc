#include "server/grpc_transport.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "common/grpc_setup.h"
#include "common/limits.h"
#include "server/snap_manager.h"

namespace rdb {

GrpcRaftTransport::GrpcRaftTransport(StoreResolver resolver, std::size_t max_queue,
                                     std::shared_ptr<grpc::ChannelCredentials> creds, std::uint64_t snap_bytes_per_sec)
    : resolver_(std::move(resolver)),
      max_queue_(max_queue),
      creds_(std::move(creds)),
      snap_limiter_(snap_bytes_per_sec) {}

// One Raft.Send client stream of a Connection. gRPC holds off OnDone until run()
// releases the stream, so no write can start on a stream gRPC is done with.
class GrpcRaftTransport::Stream final : public grpc::ClientWriteReactor<raftsvc::RaftBatch> {
 public:
  Stream(GrpcRaftTransport& transport, Connection& c, raftsvc::Raft::Stub& stub) : transport_(transport), c_(c) {
    stub.async()->Send(&ctx_, &reply_, this);
    AddHold();
    StartCall();
  }
  raftsvc::RaftBatch& batch() { return batch_; }
  void write() { StartWrite(&batch_); }
  void cancel() { ctx_.TryCancel(); }
  void release() { RemoveHold(); }

  void OnWriteDone(bool ok) override { transport_.on_write_done(c_, ok); }
  void OnDone(const grpc::Status& /*status*/) override {
    Connection& c = c_;
    {
      std::lock_guard lock(c.mu);
      c.stream_done = true;  // run() may destroy this stream now: below, only `c` is touched
    }
    c.cv.notify_all();
  }

 private:
  GrpcRaftTransport& transport_;
  Connection& c_;
  grpc::ClientContext ctx_;
  raftsvc::Done reply_;
  raftsvc::RaftBatch batch_;  // the write in flight: one at a time
};

GrpcRaftTransport::~GrpcRaftTransport() {
  snap_limiter_.stop();  // senders waiting for their turn give up now
  std::vector<SnapshotSender> senders;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    senders.swap(snapshot_senders_);
  }
  for (auto& s : senders) {
    s.thread.join();
  }
  std::lock_guard lock(mu_);
  for (auto& [id, c] : connections_) {
    {
      std::lock_guard cl(c->mu);
      c->stopping = true;
    }
    c->cv.notify_all();
  }
  for (auto& [id, c] : connections_) {
    c->thread.join();
  }
}

void GrpcRaftTransport::send(std::vector<raftsvc::RaftMessage> messages) {
  std::vector<Connection*> touched;
  {
    std::lock_guard lock(mu_);
    for (auto& m : messages) {
      std::uint64_t to = m.to_peer().store_id();
      auto& c = connections_[to];
      if (!c) {
        c = std::make_unique<Connection>();
        c->store_id = to;
        Connection* raw = c.get();
        c->thread = std::thread([this, raw] { run(*raw); });
      }
      std::lock_guard cl(c->mu);
      if (c->queue.size() >= max_queue_) {
        dropped_.fetch_add(1);
        continue;
      }
      c->queue.push_back(std::move(m));
      if (std::find(touched.begin(), touched.end(), c.get()) == touched.end()) {
        touched.push_back(c.get());
      }
    }
  }
  // Connections live as long as the transport: no lock needed to reach them.
  for (Connection* c : touched) {
    bool start = false;
    {
      std::lock_guard cl(c->mu);
      start = take_batch_locked(*c);
      if (!c->open) {
        c->cv.notify_all();  // run() opens the stream and sends what waits
      }
    }
    if (start) {
      start_write(*c);
    }
  }
}

bool GrpcRaftTransport::take_batch_locked(Connection& c) {
  if (!c.open || c.writing || c.queue.empty()) {
    return false;
  }
  raftsvc::RaftBatch& batch = c.stream->batch();
  batch.Clear();
  batch.set_cluster_id(cluster_id_.load());
  // Cut by count and bytes: the receiver accepts messages up to kMaxGrpcMessageBytes.
  std::size_t bytes = 0;
  while (!c.queue.empty() && batch.messages_size() < 256) {
    std::size_t next = c.queue.front().ByteSizeLong();
    if (bytes > 0 && bytes + next > kMaxRaftBatchBytes) {
      break;
    }
    bytes += next;
    *batch.add_messages() = std::move(c.queue.front());
    c.queue.pop_front();
  }
  c.writing = true;
  ++c.starting;
  return true;
}

void GrpcRaftTransport::start_write(Connection& c) {
  // Outside c.mu: gRPC may run OnWriteDone inline, on this thread.
  c.stream->write();
  bool tearing_down = false;
  {
    std::lock_guard cl(c.mu);
    --c.starting;
    tearing_down = !c.open && c.starting == 0;
  }
  if (tearing_down) {
    c.cv.notify_all();  // run() waits for this write to have started; otherwise nobody waits
  }
}

void GrpcRaftTransport::on_write_done(Connection& c, bool ok) {
  bool start = false;
  {
    std::lock_guard cl(c.mu);
    c.writing = false;
    if (!ok) {
      // The batch is lost and the stream is broken: run() re-opens it after a back-off.
      dropped_.fetch_add(static_cast<std::uint64_t>(c.stream->batch().messages_size()));
      c.broken = true;
      c.open = false;
    } else {
      c.backoff_reset = true;
      start = take_batch_locked(c);
    }
  }
  if (!ok) {
    c.cv.notify_all();
  }
  if (start) {
    start_write(c);
  }
}

void GrpcRaftTransport::send_snapshot(raftsvc::RaftMessage message, std::vector<std::string> files,
                                      std::function<void(bool)> done) {
  std::lock_guard lock(mu_);
  if (stopping_) {
    done(false);
    return;
  }
  // Reap senders that have finished.
  for (auto it = snapshot_senders_.begin(); it != snapshot_senders_.end();) {
    if (it->finished->load()) {
      it->thread.join();
      it = snapshot_senders_.erase(it);
    } else {
      ++it;
    }
  }
  auto finished = std::make_shared<std::atomic<bool>>(false);
  auto body = [this, message = std::move(message), files = std::move(files), done = std::move(done)]() mutable {
    auto addr = resolver_(message.to_peer().store_id());
    if (!addr.is_ok()) {
      done(false);
      return;
    }
    std::uint64_t total = 0;
    raftsvc::SnapshotDescriptor d;
    if (d.ParseFromString(message.message().snapshot().data())) {
      for (const auto& f : d.files()) {
        total += f.size();
      }
    }
    auto stub = raftsvc::Raft::NewStub(make_channel(*addr, creds_, kMaxGrpcMessageBytes));
    grpc::ClientContext ctx;
    // Long enough for the files at the paced rate (or 10 MiB/s unpaced), plus slack.
    std::uint64_t rate = snap_limiter_.bytes_per_sec() == 0 ? (10U << 20) : snap_limiter_.bytes_per_sec();
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(10) +
                     std::chrono::seconds(2 * total / rate));
    raftsvc::Done reply;
    auto writer = stub->SendSnapshot(&ctx, &reply);
    raftsvc::SnapshotChunk first;
    *first.mutable_message() = message;
    first.set_total_size(total);
    first.set_cluster_id(cluster_id_.load());
    bool ok = writer->Write(first);
    Status sent = Status::ok();
    if (ok) {
      sent = stream_snapshot_files(files, kSnapshotChunkBytes, &snap_limiter_, [&](std::string_view bytes) {
        raftsvc::SnapshotChunk chunk;
        chunk.set_data(bytes.data(), bytes.size());
        return writer->Write(chunk);
      });
    }
    ok = ok && sent.is_ok() && writer->WritesDone();
    if (!ok) {
      ctx.TryCancel();
    }
    grpc::Status s = writer->Finish();
    if (!s.ok() || !ok) {
      spdlog::warn("region {}: snapshot to store {} failed: {}", message.region_id(), message.to_peer().store_id(),
                   sent.is_ok() ? s.error_message() : sent.message());
    }
    done(ok && s.ok());
  };
  snapshot_senders_.push_back({std::thread([body = std::move(body), finished]() mutable {
                                 body();
                                 finished->store(true);
                               }),
                               finished});
}

void GrpcRaftTransport::run(Connection& c) {
  // After a failure, wait before trying the store again: 100 ms, doubling up to 2 s while it
  // stays unreachable (a dead store must not cost a new channel every few heartbeats).
  constexpr std::chrono::milliseconds kFirstBackoff{100};
  constexpr std::chrono::milliseconds kMaxBackoff{2000};
  std::chrono::milliseconds backoff = kFirstBackoff;
  auto back_off = [&] {
    std::unique_lock lock(c.mu);
    if (c.backoff_reset) {
      c.backoff_reset = false;
      backoff = kFirstBackoff;  // the stream carried messages before it broke
    }
    c.cv.wait_for(lock, backoff, [&] { return c.stopping; });
    dropped_.fetch_add(c.queue.size());
    c.queue.clear();  // stale by the time the store is back; Raft will resend
    backoff = std::min(backoff * 2, kMaxBackoff);
  };
  for (;;) {
    {
      std::unique_lock lock(c.mu);
      c.cv.wait(lock, [&] { return c.stopping || !c.queue.empty(); });
      if (c.stopping) {
        break;
      }
    }
    auto addr = resolver_(c.store_id);
    if (!addr.is_ok()) {
      back_off();
      continue;
    }
    auto stub = raftsvc::Raft::NewStub(make_channel(*addr, creds_, kMaxGrpcMessageBytes * 4));
    auto stream = std::make_unique<Stream>(*this, c, *stub);
    bool start = false;
    {
      std::lock_guard lock(c.mu);
      c.stream = stream.get();
      c.open = true;
      c.broken = false;
      c.stream_done = false;
      start = take_batch_locked(c);
    }
    if (start) {
      start_write(c);
    }
    bool failed = false;
    {
      std::unique_lock lock(c.mu);
      c.cv.wait(lock, [&] { return c.stopping || c.broken; });
      failed = c.broken;
      c.open = false;  // no new write starts; wait for those already decided to start
      c.cv.wait(lock, [&] { return c.starting == 0; });
    }
    stream->cancel();  // ends a write stuck on an unresponsive store
    stream->release();
    {
      std::unique_lock lock(c.mu);
      c.cv.wait(lock, [&] { return c.stream_done; });
      c.stream = nullptr;
      c.writing = false;
    }
    stream.reset();
    if (failed) {
      back_off();
    }
  }
}

grpc::Status RaftService::SendSnapshot(grpc::ServerContext*, grpc::ServerReader<raftsvc::SnapshotChunk>* reader,
                                       raftsvc::Done*) {
  raftsvc::SnapshotChunk chunk;
  if (!reader->Read(&chunk)) {
    return {grpc::StatusCode::INVALID_ARGUMENT, "empty snapshot stream"};
  }
  raftsvc::RaftMessage message = std::move(*chunk.mutable_message());
  auto refuse = [&](grpc::StatusCode code, std::string why) {
    store_.dropped_messages().drop(message.region_id(), {"bad_snapshot", why});
    return grpc::Status(code, std::move(why));
  };
  if (grpc::Status s = check_cluster(message.region_id(), chunk.cluster_id()); !s.ok()) {
    return s;
  }
  if (message.message().type() != raftpb::MSG_SNAP || !message.message().has_snapshot()) {
    return refuse(grpc::StatusCode::INVALID_ARGUMENT, "the first snapshot chunk must carry a MsgSnap");
  }
  if (!message.has_to_peer() || message.to_peer().store_id() != store_.store_id()) {
    return refuse(grpc::StatusCode::INVALID_ARGUMENT, "the snapshot is not addressed to this store");
  }
  auto receiver = store_.receive_snapshot(message, chunk.total_size());
  if (!receiver.is_ok()) {
    auto code = receiver.status().code() == ServerCode::kBusy ? grpc::StatusCode::RESOURCE_EXHAUSTED
                                                              : grpc::StatusCode::INVALID_ARGUMENT;
    return refuse(code, receiver.status().message());
  }
  std::uint64_t bytes = 0;
  std::size_t chunks = 1;
  Status s = (*receiver)->write(chunk.data());
  bytes += chunk.data().size();
  while (s.is_ok() && !shutting_down_ && reader->Read(&chunk)) {
    ++chunks;
    if (chunk.has_message() || chunk.total_size() != 0 || chunk.cluster_id() != 0) {
      return refuse(grpc::StatusCode::INVALID_ARGUMENT, "only the first snapshot chunk carries the message and size");
    }
    s = (*receiver)->write(chunk.data());
    bytes += chunk.data().size();
  }
  if (!s.is_ok()) {
    return refuse(s.code() == ServerCode::kIOError ? grpc::StatusCode::UNAVAILABLE : grpc::StatusCode::INVALID_ARGUMENT,
                  s.message());
  }
  auto delivered = (*receiver)->finish();
  if (!delivered.is_ok()) {
    return refuse(delivered.status().code() == StatusCode::kUnavailable ? grpc::StatusCode::DATA_LOSS
                                                                        : grpc::StatusCode::INVALID_ARGUMENT,
                  delivered.status().message());
  }
  spdlog::info("region {}: received a snapshot of {} bytes in {} chunks", message.region_id(), bytes, chunks);
  store_.deliver(std::move(delivered).value());
  return grpc::Status::OK;
}

grpc::Status RaftService::check_cluster(std::uint64_t region_id, std::uint64_t sender_cluster) {
  std::uint64_t mine = cluster_id_.load();
  if (mine != 0 && sender_cluster == mine) {
    return grpc::Status::OK;
  }
  std::string why =
      mine == 0 ? "this store has not joined its cluster yet"
                : fmt::format("Raft traffic of cluster {} refused by a store of cluster {}", sender_cluster, mine);
  store_.dropped_messages().drop(region_id, {"cluster_mismatch", why});
  return {grpc::StatusCode::FAILED_PRECONDITION, why};
}

// One incoming Raft.Send stream: each batch read is checked and handed to the store
// on the reading thread, then the next read starts. Deletes itself when done.
class RaftService::Receiver final : public grpc::ServerReadReactor<raftsvc::RaftBatch> {
 public:
  explicit Receiver(RaftService& service) : service_(service) { StartRead(&batch_); }

  void OnReadDone(bool ok) override {
    if (!ok || service_.shutting_down_) {
      Finish(grpc::Status::OK);  // the sender closed or broke the stream, or this store is stopping
      return;
    }
    if (grpc::Status s = service_.check_cluster(0, batch_.cluster_id()); !s.ok()) {
      Finish(s);  // the sender reconnects, and is refused again until it is configured right
      return;
    }
    for (auto& m : *batch_.mutable_messages()) {
      service_.store_.deliver(std::move(m));
    }
    batch_.Clear();
    StartRead(&batch_);
  }

  void OnDone() override { delete this; }  // NOLINT(cppcoreguidelines-owning-memory): the reactor owns itself

 private:
  RaftService& service_;
  raftsvc::RaftBatch batch_;
};

grpc::ServerReadReactor<raftsvc::RaftBatch>* RaftService::Send(grpc::CallbackServerContext*, raftsvc::Done*) {
  return new Receiver(*this);  // NOLINT(cppcoreguidelines-owning-memory): deleted in OnDone
}

}  // namespace rdb
