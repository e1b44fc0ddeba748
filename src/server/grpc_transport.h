// Raft traffic between stores over gRPC.
//
// GrpcRaftTransport (client side) keeps one connection per destination store:
// a bounded queue and a sender thread that streams queued messages in batches
// over the Raft.Send client stream. A broken stream is dropped and re-opened
// after a back-off (100 ms, doubling to 2 s while it stays unreachable), re-resolving the store's address (a restarted
// store may listen elsewhere). Messages are dropped, never blocked on, when a queue is full or a store is unreachable:
// Raft retransmits what matters.
//
// Snapshots travel on streams of their own (one thread each): the table files
// SnapManager generated, read in 1 MiB chunks, paced store-wide to
// `snap_bytes_per_sec` (0 = unlimited) so that re-replicating a region does not
// take the disk and network from client traffic.
//
// RaftService (server side) hands every received message to the RaftStore; an
// arriving snapshot is written to files as it comes and checked in full before
// the store sees its message.
// Thread safety: send() may be called from any thread; the destructor stops
// and joins every sender thread.
#pragma once

#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "common/rate_limiter.h"
#include "raftsvc.grpc.pb.h"
#include "server/raft_store.h"

namespace rdb {

// Store id -> "host:port" of its gRPC service.
using StoreResolver = std::function<Result<std::string>(std::uint64_t store_id)>;

class GrpcRaftTransport final : public RaftTransport {
 public:
  // `creds`: how to reach other stores (TLS or not; see common/grpc_setup.h).
  explicit GrpcRaftTransport(StoreResolver resolver, std::size_t max_queue = 8192,
                             std::shared_ptr<grpc::ChannelCredentials> creds = grpc::InsecureChannelCredentials(),
                             std::uint64_t snap_bytes_per_sec = 0);
  ~GrpcRaftTransport() override;

  void send(std::vector<raftsvc::RaftMessage> messages) override;
  // Streams the snapshot's files in chunks on a thread of its own.
  void send_snapshot(raftsvc::RaftMessage message, std::vector<std::string> files,
                     std::function<void(bool)> done) override;
  std::uint64_t dropped() const { return dropped_.load(); }
  // Stamped on every batch and snapshot; set once the store has joined its cluster.
  void set_cluster_id(std::uint64_t id) { cluster_id_ = id; }
  static constexpr std::size_t kSnapshotChunkBytes = 1 << 20;
  // A RaftBatch holds messages up to this many bytes (one larger message travels alone).
  static constexpr std::size_t kMaxRaftBatchBytes = std::size_t{8} << 20;

 private:
  struct Connection {
    std::uint64_t store_id = 0;
    std::mutex mu;
    std::condition_variable cv;
    std::deque<raftsvc::RaftMessage> queue;
    bool stopping = false;
    std::thread thread;
  };
  void run(Connection& c);

  StoreResolver resolver_;
  std::size_t max_queue_;
  std::shared_ptr<grpc::ChannelCredentials> creds_;
  std::mutex mu_;
  std::map<std::uint64_t, std::unique_ptr<Connection>> connections_;
  struct SnapshotSender {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> finished;
  };
  std::vector<SnapshotSender> snapshot_senders_;
  RateLimiter snap_limiter_;
  bool stopping_ = false;
  std::atomic<std::uint64_t> dropped_{0};
  std::atomic<std::uint64_t> cluster_id_{0};
};

// Validates what it receives before the store sees it: a snapshot stream is refused
// (counted as a dropped message) when it does not start with a MsgSnap whose
// descriptor matches the message, carries more or fewer bytes than it announced,
// fails a file's CRC32 or holds keys outside its region (INVALID_ARGUMENT,
// DATA_LOSS), or when the disk has no room or too many arrive at once
// (RESOURCE_EXHAUSTED).
class RaftService final : public raftsvc::Raft::Service {
 public:
  explicit RaftService(RaftStore& store) : store_(store) {}
  grpc::Status Send(grpc::ServerContext* ctx, grpc::ServerReader<raftsvc::RaftBatch>* reader,
                    raftsvc::Done* done) override;
  grpc::Status SendSnapshot(grpc::ServerContext* ctx, grpc::ServerReader<raftsvc::SnapshotChunk>* reader,
                            raftsvc::Done* done) override;
  // Makes open streams return at their next message, so a shutdown does not wait for peers.
  void shutdown() { shutting_down_ = true; }
  // Once joined: streams from any other cluster are refused. Before, every stream is.
  void set_cluster_id(std::uint64_t id) { cluster_id_ = id; }

 private:
  grpc::Status check_cluster(std::uint64_t region_id, std::uint64_t sender_cluster);

  RaftStore& store_;
  std::atomic<bool> shutting_down_{false};
  std::atomic<std::uint64_t> cluster_id_{0};
};

}  // namespace rdb
