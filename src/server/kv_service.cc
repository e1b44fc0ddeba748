#include "server/kv_service.h"

#include <spdlog/spdlog.h>

namespace rdb {
namespace {

constexpr std::array<const char*, 10> kMethodNames = {
    "RawGet",      "RawPut",         "RawDelete",      "RawScan", "RawBatchGet",
    "RawBatchPut", "RawBatchDelete", "RawDeleteRange", "Get",     "CompareAndSwap"};

template <typename Repeated>
std::vector<std::string_view> views(const Repeated& keys) {
  return {keys.begin(), keys.end()};
}

}  // namespace

KvService::KvService(StorageEngine& engine, RegionRouter& router, MetricsRegistry& metrics, std::uint64_t cluster_id)
    : engine_(engine), router_(router), cluster_id_(cluster_id) {
  for (int m = 0; m < kMethodCount; ++m) {
    std::string labels = fmt::format("method=\"{}\"", kMethodNames[static_cast<std::size_t>(m)]);
    metrics_[static_cast<std::size_t>(m)] = {
        &metrics.counter("rdb_kv_requests_total", "KV requests received", labels),
        &metrics.counter("rdb_kv_errors_total", "KV requests that failed or were misrouted", labels),
        &metrics.histogram("rdb_kv_request_duration_seconds", "KV request handling time", labels)};
  }
}

template <typename Req, typename Resp, typename Op>
grpc::Status KvService::serve(Method m, const Req& req, Resp* resp, const std::vector<std::string_view>& keys,
                              Op&& op) {
  RpcMetrics& rm = metrics_[static_cast<std::size_t>(m)];
  rm.requests->inc();
  ScopedTimer timer(*rm.latency);
  if (auto err = router_.check(req.context(), keys)) {
    rm.errors->inc();
    *resp->mutable_region_error() = std::move(*err);
    return grpc::Status::OK;
  }
  Status s = op();
  if (s.is_ok()) {
    return grpc::Status::OK;
  }
  rm.errors->inc();
  switch (s.code()) {
    case StatusCode::kInvalidArgument:
      return {grpc::StatusCode::INVALID_ARGUMENT, s.message()};
    case StatusCode::kBusy: {
      auto* busy = resp->mutable_region_error();
      busy->set_message(s.message());
      busy->mutable_server_is_busy()->set_reason(s.message());
      busy->mutable_server_is_busy()->set_backoff_ms(10);
      return grpc::Status::OK;
    }
    default:
      spdlog::error("{} failed: {}", kMethodNames[static_cast<std::size_t>(m)], s.to_string());
      return {grpc::StatusCode::INTERNAL, s.to_string()};
  }
}

grpc::Status KvService::StoreInfo(grpc::ServerContext*, const kvrpc::StoreInfoRequest*,
                                  kvrpc::StoreInfoResponse* resp) {
  resp->set_store_id(router_.store_id());
  resp->set_cluster_id(cluster_id_.load());
  for (auto& r : router_.regions()) {
    *resp->add_regions() = std::move(r);
  }
  return grpc::Status::OK;
}

grpc::Status KvService::RawGet(grpc::ServerContext*, const kvrpc::RawGetRequest* req, kvrpc::RawGetResponse* resp) {
  return serve(kRawGet, *req, resp, {req->key()}, [&]() -> Status {
    RDB_ASSIGN_OR_RETURN(auto value, engine_.raw_get(req->key()));
    if (value) {
      resp->set_value(std::move(*value));
    } else {
      resp->set_not_found(true);
    }
    return Status::ok();
  });
}

grpc::Status KvService::RawPut(grpc::ServerContext*, const kvrpc::RawPutRequest* req, kvrpc::RawPutResponse* resp) {
  return serve(kRawPut, *req, resp, {req->key()}, [&] { return engine_.raw_put(req->key(), req->value()); });
}

grpc::Status KvService::RawDelete(grpc::ServerContext*, const kvrpc::RawDeleteRequest* req,
                                  kvrpc::RawDeleteResponse* resp) {
  return serve(kRawDelete, *req, resp, {req->key()}, [&] { return engine_.raw_delete(req->key()); });
}

grpc::Status KvService::RawScan(grpc::ServerContext*, const kvrpc::RawScanRequest* req, kvrpc::RawScanResponse* resp) {
  return serve(kRawScan, *req, resp, {req->start_key()}, [&]() -> Status {
    ScanOptions o{req->start_key(), req->end_key(), req->limit(), req->reverse(), req->key_only()};
    RDB_ASSIGN_OR_RETURN(auto pairs, engine_.raw_scan(o));
    for (auto& p : pairs) {
      auto* kv = resp->add_kvs();
      kv->set_key(std::move(p.key));
      kv->set_value(std::move(p.value));
    }
    return Status::ok();
  });
}

grpc::Status KvService::RawBatchGet(grpc::ServerContext*, const kvrpc::RawBatchGetRequest* req,
                                    kvrpc::RawBatchGetResponse* resp) {
  return serve(kRawBatchGet, *req, resp, views(req->keys()), [&]() -> Status {
    std::vector<std::string> keys(req->keys().begin(), req->keys().end());
    RDB_ASSIGN_OR_RETURN(auto pairs, engine_.raw_batch_get(keys));
    for (auto& p : pairs) {
      auto* kv = resp->add_pairs();
      kv->set_key(std::move(p.key));
      kv->set_value(std::move(p.value));
    }
    return Status::ok();
  });
}

grpc::Status KvService::RawBatchPut(grpc::ServerContext*, const kvrpc::RawBatchPutRequest* req,
                                    kvrpc::RawBatchPutResponse* resp) {
  std::vector<std::string_view> keys;
  keys.reserve(static_cast<std::size_t>(req->pairs_size()));
  for (const auto& p : req->pairs()) {
    keys.emplace_back(p.key());
  }
  return serve(kRawBatchPut, *req, resp, keys, [&] {
    std::vector<KvPair> pairs;
    pairs.reserve(keys.size());
    for (const auto& p : req->pairs()) {
      pairs.push_back({p.key(), p.value()});
    }
    return engine_.raw_batch_put(pairs);
  });
}

grpc::Status KvService::RawBatchDelete(grpc::ServerContext*, const kvrpc::RawBatchDeleteRequest* req,
                                       kvrpc::RawBatchDeleteResponse* resp) {
  return serve(kRawBatchDelete, *req, resp, views(req->keys()), [&] {
    std::vector<std::string> keys(req->keys().begin(), req->keys().end());
    return engine_.raw_batch_delete(keys);
  });
}

grpc::Status KvService::RawDeleteRange(grpc::ServerContext*, const kvrpc::RawDeleteRangeRequest* req,
                                       kvrpc::RawDeleteRangeResponse* resp) {
  return serve(kRawDeleteRange, *req, resp, {req->start_key()},
               [&] { return engine_.raw_delete_range(req->start_key(), req->end_key()); });
}

grpc::Status KvService::Get(grpc::ServerContext*, const kvrpc::GetRequest* req, kvrpc::GetResponse* resp) {
  return serve(kGet, *req, resp, {req->key()}, [&]() -> Status {
    RDB_ASSIGN_OR_RETURN(auto v, engine_.get(req->key()));
    resp->set_not_found(!v.found);
    resp->set_value(std::move(v.value));
    resp->set_version(v.version);
    return Status::ok();
  });
}

grpc::Status KvService::CompareAndSwap(grpc::ServerContext*, const kvrpc::CompareAndSwapRequest* req,
                                       kvrpc::CompareAndSwapResponse* resp) {
  return serve(kCompareAndSwap, *req, resp, {req->key()}, [&]() -> Status {
    std::optional<std::string> new_value;
    if (!req->delete_()) {
      new_value = req->new_value();
    }
    RDB_ASSIGN_OR_RETURN(auto out, engine_.compare_and_swap(req->key(), req->expected_version(), new_value));
    resp->set_succeeded(out.succeeded);
    resp->set_version(out.version);
    resp->set_current_found(out.current_found);
    resp->set_current_value(std::move(out.current_value));
    return Status::ok();
  });
}

}  // namespace rdb
