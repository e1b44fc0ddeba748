// KvService: the gRPC face of a store (kvrpc.Kv).
//
// Each call is checked by the RegionRouter first (a misrouted request gets a
// RegionError and touches nothing), then served by the StorageEngine. Bad input
// becomes the gRPC status INVALID_ARGUMENT with the engine's message; a busy
// engine becomes ServerIsBusy; other engine failures become INTERNAL.
// Thread safety: gRPC calls handlers concurrently; the engine and router are
// thread-safe. Borrows (does not own) the engine, router and metrics.
#pragma once

#include <array>
#include <string_view>
#include <vector>

#include "common/metrics.h"
#include "kvrpc.grpc.pb.h"
#include "server/region_router.h"
#include "storage/storage_engine.h"

namespace rdb {

class KvService final : public kvrpc::Kv::Service {
 public:
  KvService(StorageEngine& engine, RegionRouter& router, MetricsRegistry& metrics, std::uint64_t cluster_id);

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

  // Routes, times and counts one call; `op` does the work and returns its Status.
  template <typename Req, typename Resp, typename Op>
  grpc::Status serve(Method m, const Req& req, Resp* resp, const std::vector<std::string_view>& keys, Op&& op);

  StorageEngine& engine_;
  RegionRouter& router_;
  std::atomic<std::uint64_t> cluster_id_;
  std::array<RpcMetrics, kMethodCount> metrics_{};
};

}  // namespace rdb
