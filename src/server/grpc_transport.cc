#include "server/grpc_transport.h"

#include <spdlog/spdlog.h>

#include "common/limits.h"

namespace rdb {

GrpcRaftTransport::GrpcRaftTransport(StoreResolver resolver, std::size_t max_queue)
    : resolver_(std::move(resolver)), max_queue_(max_queue) {}

GrpcRaftTransport::~GrpcRaftTransport() {
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
    c->cv.notify_one();
  }
}

void GrpcRaftTransport::run(Connection& c) {
  std::unique_ptr<raftsvc::Raft::Stub> stub;
  std::unique_ptr<grpc::ClientContext> ctx;
  std::unique_ptr<grpc::ClientWriter<raftsvc::RaftBatch>> writer;
  raftsvc::Done done;
  auto reset = [&] {
    if (writer) {
      ctx->TryCancel();
      (void)writer->Finish();
    }
    writer.reset();
    ctx.reset();
    stub.reset();
  };
  for (;;) {
    raftsvc::RaftBatch batch;
    {
      std::unique_lock lock(c.mu);
      c.cv.wait(lock, [&] { return c.stopping || !c.queue.empty(); });
      if (c.stopping) {
        break;
      }
      while (!c.queue.empty() && batch.messages_size() < 256) {
        *batch.add_messages() = std::move(c.queue.front());
        c.queue.pop_front();
      }
    }
    if (!writer) {
      auto addr = resolver_(c.store_id);
      if (!addr.is_ok()) {
        dropped_.fetch_add(static_cast<std::uint64_t>(batch.messages_size()));
        std::unique_lock lock(c.mu);
        c.cv.wait_for(lock, std::chrono::milliseconds(200), [&] { return c.stopping; });  // resolve back-off
        continue;
      }
      grpc::ChannelArguments args;
      args.SetMaxSendMessageSize(kMaxGrpcMessageBytes * 4);
      args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
      args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
      args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
      stub = raftsvc::Raft::NewStub(grpc::CreateCustomChannel(*addr, grpc::InsecureChannelCredentials(), args));
      ctx = std::make_unique<grpc::ClientContext>();
      writer = stub->Send(ctx.get(), &done);
    }
    if (!writer->Write(batch)) {
      dropped_.fetch_add(static_cast<std::uint64_t>(batch.messages_size()));
      reset();
      std::unique_lock lock(c.mu);
      c.queue.clear();  // stale by the time the store is back; Raft will resend
      c.cv.wait_for(lock, std::chrono::milliseconds(100), [&] { return c.stopping; });  // reconnect back-off
    }
  }
  reset();
}

grpc::Status RaftService::Send(grpc::ServerContext*, grpc::ServerReader<raftsvc::RaftBatch>* reader, raftsvc::Done*) {
  raftsvc::RaftBatch batch;
  while (!shutting_down_ && reader->Read(&batch)) {
    for (auto& m : *batch.mutable_messages()) {
      store_.deliver(std::move(m));
    }
  }
  return grpc::Status::OK;
}

}  // namespace rdb
