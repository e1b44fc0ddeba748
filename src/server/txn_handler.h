// TxnHandler: the store's side of the transactional RPCs (kvrpc Kv* methods), which
// KvService forwards here.
//
// Reads (KvGet, KvBatchGet, KvScan, KvScanLock) wait for a linearizable read point
// (ReadIndex), then read the engine through MvccReader: a lock at or before the read's
// timestamp is answered as KeyError.locked for the client to resolve. Writes (KvPrewrite,
// KvCommit, KvBatchRollback, KvCheckTxnStatus, KvResolveLock, KvTxnHeartBeat) become one
// TXN KvCommand each, replicated through the region's Raft log; the region's state
// machine (TxnApplier) decides conflicts when it applies them, and the answer is what it
// decided. Input is validated before anything is proposed (INVALID_ARGUMENT naming it);
// misrouted requests get a RegionError. A write whose outcome the store cannot know
// (deadline, shutdown) is answered DEADLINE_EXCEEDED / UNAVAILABLE: the caller treats it
// as undetermined.
// Thread safety: handlers run concurrently on gRPC threads; the store and engine are
// thread-safe. Borrows the engine, store and metrics.
#pragma once

#include <grpcpp/grpcpp.h>

#include <array>
#include <atomic>
#include <chrono>

#include "common/metrics.h"
#include "kvrpc.pb.h"
#include "server/raft_store.h"
#include "storage/storage_engine.h"

namespace rdb {

class TxnHandler {
 public:
  using Deadline = std::chrono::system_clock::time_point;
  TxnHandler(StorageEngine& engine, RaftStore& store, MetricsRegistry& metrics);
  // Test-only: reads skip the lock check, breaking snapshot isolation (the chaos bank must notice).
  void set_reads_ignore_locks(bool on) { reads_ignore_locks_ = on; }

  grpc::Status get(const kvrpc::KvGetRequest& req, kvrpc::KvGetResponse* resp, Deadline deadline);
  grpc::Status batch_get(const kvrpc::KvBatchGetRequest& req, kvrpc::KvBatchGetResponse* resp, Deadline deadline);
  grpc::Status scan(const kvrpc::KvScanRequest& req, kvrpc::KvScanResponse* resp, Deadline deadline);
  grpc::Status scan_lock(const kvrpc::KvScanLockRequest& req, kvrpc::KvScanLockResponse* resp, Deadline deadline);
  grpc::Status prewrite(const kvrpc::KvPrewriteRequest& req, kvrpc::KvPrewriteResponse* resp, Deadline deadline);
  grpc::Status commit(const kvrpc::KvCommitRequest& req, kvrpc::KvCommitResponse* resp, Deadline deadline);
  grpc::Status batch_rollback(const kvrpc::KvBatchRollbackRequest& req, kvrpc::KvBatchRollbackResponse* resp,
                              Deadline deadline);
  grpc::Status check_txn_status(const kvrpc::KvCheckTxnStatusRequest& req, kvrpc::KvCheckTxnStatusResponse* resp,
                                Deadline deadline);
  grpc::Status resolve_lock(const kvrpc::KvResolveLockRequest& req, kvrpc::KvResolveLockResponse* resp,
                            Deadline deadline);
  grpc::Status heart_beat(const kvrpc::KvTxnHeartBeatRequest& req, kvrpc::KvTxnHeartBeatResponse* resp,
                          Deadline deadline);

 private:
  enum Method {
    kGet,
    kBatchGet,
    kScan,
    kScanLock,
    kPrewrite,
    kCommit,
    kRollback,
    kCheck,
    kResolve,
    kHeartBeat,
    kCount
  };
  struct RpcMetrics {
    Counter* requests = nullptr;
    Counter* errors = nullptr;
    Histogram* latency = nullptr;
  };

  // Waits for a read point of the request's region, then runs `read`.
  template <typename Req, typename Resp, typename Read>
  grpc::Status read(Method m, const Req& req, Resp* resp, std::vector<std::string> keys, const Status& input,
                    Deadline deadline, Read&& read, const std::shared_ptr<metapb::Region>& region = nullptr);
  // Replicates `cmd` and hands the applied result to `answer`.
  template <typename Req, typename Resp, typename Answer>
  grpc::Status write(Method m, const Req& req, Resp* resp, txnpb::TxnCommand cmd, const Status& input,
                     Deadline deadline, Answer&& answer);

  StorageEngine& engine_;
  RaftStore& store_;
  std::array<RpcMetrics, kCount> metrics_{};
  std::atomic<bool> reads_ignore_locks_{false};
};

}  // namespace rdb
