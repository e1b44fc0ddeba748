#include "server/kv_service.h"

#include <spdlog/spdlog.h>

#include <future>

#include "common/limits.h"

namespace rdb {
namespace {

using raft_serverpb::KvCommand;
using raft_serverpb::KvCommandResult;

constexpr std::array<const char*, 10> kMethodNames = {
    "RawGet",      "RawPut",         "RawDelete",      "RawScan", "RawBatchGet",
    "RawBatchPut", "RawBatchDelete", "RawDeleteRange", "Get",     "CompareAndSwap"};
// A call without a deadline still gets one: a store never waits forever.
constexpr auto kDefaultDeadline = std::chrono::seconds(30);

grpc::Status to_grpc(const Status& s) {
  if (s.code() == StatusCode::kInvalidArgument) {
    return {grpc::StatusCode::INVALID_ARGUMENT, s.message()};
  }
  return {grpc::StatusCode::INTERNAL, s.to_string()};
}

// Moves engine pairs into a response's repeated KvPair field.
template <typename Repeated>
void append_pairs(Repeated* out, std::vector<KvPair>& pairs) {
  out->Reserve(out->size() + static_cast<int>(pairs.size()));
  for (auto& p : pairs) {
    auto* kv = out->Add();
    kv->set_key(std::move(p.key));
    kv->set_value(std::move(p.value));
  }
}

// Starts an asynchronous RaftStore call and waits for its callback's value until
// `deadline`; nullopt if it did not come in time (the call may still complete).
template <typename T, typename Start>
std::optional<T> await_callback(Start&& start, std::chrono::system_clock::time_point deadline) {
  auto done = std::make_shared<std::promise<T>>();
  auto value = done->get_future();
  start([done](T v) { done->set_value(std::move(v)); });
  if (value.wait_until(deadline) != std::future_status::ready) {
    return std::nullopt;
  }
  return value.get();
}

Status validate_keys(const std::vector<std::string>& keys) {
  RDB_RETURN_IF_ERROR(validate_batch_size(keys.size()));
  for (const auto& k : keys) {
    RDB_RETURN_IF_ERROR(validate_key(k));
  }
  return Status::ok();
}

}  // namespace

KvService::KvService(StorageEngine& engine, RaftStore& store, MetricsRegistry& metrics, std::uint64_t cluster_id)
    : engine_(engine), store_(store), cluster_id_(cluster_id) {
  for (int m = 0; m < kMethodCount; ++m) {
    std::string labels = fmt::format("method=\"{}\"", kMethodNames[static_cast<std::size_t>(m)]);
    metrics_[static_cast<std::size_t>(m)] = {
        &metrics.counter("rdb_kv_requests_total", "KV requests received", labels),
        &metrics.counter("rdb_kv_errors_total", "KV requests that failed or were misrouted", labels),
        &metrics.histogram("rdb_kv_request_duration_seconds", "KV request handling time", labels)};
  }
}

std::chrono::system_clock::time_point KvService::deadline_of(grpc::ServerContext* sctx) const {
  auto cap = std::chrono::system_clock::now() + kDefaultDeadline;
  return sctx == nullptr ? cap : std::min(sctx->deadline(), cap);
}

template <typename Req, typename Resp, typename OnApplied>
grpc::ServerUnaryReactor* KvService::replicate(
    Method m, grpc::CallbackServerContext* sctx, const Req& req, Resp* resp,
    std::vector<std::string> keys,  // NOLINT(performance-unnecessary-value-param)
    KvCommand cmd,                  // NOLINT(performance-unnecessary-value-param)
    const Status& input, OnApplied on_applied) {
  RpcMetrics& rm = metrics_[static_cast<std::size_t>(m)];
  rm.requests->inc();
  auto started = std::chrono::steady_clock::now();
  grpc::ServerUnaryReactor* reactor = sctx->DefaultReactor();
  if (!input.is_ok()) {
    rm.errors->inc();
    rm.latency->observe(std::chrono::steady_clock::now() - started);
    reactor->Finish(to_grpc(input));
    return reactor;
  }
  // The callback always comes: applied, refused, or undetermined when the store
  // stops. A client that gave up meanwhile sees its own DEADLINE_EXCEEDED; the
  // write's outcome is unknown to it either way.
  store_.propose(req.context(), std::move(keys), std::move(cmd),
                 [&rm, reactor, resp, started, on_applied = std::move(on_applied)](ProposeResult r) {
                   grpc::Status status = grpc::Status::OK;
                   if (r.undetermined) {
                     // UNAVAILABLE after the request reached the store: clients report a CAS as undetermined.
                     status = {grpc::StatusCode::UNAVAILABLE, "the store stopped before the write's outcome was known"};
                   } else if (r.region_error) {
                     *resp->mutable_region_error() = std::move(*r.region_error);
                   } else if (!r.result.error().empty()) {
                     status = {grpc::StatusCode::INVALID_ARGUMENT, r.result.error()};
                   } else {
                     on_applied(r.result);
                   }
                   if (!status.ok() || resp->has_region_error()) {
                     rm.errors->inc();
                   }
                   rm.latency->observe(std::chrono::steady_clock::now() - started);
                   reactor->Finish(status);
                 });
  return reactor;
}

template <typename Req, typename Resp, typename Read>
grpc::Status KvService::linearizable_read(Method m, grpc::ServerContext* sctx, const Req& req, Resp* resp,
                                          std::vector<std::string> keys,  // NOLINT(performance-unnecessary-value-param)
                                          const Status& input, Read&& read) {
  RpcMetrics& rm = metrics_[static_cast<std::size_t>(m)];
  rm.requests->inc();
  ScopedTimer timer(*rm.latency);
  if (!input.is_ok()) {
    rm.errors->inc();
    return to_grpc(input);
  }
  using ReadPoint = std::optional<kvrpc::RegionError>;
  auto ready = await_callback<ReadPoint>(
      [&](ReadCallback&& cb) { store_.read_index(req.context(), std::move(keys), std::move(cb)); }, deadline_of(sctx));
  if (!ready) {
    rm.errors->inc();
    return {grpc::StatusCode::DEADLINE_EXCEEDED, "no linearizable read point before the deadline"};
  }
  if (auto& err = *ready) {
    rm.errors->inc();
    *resp->mutable_region_error() = std::move(*err);
    return grpc::Status::OK;
  }
  Status s = read();
  if (!s.is_ok()) {
    rm.errors->inc();
    if (s.code() != StatusCode::kInvalidArgument) {
      spdlog::error("{} failed: {}", kMethodNames[static_cast<std::size_t>(m)], s.to_string());
    }
    return to_grpc(s);
  }
  return grpc::Status::OK;
}

template <typename Req, typename Resp, typename Read>
grpc::ServerUnaryReactor* KvService::point_read(Method m, grpc::CallbackServerContext* sctx, const Req& req, Resp* resp,
                                                const std::string& key, Read read) {
  RpcMetrics& rm = metrics_[static_cast<std::size_t>(m)];
  rm.requests->inc();
  auto started = std::chrono::steady_clock::now();
  grpc::ServerUnaryReactor* reactor = sctx->DefaultReactor();
  if (Status input = validate_key(key); !input.is_ok()) {
    rm.errors->inc();
    rm.latency->observe(std::chrono::steady_clock::now() - started);
    reactor->Finish(to_grpc(input));
    return reactor;
  }
  store_.read_index(req.context(), {key},
                    [&rm, m, reactor, resp, started, read = std::move(read)](std::optional<kvrpc::RegionError> err) {
                      grpc::Status status = grpc::Status::OK;
                      if (err) {
                        rm.errors->inc();
                        *resp->mutable_region_error() = std::move(*err);
                      } else if (Status s = read(); !s.is_ok()) {
                        rm.errors->inc();
                        if (s.code() != StatusCode::kInvalidArgument) {
                          spdlog::error("{} failed: {}", kMethodNames[static_cast<std::size_t>(m)], s.to_string());
                        }
                        status = to_grpc(s);
                      }
                      rm.latency->observe(std::chrono::steady_clock::now() - started);
                      reactor->Finish(status);
                    });
  return reactor;
}

grpc::Status KvService::StoreInfo(grpc::ServerContext*, const kvrpc::StoreInfoRequest*,
                                  kvrpc::StoreInfoResponse* resp) {
  resp->set_store_id(store_.store_id());
  resp->set_cluster_id(cluster_id_.load());
  for (auto& r : store_.regions()) {
    *resp->add_regions() = std::move(r.region);
  }
  return grpc::Status::OK;
}

grpc::ServerUnaryReactor* KvService::RawGet(grpc::CallbackServerContext* sctx, const kvrpc::RawGetRequest* req,
                                            kvrpc::RawGetResponse* resp) {
  return point_read(kRawGet, sctx, *req, resp, req->key(), [this, req, resp]() -> Status {
    RDB_ASSIGN_OR_RETURN(auto value, engine_.raw_get(req->key()));
    if (value) {
      resp->set_value(std::move(*value));
    } else {
      resp->set_not_found(true);
    }
    return Status::ok();
  });
}

grpc::ServerUnaryReactor* KvService::Get(grpc::CallbackServerContext* sctx, const kvrpc::GetRequest* req,
                                         kvrpc::GetResponse* resp) {
  return point_read(kGet, sctx, *req, resp, req->key(), [this, req, resp]() -> Status {
    RDB_ASSIGN_OR_RETURN(auto v, engine_.get(req->key()));
    resp->set_not_found(!v.found);
    resp->set_value(std::move(v.value));
    resp->set_version(v.version);
    return Status::ok();
  });
}

grpc::Status KvService::RawScan(grpc::ServerContext* sctx, const kvrpc::RawScanRequest* req,
                                kvrpc::RawScanResponse* resp) {
  Status input = validate_scan_limit(req->limit());
  if (input.is_ok()) {
    input = validate_range(req->start_key(), req->end_key(), false);
  }
  return linearizable_read(kRawScan, sctx, *req, resp, {req->start_key()}, input, [&]() -> Status {
    ScanOptions o{req->start_key(), req->end_key(), req->limit(), req->reverse(), req->key_only()};
    RDB_ASSIGN_OR_RETURN(auto pairs, engine_.raw_scan(o));
    append_pairs(resp->mutable_kvs(), pairs);
    return Status::ok();
  });
}

grpc::Status KvService::RawBatchGet(grpc::ServerContext* sctx, const kvrpc::RawBatchGetRequest* req,
                                    kvrpc::RawBatchGetResponse* resp) {
  std::vector<std::string> keys(req->keys().begin(), req->keys().end());
  Status input = validate_keys(keys);
  return linearizable_read(kRawBatchGet, sctx, *req, resp, keys, input, [&]() -> Status {
    RDB_ASSIGN_OR_RETURN(auto pairs, engine_.raw_batch_get(keys));
    append_pairs(resp->mutable_pairs(), pairs);
    return Status::ok();
  });
}

grpc::ServerUnaryReactor* KvService::RawPut(grpc::CallbackServerContext* sctx, const kvrpc::RawPutRequest* req,
                                            kvrpc::RawPutResponse* resp) {
  Status input = validate_key(req->key());
  if (input.is_ok()) {
    input = validate_value(req->value());
  }
  KvCommand cmd;
  cmd.set_type(KvCommand::RAW_PUT);
  cmd.add_keys(req->key());
  cmd.add_values(req->value());
  return replicate(kRawPut, sctx, *req, resp, {req->key()}, std::move(cmd), input, [](const KvCommandResult&) {});
}

grpc::ServerUnaryReactor* KvService::RawDelete(grpc::CallbackServerContext* sctx, const kvrpc::RawDeleteRequest* req,
                                               kvrpc::RawDeleteResponse* resp) {
  KvCommand cmd;
  cmd.set_type(KvCommand::RAW_DELETE);
  cmd.add_keys(req->key());
  return replicate(kRawDelete, sctx, *req, resp, {req->key()}, std::move(cmd), validate_key(req->key()),
                   [](const KvCommandResult&) {});
}

grpc::ServerUnaryReactor* KvService::RawBatchPut(grpc::CallbackServerContext* sctx,
                                                 const kvrpc::RawBatchPutRequest* req,
                                                 kvrpc::RawBatchPutResponse* resp) {
  std::vector<std::string> keys;
  KvCommand cmd;
  cmd.set_type(KvCommand::RAW_BATCH_PUT);
  Status input = Status::ok();
  for (const auto& p : req->pairs()) {
    keys.push_back(p.key());
    cmd.add_keys(p.key());
    cmd.add_values(p.value());
    if (input.is_ok()) {
      input = validate_value(p.value());
    }
  }
  if (input.is_ok()) {
    input = validate_keys(keys);
  }
  return replicate(kRawBatchPut, sctx, *req, resp, std::move(keys), std::move(cmd), input,
                   [](const KvCommandResult&) {});
}

grpc::ServerUnaryReactor* KvService::RawBatchDelete(grpc::CallbackServerContext* sctx,
                                                    const kvrpc::RawBatchDeleteRequest* req,
                                                    kvrpc::RawBatchDeleteResponse* resp) {
  std::vector<std::string> keys(req->keys().begin(), req->keys().end());
  KvCommand cmd;
  cmd.set_type(KvCommand::RAW_BATCH_DELETE);
  *cmd.mutable_keys() = req->keys();
  Status input = validate_keys(keys);
  return replicate(kRawBatchDelete, sctx, *req, resp, std::move(keys), std::move(cmd), input,
                   [](const KvCommandResult&) {});
}

grpc::ServerUnaryReactor* KvService::RawDeleteRange(grpc::CallbackServerContext* sctx,
                                                    const kvrpc::RawDeleteRangeRequest* req,
                                                    kvrpc::RawDeleteRangeResponse* resp) {
  Status input = validate_key(req->start_key(), "start key");
  if (input.is_ok()) {
    input = validate_range(req->start_key(), req->end_key(), true);
  }
  KvCommand cmd;
  cmd.set_type(KvCommand::RAW_DELETE_RANGE);
  cmd.add_keys(req->start_key());
  cmd.add_keys(req->end_key());
  return replicate(kRawDeleteRange, sctx, *req, resp, {req->start_key()}, std::move(cmd), input,
                   [](const KvCommandResult&) {});
}

grpc::ServerUnaryReactor* KvService::CompareAndSwap(grpc::CallbackServerContext* sctx,
                                                    const kvrpc::CompareAndSwapRequest* req,
                                                    kvrpc::CompareAndSwapResponse* resp) {
  Status input = validate_key(req->key());
  if (input.is_ok() && !req->delete_()) {
    input = validate_value(req->new_value());
  }
  KvCommand cmd;
  cmd.set_type(KvCommand::CAS);
  cmd.add_keys(req->key());
  cmd.set_expected_version(req->expected_version());
  if (req->delete_()) {
    cmd.set_cas_delete(true);
  } else {
    cmd.add_values(req->new_value());
  }
  return replicate(kCompareAndSwap, sctx, *req, resp, {req->key()}, std::move(cmd), input,
                   [resp](const KvCommandResult& r) {
                     resp->set_succeeded(r.cas_succeeded());
                     resp->set_version(r.cas_version());
                     resp->set_current_found(r.cas_current_found());
                     resp->set_current_value(r.cas_current_value());
                   });
}

}  // namespace rdb
