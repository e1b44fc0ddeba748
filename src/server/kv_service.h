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
// Thread safety: gRPC calls handlers concurrently; RaftStore and the engine are
// thread-safe. Borrows (does not own) the engine, store and metrics.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "kvrpc.grpc.pb.h"
#include "server/raft_store.h"
#include "storage/storage_engine.h"

namespace rdb {

// Writes use gRPC's callback API: a write waiting for Raft holds no thread and
// is answered from the Raft thread once applied (with 256 writes in flight, a
// blocked handler thread per write cost a wake-up and a context switch each).
// Point reads (RawGet, Get) too: the engine read runs on the Raft thread once the
// read point is reached (a few µs). Scans and batch reads stay synchronous: their
// engine work is unbounded and runs on the handler thread.
using KvServiceBase =
    kvrpc::Kv::WithCallbackMethod_RawGet<kvrpc::Kv::WithCallbackMethod_Get<kvrpc::Kv::WithCallbackMethod_RawPut<
        kvrpc::Kv::WithCallbackMethod_RawDelete<kvrpc::Kv::WithCallbackMethod_RawBatchPut<
            kvrpc::Kv::WithCallbackMethod_RawBatchDelete<kvrpc::Kv::WithCallbackMethod_RawDeleteRange<
                kvrpc::Kv::WithCallbackMethod_CompareAndSwap<kvrpc::Kv::Service>>>>>>>>;

class KvService final : public KvServiceBase {
 public:
  KvService(StorageEngine& engine, RaftStore& store, MetricsRegistry& metrics, std::uint64_t cluster_id);

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

  void set_cluster_id(std::uint64_t id) { cluster_id_ = id; }

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
    kMethodCount
  };
  struct RpcMetrics {
    Counter* requests;
    Counter* errors;
    Histogram* latency;
  };

  // Replicates `cmd`; once applied calls on_applied with its result (on the Raft
  // thread) and finishes the call.
  template <typename Req, typename Resp, typename OnApplied>
  grpc::ServerUnaryReactor* replicate(Method m, grpc::CallbackServerContext* sctx, const Req& req, Resp* resp,
                                      std::vector<std::string> keys, raft_serverpb::KvCommand cmd, const Status& input,
                                      OnApplied on_applied);
  // Obtains a read point, then runs `read` against the engine.
  template <typename Req, typename Resp, typename Read>
  grpc::Status linearizable_read(Method m, grpc::ServerContext* sctx, const Req& req, Resp* resp,
                                 std::vector<std::string> keys, const Status& input, Read&& read);
  // The same for one key on the callback API: `read` runs on the Raft thread.
  template <typename Req, typename Resp, typename Read>
  grpc::ServerUnaryReactor* point_read(Method m, grpc::CallbackServerContext* sctx, const Req& req, Resp* resp,
                                       const std::string& key, Read read);
  std::chrono::system_clock::time_point deadline_of(grpc::ServerContext* sctx) const;

  StorageEngine& engine_;
  RaftStore& store_;
  std::atomic<std::uint64_t> cluster_id_;
  std::array<RpcMetrics, kMethodCount> metrics_{};
};

}  // namespace rdb
