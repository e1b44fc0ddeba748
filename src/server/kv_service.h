// KvService: the gRPC face of a store (kvrpc.Kv).
//
// Writes become KvCommands replicated through the region's Raft log
// (RaftStore::propose) and are answered once applied; reads first obtain a
// linearizable read point (RaftStore::read_index, i.e. ReadIndex) and then read
// the local engine. A misrouted request gets a RegionError (NotLeader with the
// leader, RegionNotFound, EpochNotMatch, KeyNotInRegion, ServerIsBusy) and
// changes nothing. Bad input is answered with INVALID_ARGUMENT before anything
// is proposed. A write that does not finish before the call's deadline is
// answered DEADLINE_EXCEEDED: its outcome is unknown to this store too.
// BatchCommands carries many point requests (RawGet, RawPut, RawDelete, Get,
// CompareAndSwap) over one stream: each runs exactly as its unary RPC would, and
// answers are packed into response messages as they complete (see kvrpc.proto).
// The transactional RPCs (Kv*) are forwarded to TxnHandler.
// Thread safety: gRPC calls handlers concurrently; RaftStore and the engine are
// thread-safe. Borrows (does not own) the engine, store and metrics.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "kvrpc.grpc.pb.h"
#include "server/raft_store.h"
#include "server/txn_handler.h"
#include "storage/storage_engine.h"

namespace rdb {

// Writes use gRPC's callback API: a write waiting for Raft holds no thread and
// is answered from the Raft thread once applied (with 256 writes in flight, a
// blocked handler thread per write cost a wake-up and a context switch each).
// Point reads (RawGet, Get) too: the engine read runs on the Raft thread once the
// read point is reached (a few µs). Scans and batch reads stay synchronous: their
// engine work is unbounded and runs on the handler thread.
using KvServiceBase = kvrpc::Kv::WithCallbackMethod_BatchCommands<
    kvrpc::Kv::WithCallbackMethod_RawGet<kvrpc::Kv::WithCallbackMethod_Get<kvrpc::Kv::WithCallbackMethod_RawPut<
        kvrpc::Kv::WithCallbackMethod_RawDelete<kvrpc::Kv::WithCallbackMethod_RawBatchPut<
            kvrpc::Kv::WithCallbackMethod_RawBatchDelete<kvrpc::Kv::WithCallbackMethod_RawDeleteRange<
                kvrpc::Kv::WithCallbackMethod_CompareAndSwap<kvrpc::Kv::Service>>>>>>>>>;

class KvService final : public KvServiceBase {
 public:
  KvService(StorageEngine& engine, RaftStore& store, MetricsRegistry& metrics, std::uint64_t cluster_id);
  static constexpr std::size_t kDefaultMaxStreamRequests = 4096;
  // Before serving: the backpressure bound of each BatchCommands stream.
  void set_max_stream_requests(std::size_t n) { max_stream_requests_ = n; }

  grpc::Status StoreInfo(grpc::ServerContext*, const kvrpc::StoreInfoRequest*, kvrpc::StoreInfoResponse*) override;
  grpc::ServerUnaryReactor* RawGet(grpc::CallbackServerContext*, const kvrpc::RawGetRequest*,
                                   kvrpc::RawGetResponse*) override;
  grpc::ServerUnaryReactor* RawPut(grpc::CallbackServerContext*, const kvrpc::RawPutRequest*,
                                   kvrpc::RawPutResponse*) override;
  grpc::ServerUnaryReactor* RawDelete(grpc::CallbackServerContext*, const kvrpc::RawDeleteRequest*,
                                      kvrpc::RawDeleteResponse*) override;
  grpc::Status RawScan(grpc::ServerContext*, const kvrpc::RawScanRequest*, kvrpc::RawScanResponse*) override;
  grpc::Status RawBatchGet(grpc::ServerContext*, const kvrpc::RawBatchGetRequest*,
                           kvrpc::RawBatchGetResponse*) override;
  grpc::ServerUnaryReactor* RawBatchPut(grpc::CallbackServerContext*, const kvrpc::RawBatchPutRequest*,
                                        kvrpc::RawBatchPutResponse*) override;
  grpc::ServerUnaryReactor* RawBatchDelete(grpc::CallbackServerContext*, const kvrpc::RawBatchDeleteRequest*,
                                           kvrpc::RawBatchDeleteResponse*) override;
  grpc::ServerUnaryReactor* RawDeleteRange(grpc::CallbackServerContext*, const kvrpc::RawDeleteRangeRequest*,
                                           kvrpc::RawDeleteRangeResponse*) override;
  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext*, const kvrpc::GetRequest*, kvrpc::GetResponse*) override;
  grpc::ServerUnaryReactor* CompareAndSwap(grpc::CallbackServerContext*, const kvrpc::CompareAndSwapRequest*,
                                           kvrpc::CompareAndSwapResponse*) override;
  grpc::ServerBidiReactor<kvrpc::BatchCommandsRequest, kvrpc::BatchCommandsResponse>* BatchCommands(
      grpc::CallbackServerContext*) override;

