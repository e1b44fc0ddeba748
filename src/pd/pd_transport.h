// The PD group's Raft traffic over gRPC, on the members' own ports (service
// pdpb.PdPeer): GrpcPdTransport sends, PdPeerService receives.
//
// Sending: one queue and one thread per member; a batch goes as one unary call.
// A queue holds at most kMaxQueued messages (the oldest are dropped: Raft resends
// what matters), so a member that is down costs bounded memory.
// Receiving: a batch of another cluster is refused; the group drops messages not
// addressed to it or from unknown members, and the Raft core validates the rest.
// Thread safety: both may be used from any thread.
#pragma once

#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "pd/pd_group.h"
#include "pdpb.grpc.pb.h"

namespace rdb {

class GrpcPdTransport final : public PdTransport {
 public:
  static constexpr std::size_t kMaxQueued = 4096;

  GrpcPdTransport(std::uint64_t cluster_id, std::shared_ptr<grpc::ChannelCredentials> creds)
      : cluster_id_(cluster_id), creds_(std::move(creds)) {}
  ~GrpcPdTransport() override;

  void send(const pdpb::Member& to, std::vector<raftpb::Message> messages) override;
  // Messages dropped so far because a queue was full.
  std::uint64_t dropped() const;

 private:
  struct Peer {
    std::string address;
    std::unique_ptr<pdpb::PdPeer::Stub> stub;
    std::deque<raftpb::Message> queue;
    bool stop = false;
    std::condition_variable cv;
    std::thread thread;
  };
  void run(Peer& peer);

  const std::uint64_t cluster_id_;
  const std::shared_ptr<grpc::ChannelCredentials> creds_;
  mutable std::mutex mu_;
  std::map<std::uint64_t, std::unique_ptr<Peer>> peers_;  // by member id
  std::vector<std::unique_ptr<Peer>> retired_;            // stopped senders of re-added members
  std::uint64_t dropped_ = 0;
};

// A joining member's first step: the cluster id of the running group, asked of the
// members in `members` other than `self` in turn until one answers or `timeout` passes.
Result<std::uint64_t> ask_cluster_id(const std::vector<pdpb::Member>& members, const std::string& self,
                                     const std::shared_ptr<grpc::ChannelCredentials>& creds,
                                     std::chrono::milliseconds timeout);

class PdPeerService final : public pdpb::PdPeer::Service {
 public:
  PdPeerService(PdGroup& group, std::uint64_t cluster_id) : group_(group), cluster_id_(cluster_id) {}
  grpc::Status Raft(grpc::ServerContext*, const pdpb::PdRaftBatch* batch, pdpb::PdRaftDone*) override;

 private:
  PdGroup& group_;
  const std::uint64_t cluster_id_;
};

}  // namespace rdb
