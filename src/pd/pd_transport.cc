#include "pd/pd_transport.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/grpc_setup.h"
#include "common/limits.h"

namespace rdb {

GrpcPdTransport::~GrpcPdTransport() {
  std::map<std::uint64_t, std::unique_ptr<Peer>> peers;
  std::vector<std::unique_ptr<Peer>> retired;
  {
    std::lock_guard lock(mu_);
    for (auto& [id, p] : peers_) {
      p->stop = true;
      p->cv.notify_all();
    }
    peers.swap(peers_);
    retired.swap(retired_);
  }
  for (auto& [id, p] : peers) {
    p->thread.join();
  }
  for (auto& p : retired) {
    p->thread.join();
  }
}

std::uint64_t GrpcPdTransport::dropped() const {
  std::lock_guard lock(mu_);
  return dropped_;
}

void GrpcPdTransport::send(const pdpb::Member& to, std::vector<raftpb::Message> messages) {
  if (to.address().empty()) {
    return;
  }
  std::lock_guard lock(mu_);
  auto& slot = peers_[to.member_id()];
  if (slot && slot->address != to.address()) {
    // The member was re-added elsewhere: its old sender stops; a new one takes over.
    slot->stop = true;
    slot->cv.notify_all();
    retired_.emplace_back(slot.release());
  }
  if (!slot) {
    slot = std::make_unique<Peer>();
    slot->address = to.address();
    // Short reconnect backoff (make_channel): a restarted member must hear the leader at
    // once, or the group may lack a quorum while a channel waits out gRPC's default 2 minutes.
    slot->stub = pdpb::PdPeer::NewStub(make_channel(to.address(), creds_, kMaxGrpcMessageBytes));
    Peer* p = slot.get();
    slot->thread = std::thread([this, p] { run(*p); });
  }
  for (auto& m : messages) {
    if (slot->queue.size() >= kMaxQueued) {
      slot->queue.pop_front();
      ++dropped_;
    }
    slot->queue.push_back(std::move(m));
  }
  slot->cv.notify_one();
}

void GrpcPdTransport::run(Peer& peer) {
  constexpr std::size_t kBatch = 256;
  while (true) {
    pdpb::PdRaftBatch batch;
    {
      std::unique_lock lock(mu_);
      peer.cv.wait(lock, [&] { return peer.stop || !peer.queue.empty(); });
      if (peer.stop) {
        break;
      }
      batch.set_cluster_id(cluster_id_);
      while (!peer.queue.empty() && static_cast<std::size_t>(batch.messages_size()) < kBatch) {
        *batch.add_messages() = std::move(peer.queue.front());
        peer.queue.pop_front();
      }
    }
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    pdpb::PdRaftDone done;
    grpc::Status s = peer.stub->Raft(&ctx, batch, &done);
    if (!s.ok()) {
      spdlog::debug("PD group: {} messages to {} lost: {}", batch.messages_size(), peer.address, s.error_message());
    }
  }
}

Result<std::uint64_t> ask_cluster_id(const std::vector<pdpb::Member>& members, const std::string& self,
                                     const std::shared_ptr<grpc::ChannelCredentials>& creds,
                                     std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::system_clock::now() + timeout;
  std::string last_error = "no other member is named";
  while (std::chrono::system_clock::now() < deadline) {
    for (const auto& m : members) {
      if (m.name() == self) {
        continue;
      }
      auto stub = pdpb::PD::NewStub(make_channel(m.address(), creds, kMaxGrpcMessageBytes));
      grpc::ClientContext ctx;
      ctx.set_deadline(std::min(deadline, std::chrono::system_clock::now() + std::chrono::seconds(2)));
      pdpb::GetMembersRequest req;
      pdpb::GetMembersResponse resp;
      grpc::Status s = stub->GetMembers(&ctx, req, &resp);
      if (s.ok() && resp.header().cluster_id() != 0) {
        return resp.header().cluster_id();
      }
      last_error = fmt::format("{} ({}): {}", m.name(), m.address(), s.ok() ? "no cluster id" : s.error_message());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return Status::unavailable(fmt::format("no member of the PD group answered; last: {}", last_error));
}

grpc::Status PdPeerService::Raft(grpc::ServerContext*, const pdpb::PdRaftBatch* batch, pdpb::PdRaftDone*) {
  if (batch->cluster_id() != cluster_id_) {
    return {grpc::StatusCode::FAILED_PRECONDITION,
            fmt::format("PD group traffic for cluster {} reached a member of cluster {}", batch->cluster_id(),
                        cluster_id_)};
  }
  std::vector<raftpb::Message> messages(batch->messages().begin(), batch->messages().end());
  group_.receive(std::move(messages));
  return grpc::Status::OK;
}

}  // namespace rdb