  void set_cluster_id(std::uint64_t id) { cluster_id_ = id; }
  // Test-only (--test-txn-reads-ignore-locks): transactional reads skip the lock check.
  void set_test_txn_reads_ignore_locks(bool on) { txn_.set_reads_ignore_locks(on); }
  // Fresh timestamps (PD's TSO) for one-phase commits; without it transactions use 2PC only.
  ConcurrencyManager& txn_concurrency() { return txn_.concurrency(); }
  void set_timestamp_source(TxnHandler::TimestampSource source) { txn_.set_timestamp_source(std::move(source)); }
  // Where split regions get their ids: `count` new unique ids, the first returned.
  // Without one (a store running without PD) SplitRegion is refused.
  using IdSource = std::function<Result<std::uint64_t>(std::uint32_t count)>;
  void set_id_source(IdSource ids) { ids_ = std::move(ids); }
  grpc::Status SplitRegion(grpc::ServerContext*, const kvrpc::SplitRegionRequest*,
                           kvrpc::SplitRegionResponse*) override;

  // ---- transactions (TxnHandler)
  grpc::Status KvGet(grpc::ServerContext* c, const kvrpc::KvGetRequest* q, kvrpc::KvGetResponse* r) override {
    return txn_.get(*q, r, deadline_of(c));
  }
  grpc::Status KvBatchGet(grpc::ServerContext* c, const kvrpc::KvBatchGetRequest* q,
                          kvrpc::KvBatchGetResponse* r) override {
    return txn_.batch_get(*q, r, deadline_of(c));
  }
  grpc::Status KvScan(grpc::ServerContext* c, const kvrpc::KvScanRequest* q, kvrpc::KvScanResponse* r) override {
    return txn_.scan(*q, r, deadline_of(c));
  }
  grpc::Status KvScanLock(grpc::ServerContext* c, const kvrpc::KvScanLockRequest* q,
                          kvrpc::KvScanLockResponse* r) override {
    return txn_.scan_lock(*q, r, deadline_of(c));
  }
  grpc::Status KvScanChanges(grpc::ServerContext* c, const kvrpc::KvScanChangesRequest* q,
                             kvrpc::KvScanChangesResponse* r) override {
    return txn_.scan_changes(*q, r, deadline_of(c));
  }
  grpc::Status KvChangeFeedRegister(grpc::ServerContext* c, const kvrpc::KvChangeFeedRegisterRequest* q,
                                    kvrpc::KvChangeFeedRegisterResponse* r) override {
    return txn_.register_feed(*q, r, deadline_of(c));
  }
  grpc::Status KvChangeFeedPoll(grpc::ServerContext* c, const kvrpc::KvChangeFeedPollRequest* q,
                                kvrpc::KvChangeFeedPollResponse* r) override {
    return txn_.poll_feed(*q, r, deadline_of(c));
  }
  grpc::Status KvChangeFeedCancel(grpc::ServerContext*, const kvrpc::KvChangeFeedCancelRequest* q,
                                  kvrpc::KvChangeFeedCancelResponse* r) override {
    return txn_.cancel_feed(*q, r);
  }
  grpc::Status KvPrewrite(grpc::ServerContext* c, const kvrpc::KvPrewriteRequest* q,
                          kvrpc::KvPrewriteResponse* r) override {
    return txn_.prewrite(*q, r, deadline_of(c));
  }
  grpc::Status KvCommit(grpc::ServerContext* c, const kvrpc::KvCommitRequest* q, kvrpc::KvCommitResponse* r) override {
    return txn_.commit(*q, r, deadline_of(c));
  }
  grpc::Status KvBatchRollback(grpc::ServerContext* c, const kvrpc::KvBatchRollbackRequest* q,
                               kvrpc::KvBatchRollbackResponse* r) override {
    return txn_.batch_rollback(*q, r, deadline_of(c));
  }
  grpc::Status KvCheckTxnStatus(grpc::ServerContext* c, const kvrpc::KvCheckTxnStatusRequest* q,
                                kvrpc::KvCheckTxnStatusResponse* r) override {
    return txn_.check_txn_status(*q, r, deadline_of(c));
  }
  grpc::Status KvResolveLock(grpc::ServerContext* c, const kvrpc::KvResolveLockRequest* q,
                             kvrpc::KvResolveLockResponse* r) override {
    return txn_.resolve_lock(*q, r, deadline_of(c));
  }
  grpc::Status KvTxnHeartBeat(grpc::ServerContext* c, const kvrpc::KvTxnHeartBeatRequest* q,
                              kvrpc::KvTxnHeartBeatResponse* r) override {
    return txn_.heart_beat(*q, r, deadline_of(c));
  }

