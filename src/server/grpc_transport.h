// Raft traffic between stores over gRPC.
//
// GrpcRaftTransport (client side) keeps one connection per destination store:
// a bounded queue and a Raft.Send client stream on gRPC's callback API. The
// thread that sends (the Raft loop) starts the stream's next write itself when
// none is in flight, so a lone message leaves without waking another thread;
// what queues meanwhile goes out, batched, from the previous write's completion.
// Each connection's own thread only resolves, opens and re-opens the stream,
// since resolving asks PD and may block. A broken stream is dropped and re-opened
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
// the store sees its message. Raft.Send runs on gRPC's callback API: a batch is
// handed to the store on the gRPC thread that read it, so no thread of ours
// sits in Read per incoming stream, and no second wake-up hands the batch over.
// Thread safety: send() may be called from any thread; the destructor cancels
// every stream, waits until gRPC is done with it, and joins every thread.
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
  class Stream;
  struct Connection {
    std::uint64_t store_id = 0;
    std::mutex mu;
    std::condition_variable cv;
    std::deque<raftsvc::RaftMessage> queue;
    bool stopping = false;
    // The open stream (owned by run()); writes start only while `open`.
    Stream* stream = nullptr;
    bool open = false;
    bool writing = false;        // a write is in flight (or about to start)
    int starting = 0;            // writes decided under `mu` whose StartWrite has not returned yet
    bool broken = false;         // the stream failed: run() tears it down
    bool stream_done = false;    // gRPC called OnDone: the stream may be destroyed
    bool backoff_reset = false;  // a write succeeded since the last back-off
    std::thread thread;
  };
  void run(Connection& c);
  // Under c.mu: moves queued messages into the stream's next batch when it is open and idle.
  // True when the caller must call start_write(c) after releasing the lock.
  bool take_batch_locked(Connection& c);
  void start_write(Connection& c);
  void on_write_done(Connection& c, bool ok);

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
class RaftService final : public raftsvc::Raft::WithCallbackMethod_Send<raftsvc::Raft::Service> {
 public:
  explicit RaftService(RaftStore& store) : store_(store) {}
  grpc::ServerReadReactor<raftsvc::RaftBatch>* Send(grpc::CallbackServerContext* ctx, raftsvc::Done* done) override;
  grpc::Status SendSnapshot(grpc::ServerContext* ctx, grpc::ServerReader<raftsvc::SnapshotChunk>* reader,
                            raftsvc::Done* done) override;
  // Makes open streams return at their next message, so a shutdown does not wait for peers.
  void shutdown() { shutting_down_ = true; }
  // Once joined: streams from any other cluster are refused. Before, every stream is.
  void set_cluster_id(std::uint64_t id) { cluster_id_ = id; }

 private:
  class Receiver;
  grpc::Status check_cluster(std::uint64_t region_id, std::uint64_t sender_cluster);

  RaftStore& store_;
  std::atomic<bool> shutting_down_{false};
  std::atomic<std::uint64_t> cluster_id_{0};
};

}  // namespace rdb
