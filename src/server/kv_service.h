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

class KvService final : public kvrpc::Kv::Service {
 public:
  KvService(StorageEngine& engine, RaftStore& store, MetricsRegistry& metrics, std::uint64_t cluster_id);

  grpc::Status StoreInfo(grpc::ServerContext*, const kvrpc::StoreInfoRequest*, kvrpc::StoreInfoResponse*) override;
  grpc::Status RawGet(grpc::ServerContext*, const kvrpc::RawGetRequest*, kvrpc::RawGetResponse*) override;
  grpc::Status RawPut(grpc::ServerContext*, const kvrpc::RawPutRequest*, kvrpc::RawPutResponse*) override;
  grpc::Status RawDelete(grpc::ServerContext*, const kvrpc::RawDeleteRequest*, kvrpc::RawDeleteResponse*) override;
  grpc::Status RawScan(grpc::ServerContext*, const kvrpc::RawScanRequest*, kvrpc::RawScanResponse*) override;
  grpc::Status RawBatchGet(grpc::ServerContext*, const kvrpc::RawBatchGetRequest*,
                           kvrpc::RawBatchGetResponse*) override;
  grpc::Status RawBatchPut(grpc::ServerContext*, const kvrpc::RawBatchPutRequest*,
                           kvrpc::RawBatchPutResponse*) override;
  grpc::Status RawBatchDelete(grpc::ServerContext*, const kvrpc::RawBatchDeleteRequest*,
                              kvrpc::RawBatchDeleteResponse*) override;
  grpc::Status RawDeleteRange(grpc::ServerContext*, const kvrpc::RawDeleteRangeRequest*,
                              kvrpc::RawDeleteRangeResponse*) override;
  grpc::Status Get(grpc::ServerContext*, const kvrpc::GetRequest*, kvrpc::GetResponse*) override;
  grpc::Status CompareAndSwap(grpc::ServerContext*, const kvrpc::CompareAndSwapRequest*,
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

  // Replicates `cmd`; on success calls on_applied with its result.
  template <typename Req, typename Resp, typename OnApplied>
  grpc::Status replicate(Method m, grpc::ServerContext* sctx, const Req& req, Resp* resp, std::vector<std::string> keys,
                         raft_serverpb::KvCommand cmd, const Status& input, OnApplied&& on_applied);
  // Obtains a read point, then runs `read` against the engine.
  template <typename Req, typename Resp, typename Read>
  grpc::Status linearizable_read(Method m, grpc::ServerContext* sctx, const Req& req, Resp* resp,
                                 std::vector<std::string> keys, const Status& input, Read&& read);
  std::chrono::system_clock::time_point deadline_of(grpc::ServerContext* sctx) const;

  StorageEngine& engine_;
  RaftStore& store_;
  std::atomic<std::uint64_t> cluster_id_;
  std::array<RpcMetrics, kMethodCount> metrics_{};
};

}  // namespace rdb