 private:
  enum Method {
    kRawGet,
    kRawPut,
    kRawDelete,
    kRawScan,
    kRawBatchGet,
    kRawBatchPut,
    kRawBatchDelete,
    kRawDeleteRange,
    kGet,
    kCompareAndSwap,
    kSplitRegion,
    kMethodCount
  };
  struct RpcMetrics {
    Counter* requests;
    Counter* errors;
    Histogram* latency;
  };

  class BatchStream;
  // Finishes one request (a unary call or one request of a BatchCommands stream);
  // called exactly once, possibly on the Raft thread.
  using Done = std::function<void(grpc::Status)>;

  // Replicates `cmd`; once applied calls on_applied with its result (on the Raft
  // thread), then `done`. `requests`: how many client requests `cmd` carries (metrics).
  template <typename Req, typename Resp, typename OnApplied>
  void replicate(Method m, const Req& req, Resp* resp, std::vector<std::string> keys, raft_serverpb::KvCommand cmd,
                 const Status& input, OnApplied on_applied, Done done, std::uint64_t requests = 1);
  // Obtains a read point, then runs `read` against the engine. When `region` is
  // given it holds the region the read was checked against.
  template <typename Req, typename Resp, typename Read>
  grpc::Status linearizable_read(Method m, grpc::ServerContext* sctx, const Req& req, Resp* resp,
                                 std::vector<std::string> keys, const Status& input, Read&& read,
                                 std::shared_ptr<metapb::Region> region = nullptr);
  // The same for one key without blocking: `read` runs on the Raft thread, then `done`.
  template <typename Req, typename Resp, typename Read>
  void point_read(Method m, const Req& req, Resp* resp, const std::string& key, Read read, Done done);

  // The point operations, shared by the unary RPCs and BatchCommands. `req` and
  // `resp` must stay valid until `done` is called.
  void start_raw_get(const kvrpc::RawGetRequest& req, kvrpc::RawGetResponse* resp, Done done);
  void start_get(const kvrpc::GetRequest& req, kvrpc::GetResponse* resp, Done done);
  void start_raw_put(const kvrpc::RawPutRequest& req, kvrpc::RawPutResponse* resp, Done done);
  void start_raw_delete(const kvrpc::RawDeleteRequest& req, kvrpc::RawDeleteResponse* resp, Done done);
  void start_cas(const kvrpc::CompareAndSwapRequest& req, kvrpc::CompareAndSwapResponse* resp, Done done);
  // Runs a point operation as a unary callback call, finished when `start` is done.
  template <typename Req, typename Resp>
  grpc::ServerUnaryReactor* unary(grpc::CallbackServerContext* sctx, void (KvService::*start)(const Req&, Resp*, Done),
                                  const Req* req, Resp* resp);
  // Runs every request of `batch`, answering each on `stream`; raw puts routed alike
  // are grouped into one Raft entry (put_group).
  void dispatch_all(const std::shared_ptr<const kvrpc::BatchCommandsRequest>& batch, BatchStream* stream);
  void put_group(const std::shared_ptr<const kvrpc::BatchCommandsRequest>& batch, std::vector<int> members,
                 BatchStream* stream);
  // Runs request `index` of `batch`, answering it on `stream`.
  void dispatch(const std::shared_ptr<const kvrpc::BatchCommandsRequest>& batch, int index, BatchStream* stream);
  std::chrono::system_clock::time_point deadline_of(grpc::ServerContext* sctx) const;

  StorageEngine& engine_;
  RaftStore& store_;
  std::atomic<std::uint64_t> cluster_id_;
  IdSource ids_;
  std::array<RpcMetrics, kMethodCount> metrics_{};
  Histogram* batch_requests_ = nullptr;  // requests per BatchCommands message
  // Requests of one BatchCommands stream read but not yet answered, beyond which the
  // stream stops reading (backpressure) until half of them are answered.
  std::size_t max_stream_requests_ = kDefaultMaxStreamRequests;
  TxnHandler txn_;
};

}  // namespace rdb
