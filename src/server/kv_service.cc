#include "server/kv_service.h"

#include <spdlog/spdlog.h>

#include <future>
#include <map>
#include <mutex>
#include <tuple>

#include "common/limits.h"
#include "server/callback_wait.h"
#include "server/region_apply.h"

namespace rdb {
namespace {

using raft_serverpb::KvCommand;
using raft_serverpb::KvCommandResult;

constexpr std::array<const char*, 11> kMethodNames = {
    "RawGet",         "RawPut",         "RawDelete", "RawScan",        "RawBatchGet", "RawBatchPut",
    "RawBatchDelete", "RawDeleteRange", "Get",       "CompareAndSwap", "SplitRegion"};
// A call without a deadline still gets one: a store never waits forever.
constexpr auto kDefaultDeadline = std::chrono::seconds(30);
// Values per grouped raw-put Raft entry (see KvService::dispatch_all).
constexpr std::size_t kMaxGroupedPutBytes = std::size_t{1} << 20;

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

// Finishes a unary callback call with the operation's status.
std::function<void(grpc::Status)> finisher(grpc::ServerUnaryReactor* reactor) {
  return [reactor](grpc::Status s) { reactor->Finish(std::move(s)); };
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
    : engine_(engine), store_(store), cluster_id_(cluster_id), txn_(engine, store, metrics) {
  for (int m = 0; m < kMethodCount; ++m) {
    std::string labels = fmt::format("method=\"{}\"", kMethodNames[static_cast<std::size_t>(m)]);
    metrics_[static_cast<std::size_t>(m)] = {
        &metrics.counter("rdb_kv_requests_total", "KV requests received", labels),
        &metrics.counter("rdb_kv_errors_total", "KV requests that failed or were misrouted", labels),
        &metrics.histogram("rdb_kv_request_duration_seconds", "KV request handling time", labels)};
  }
  batch_requests_ = &metrics.histogram("rdb_kv_batch_commands_requests",
                                       "Point requests per BatchCommands message received", "", 1.0);
}

std::chrono::system_clock::time_point KvService::deadline_of(grpc::ServerContext* sctx) const {
  auto cap = std::chrono::system_clock::now() + kDefaultDeadline;
  return sctx == nullptr ? cap : std::min(sctx->deadline(), cap);
}

template <typename Req, typename Resp, typename OnApplied>
void KvService::replicate(Method m, const Req& req, Resp* resp,
                          std::vector<std::string> keys,  // NOLINT(performance-unnecessary-value-param)
                          KvCommand cmd,                  // NOLINT(performance-unnecessary-value-param)
                          const Status& input, OnApplied on_applied, Done done, std::uint64_t requests) {
  RpcMetrics& rm = metrics_[static_cast<std::size_t>(m)];
  rm.requests->inc(requests);
  auto started = std::chrono::steady_clock::now();
  if (!input.is_ok()) {
    rm.errors->inc(requests);
    rm.latency->observe(std::chrono::steady_clock::now() - started);
    done(to_grpc(input));
    return;
  }
  // The callback always comes: applied, refused, or undetermined when the store
  // stops. A client that gave up meanwhile sees its own DEADLINE_EXCEEDED; the
  // write's outcome is unknown to it either way.
  store_.propose(
      req.context(), std::move(keys), std::move(cmd),
      [&rm, resp, started, requests, on_applied = std::move(on_applied), done = std::move(done)](ProposeResult r) {
        grpc::Status status = grpc::Status::OK;
        if (r.undetermined) {
          // UNAVAILABLE after the request reached the store: clients report a CAS as undetermined.
          status = {grpc::StatusCode::UNAVAILABLE,
                    r.undetermined_why.empty() ? std::string("the store stopped before the write's outcome was known")
                                               : fmt::format("the write's outcome is unknown: {}", r.undetermined_why)};
        } else if (r.region_error) {
          *resp->mutable_region_error() = std::move(*r.region_error);
        } else if (!r.result.error().empty()) {
          status = {grpc::StatusCode::INVALID_ARGUMENT, r.result.error()};
        } else {
          on_applied(r.result);
        }
        if (!status.ok() || resp->has_region_error()) {
          rm.errors->inc(requests);
        }
        auto elapsed = std::chrono::steady_clock::now() - started;
        for (std::uint64_t i = 0; i < requests; ++i) {
          rm.latency->observe(elapsed);
        }
        done(std::move(status));
      });
}

template <typename Req, typename Resp, typename Read>
grpc::Status KvService::linearizable_read(Method m, grpc::ServerContext* sctx, const Req& req, Resp* resp,
                                          std::vector<std::string> keys,  // NOLINT(performance-unnecessary-value-param)
                                          const Status& input, Read&& read, std::shared_ptr<metapb::Region> region) {
  RpcMetrics& rm = metrics_[static_cast<std::size_t>(m)];
  rm.requests->inc();
  ScopedTimer timer(*rm.latency);
  if (!input.is_ok()) {
    rm.errors->inc();
    return to_grpc(input);
  }
  if (!store_.try_local_read(req.context(), keys, region.get())) {
    using ReadPoint = std::optional<kvrpc::RegionError>;
    auto ready = await_callback<ReadPoint>(
        [&](ReadCallback&& cb) { store_.read_index(req.context(), std::move(keys), std::move(cb), region); },
        deadline_of(sctx));
    if (!ready) {
      rm.errors->inc();
      return {grpc::StatusCode::DEADLINE_EXCEEDED, "no linearizable read point before the deadline"};
    }
    if (auto& err = *ready) {
      rm.errors->inc();
      *resp->mutable_region_error() = std::move(*err);
      return grpc::Status::OK;
    }
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

template <typename Req, typename Resp>
grpc::ServerUnaryReactor* KvService::unary(grpc::CallbackServerContext* sctx,
                                           void (KvService::*start)(const Req&, Resp*, Done), const Req* req,
                                           Resp* resp) {
  grpc::ServerUnaryReactor* reactor = sctx->DefaultReactor();
  (this->*start)(*req, resp, finisher(reactor));
  return reactor;
}

template <typename Req, typename Resp, typename Read>
void KvService::point_read(Method m, const Req& req, Resp* resp, const std::string& key, Read read, Done done) {
  RpcMetrics& rm = metrics_[static_cast<std::size_t>(m)];
  rm.requests->inc();
  auto started = std::chrono::steady_clock::now();
  if (Status input = validate_key(key); !input.is_ok()) {
    rm.errors->inc();
    rm.latency->observe(std::chrono::steady_clock::now() - started);
    done(to_grpc(input));
    return;
  }
  auto answer = [&rm, m, resp, started, read = std::move(read),
                 done = std::move(done)](std::optional<kvrpc::RegionError> err) {
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
    done(std::move(status));
  };
  if (store_.try_local_read(req.context(), std::span<const std::string>(&key, 1))) {
    answer(std::nullopt);  // under the lease, on this thread: no trip through the Raft thread
    return;
  }
  store_.read_index(req.context(), {key}, std::move(answer));
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

void KvService::start_raw_get(const kvrpc::RawGetRequest& req, kvrpc::RawGetResponse* resp, Done done) {
  point_read(
      kRawGet, req, resp, req.key(),
      [this, &req, resp]() -> Status {
        RDB_ASSIGN_OR_RETURN(auto value, engine_.raw_get(req.key()));
        if (value) {
          resp->set_value(std::move(*value));
        } else {
          resp->set_not_found(true);
        }
        return Status::ok();
      },
      std::move(done));
}

void KvService::start_get(const kvrpc::GetRequest& req, kvrpc::GetResponse* resp, Done done) {
  point_read(
      kGet, req, resp, req.key(),
      [this, &req, resp]() -> Status {
        RDB_ASSIGN_OR_RETURN(auto v, engine_.get(req.key()));
        resp->set_not_found(!v.found);
        resp->set_value(std::move(v.value));
        resp->set_version(v.version);
        return Status::ok();
      },
      std::move(done));
}

grpc::ServerUnaryReactor* KvService::RawGet(grpc::CallbackServerContext* sctx, const kvrpc::RawGetRequest* req,
                                            kvrpc::RawGetResponse* resp) {
  return unary(sctx, &KvService::start_raw_get, req, resp);
}

grpc::ServerUnaryReactor* KvService::Get(grpc::CallbackServerContext* sctx, const kvrpc::GetRequest* req,
                                         kvrpc::GetResponse* resp) {
  return unary(sctx, &KvService::start_get, req, resp);
}

grpc::Status KvService::RawScan(grpc::ServerContext* sctx, const kvrpc::RawScanRequest* req,
                                kvrpc::RawScanResponse* resp) {
  Status input = validate_scan_limit(req->limit());
  if (input.is_ok()) {
    input = validate_range(req->start_key(), req->end_key(), false);
  }
  // A forward scan is routed by its start key; a reverse one by the keys below its end,
  // checked against the region below.
  std::vector<std::string> keys;
  if (!req->reverse()) {
    keys.push_back(req->start_key());
  }
  auto region = std::make_shared<metapb::Region>();
  return linearizable_read(
      kRawScan, sctx, *req, resp, std::move(keys), input,
      [&]() -> Status {
        ScanOptions o{req->start_key(), req->end_key(),  req->limit(),
                      req->reverse(),   req->key_only(), kMaxResponseBytes};
        // The scan covers only this region's part of the range; the client goes on in the next.
        std::optional<std::string> boundary;
        if (!req->reverse()) {
          if (!region->end_key().empty() && (o.end_key.empty() || region->end_key() < o.end_key)) {
            o.end_key = region->end_key();
            boundary = region->end_key();
          }
        } else {
          const std::string& end = req->end_key();
          bool routed_here = end.empty()
                                 ? region->end_key().empty()
                                 : end > region->start_key() && (region->end_key().empty() || end <= region->end_key());
          if (!routed_here) {
            *resp->mutable_region_error() = key_not_in_region(end, *region, "the reverse scan's end");
            return Status::ok();
          }
          if (region->start_key() > o.start_key) {
            o.start_key = region->start_key();
            boundary = region->start_key();
          }
        }
        RDB_ASSIGN_OR_RETURN(auto pairs, engine_.raw_scan(o));
        std::size_t bytes = 0;
        for (const auto& p : pairs) {
          bytes += p.key.size() + p.value.size();
        }
        resp->set_truncated(pairs.size() < req->limit() && bytes >= kMaxResponseBytes);
        if (boundary && pairs.size() < req->limit() && !resp->truncated()) {
          resp->set_region_boundary(true);
          resp->set_next_key(*boundary);
        }
        append_pairs(resp->mutable_kvs(), pairs);
        return Status::ok();
      },
      region);
}

grpc::Status KvService::SplitRegion(grpc::ServerContext* sctx, const kvrpc::SplitRegionRequest* req,
                                    kvrpc::SplitRegionResponse* resp) {
  Status input = Status::ok();
  if (req->split_keys_size() == 0 || req->split_keys_size() > kMaxSplitKeys) {
    input = Status::invalid_argument(
        fmt::format("a split takes 1 to {} keys, got {}", kMaxSplitKeys, req->split_keys_size()));
  }
  for (int i = 0; input.is_ok() && i < req->split_keys_size(); ++i) {
    input = validate_key(req->split_keys(i), "split key");
    if (input.is_ok() && i > 0 && req->split_keys(i) <= req->split_keys(i - 1)) {
      input = Status::invalid_argument("split keys must be ascending, without repeats");
    }
  }
  if (input.is_ok() && !ids_) {
    return {grpc::StatusCode::FAILED_PRECONDITION, "splitting needs PD for the new ids (this store runs without --pd)"};
  }
  // The new ids: one region and one peer per current peer, per split key.
  int peers = 0;
  for (const auto& r : store_.regions()) {
    if (r.region.id() == req->context().region_id()) {
      peers = r.region.peers_size();
    }
  }
  KvCommand cmd;
  cmd.set_type(KvCommand::BATCH_SPLIT);
  if (input.is_ok() && peers > 0) {
    auto per_split = static_cast<std::uint32_t>(1 + peers);
    auto first = ids_(per_split * static_cast<std::uint32_t>(req->split_keys_size()));
    if (!first.is_ok()) {
      return {grpc::StatusCode::UNAVAILABLE, first.status().message()};
    }
    std::uint64_t next = *first;
    for (const auto& key : req->split_keys()) {
      auto* split = cmd.add_splits();
      split->set_split_key(key);
      split->set_new_region_id(next++);
      for (int p = 0; p < peers; ++p) {
        split->add_new_peer_ids(next++);
      }
    }
  }
  // A region this store lacks falls through: propose() answers RegionNotFound.
  auto done = std::make_shared<std::promise<grpc::Status>>();
  auto finished = done->get_future();
  replicate(
      kSplitRegion, *req, resp, {}, std::move(cmd), input,
      [resp](const KvCommandResult& r) {
        for (const auto& region : r.split_regions()) {
          *resp->add_regions() = region;
        }
      },
      [done](grpc::Status s) { done->set_value(std::move(s)); });
  if (finished.wait_until(deadline_of(sctx)) != std::future_status::ready) {
    return {grpc::StatusCode::DEADLINE_EXCEEDED, "the split did not finish before the deadline; it may still apply"};
  }
  return finished.get();
}

grpc::Status KvService::RawBatchGet(grpc::ServerContext* sctx, const kvrpc::RawBatchGetRequest* req,
                                    kvrpc::RawBatchGetResponse* resp) {
  std::vector<std::string> keys(req->keys().begin(), req->keys().end());
  Status input = validate_keys(keys);
  return linearizable_read(kRawBatchGet, sctx, *req, resp, keys, input, [&]() -> Status {
    RDB_ASSIGN_OR_RETURN(auto pairs, engine_.raw_batch_get(keys, kMaxResponseBytes));
    append_pairs(resp->mutable_pairs(), pairs);
    return Status::ok();
  });
}

void KvService::start_raw_put(const kvrpc::RawPutRequest& req, kvrpc::RawPutResponse* resp, Done done) {
  Status input = validate_key(req.key());
  if (input.is_ok()) {
    input = validate_value(req.value());
  }
  KvCommand cmd;
  cmd.set_type(KvCommand::RAW_PUT);
  cmd.add_keys(req.key());
  cmd.add_values(req.value());
  replicate(
      kRawPut, req, resp, {req.key()}, std::move(cmd), input, [](const KvCommandResult&) {}, std::move(done));
}

void KvService::start_raw_delete(const kvrpc::RawDeleteRequest& req, kvrpc::RawDeleteResponse* resp, Done done) {
  KvCommand cmd;
  cmd.set_type(KvCommand::RAW_DELETE);
  cmd.add_keys(req.key());
  replicate(
      kRawDelete, req, resp, {req.key()}, std::move(cmd), validate_key(req.key()), [](const KvCommandResult&) {},
      std::move(done));
}

grpc::ServerUnaryReactor* KvService::RawPut(grpc::CallbackServerContext* sctx, const kvrpc::RawPutRequest* req,
                                            kvrpc::RawPutResponse* resp) {
  return unary(sctx, &KvService::start_raw_put, req, resp);
}

grpc::ServerUnaryReactor* KvService::RawDelete(grpc::CallbackServerContext* sctx, const kvrpc::RawDeleteRequest* req,
                                               kvrpc::RawDeleteResponse* resp) {
  return unary(sctx, &KvService::start_raw_delete, req, resp);
}

grpc::ServerUnaryReactor* KvService::RawBatchPut(grpc::CallbackServerContext* sctx,
                                                 const kvrpc::RawBatchPutRequest* req,
                                                 kvrpc::RawBatchPutResponse* resp) {
  std::vector<std::string> keys;
  KvCommand cmd;
  cmd.set_type(KvCommand::RAW_BATCH_PUT);
  Status input = Status::ok();
  std::size_t bytes = 0;
  for (const auto& p : req->pairs()) {
    keys.push_back(p.key());
    cmd.add_keys(p.key());
    cmd.add_values(p.value());
    bytes += p.key().size() + p.value().size();
    if (input.is_ok()) {
      input = validate_value(p.value());
    }
  }
  if (input.is_ok()) {
    input = validate_keys(keys);
  }
  if (input.is_ok()) {
    input = validate_write_bytes(bytes);
  }
  grpc::ServerUnaryReactor* reactor = sctx->DefaultReactor();
  replicate(
      kRawBatchPut, *req, resp, std::move(keys), std::move(cmd), input, [](const KvCommandResult&) {},
      finisher(reactor));
  return reactor;
}

grpc::ServerUnaryReactor* KvService::RawBatchDelete(grpc::CallbackServerContext* sctx,
                                                    const kvrpc::RawBatchDeleteRequest* req,
                                                    kvrpc::RawBatchDeleteResponse* resp) {
  std::vector<std::string> keys(req->keys().begin(), req->keys().end());
  KvCommand cmd;
  cmd.set_type(KvCommand::RAW_BATCH_DELETE);
  *cmd.mutable_keys() = req->keys();
  Status input = validate_keys(keys);
  grpc::ServerUnaryReactor* reactor = sctx->DefaultReactor();
  replicate(
      kRawBatchDelete, *req, resp, std::move(keys), std::move(cmd), input, [](const KvCommandResult&) {},
      finisher(reactor));
  return reactor;
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
  grpc::ServerUnaryReactor* reactor = sctx->DefaultReactor();
  replicate(
      kRawDeleteRange, *req, resp, {req->start_key()}, std::move(cmd), input, [](const KvCommandResult&) {},
      finisher(reactor));
  return reactor;
}

void KvService::start_cas(const kvrpc::CompareAndSwapRequest& req, kvrpc::CompareAndSwapResponse* resp, Done done) {
  Status input = validate_key(req.key());
  if (input.is_ok() && !req.delete_()) {
    input = validate_value(req.new_value());
  }
  KvCommand cmd;
  cmd.set_type(KvCommand::CAS);
  cmd.add_keys(req.key());
  cmd.set_expected_version(req.expected_version());
  if (req.delete_()) {
    cmd.set_cas_delete(true);
  } else {
    cmd.add_values(req.new_value());
  }
  replicate(
      kCompareAndSwap, req, resp, {req.key()}, std::move(cmd), input,
      [resp](const KvCommandResult& r) {
        resp->set_succeeded(r.cas_succeeded());
        resp->set_version(r.cas_version());
        resp->set_current_found(r.cas_current_found());
        resp->set_current_value(r.cas_current_value());
      },
      std::move(done));
}

grpc::ServerUnaryReactor* KvService::CompareAndSwap(grpc::CallbackServerContext* sctx,
                                                    const kvrpc::CompareAndSwapRequest* req,
                                                    kvrpc::CompareAndSwapResponse* resp) {
  return unary(sctx, &KvService::start_cas, req, resp);
}

// One BatchCommands stream. Reads run on gRPC's threads; answers arrive from the
// Raft thread (or inline for bad input) and are packed into whatever response
// message is written next: one write in flight at a time, and everything that
// completed meanwhile goes out in the following one. The reactor deletes itself
// once the client stopped sending, every request was answered and every answer
// was written (or the stream broke).
class KvService::BatchStream final
    : public grpc::ServerBidiReactor<kvrpc::BatchCommandsRequest, kvrpc::BatchCommandsResponse> {
 public:
  explicit BatchStream(KvService& service) : service_(service) { StartRead(&in_); }

  void OnReadDone(bool ok) override {
    if (!ok) {
      std::lock_guard lock(mu_);
      reads_done_ = true;
      maybe_finish_locked();
      return;
    }
    auto batch = std::make_shared<kvrpc::BatchCommandsRequest>();
    batch->Swap(&in_);
    if (batch->request_ids_size() != batch->requests_size()) {
      std::lock_guard lock(mu_);
      reads_done_ = true;  // a malformed stream is not read further
      finish_status_ = {grpc::StatusCode::INVALID_ARGUMENT,
                        fmt::format("BatchCommandsRequest has {} requests but {} request_ids", batch->requests_size(),
                                    batch->request_ids_size())};
      maybe_finish_locked();
      return;
    }
    service_.batch_requests_->observe_value(static_cast<double>(batch->requests_size()));
    bool read_on = true;
    {
      std::lock_guard lock(mu_);
      outstanding_ += static_cast<std::size_t>(batch->requests_size());
      // Backpressure: with this many requests unanswered, stop reading until answers
      // drain; the client's sends then wait in gRPC's flow control, not in our memory.
      read_paused_ = outstanding_ >= service_.max_stream_requests_;
      read_on = !read_paused_;
    }
    if (read_on) {
      StartRead(&in_);
    }
    service_.dispatch_all(batch, this);
  }

  // Takes ownership of `out`, the answer to request `id`.
  void complete(std::uint64_t id, kvrpc::BatchCommandsResponse::Response* out, const grpc::Status& status) {
    out->set_status_code(static_cast<std::uint32_t>(status.error_code()));
    if (!status.ok()) {
      out->set_status_message(status.error_message());
    }
    bool resume_reading = false;
    {
      std::lock_guard lock(mu_);
      --outstanding_;
      if (read_paused_ && outstanding_ <= service_.max_stream_requests_ / 2) {
        read_paused_ = false;
        resume_reading = true;
      }
      if (broken_) {
        delete out;  // NOLINT(cppcoreguidelines-owning-memory): nobody is listening any more
      } else {
        pending_.add_request_ids(id);
        pending_.mutable_responses()->AddAllocated(out);
        if (!writing_) {
          start_write_locked();
        }
      }
      maybe_finish_locked();  // never finishes while reading is paused: no read has failed yet
    }
    if (resume_reading) {
      StartRead(&in_);
    }
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard lock(mu_);
    writing_ = false;
    if (!ok) {
      broken_ = true;
      pending_.Clear();
    } else if (pending_.responses_size() > 0) {
      start_write_locked();
    }
    maybe_finish_locked();
  }

  void OnDone() override { delete this; }  // NOLINT(cppcoreguidelines-owning-memory): reactor owns itself

 private:
  void start_write_locked() {
    out_.Clear();
    out_.Swap(&pending_);
    writing_ = true;
    StartWrite(&out_);
  }

  void maybe_finish_locked() {
    if (reads_done_ && outstanding_ == 0 && !writing_ && pending_.responses_size() == 0 && !finished_) {
      finished_ = true;
      Finish(finish_status_);
    }
  }

  KvService& service_;
  kvrpc::BatchCommandsRequest in_;  // only touched by the read path
  std::mutex mu_;
  kvrpc::BatchCommandsResponse pending_;  // answers not yet written
  kvrpc::BatchCommandsResponse out_;      // the message being written
  std::size_t outstanding_ = 0;           // requests read but not yet answered
  bool read_paused_ = false;              // backpressure: no read outstanding until answers drain
  bool reads_done_ = false;
  bool writing_ = false;
  bool broken_ = false;
  bool finished_ = false;
  grpc::Status finish_status_ = grpc::Status::OK;
};

void KvService::dispatch(const std::shared_ptr<const kvrpc::BatchCommandsRequest>& batch, int index,
                         BatchStream* stream) {
  const auto& sub = batch->requests(index);
  std::uint64_t id = batch->request_ids(index);
  auto* out = new kvrpc::BatchCommandsResponse::Response();  // owned by `stream` once answered
  // `batch` rides along so the request outlives its answer.
  Done done = [stream, id, out, batch](const grpc::Status& s) { stream->complete(id, out, s); };
  using Request = kvrpc::BatchCommandsRequest::Request;
  switch (sub.cmd_case()) {
    case Request::kRawGet:
      start_raw_get(sub.raw_get(), out->mutable_raw_get(), std::move(done));
      return;
    case Request::kRawPut:
      start_raw_put(sub.raw_put(), out->mutable_raw_put(), std::move(done));
      return;
    case Request::kRawDelete:
      start_raw_delete(sub.raw_delete(), out->mutable_raw_delete(), std::move(done));
      return;
    case Request::kGet:
      start_get(sub.get(), out->mutable_get(), std::move(done));
      return;
    case Request::kCompareAndSwap:
      start_cas(sub.compare_and_swap(), out->mutable_compare_and_swap(), std::move(done));
      return;
    case Request::CMD_NOT_SET:
      break;
  }
  done({grpc::StatusCode::INVALID_ARGUMENT, fmt::format("batch request {} names no command this store knows", id)});
}

void KvService::dispatch_all(const std::shared_ptr<const kvrpc::BatchCommandsRequest>& batch, BatchStream* stream) {
  // Valid raw puts routed alike (region, epoch, peer) share one Raft entry: one log
  // record, one MsgApp entry and one apply batch for the group instead of one each.
  // Each put is still answered on its own, with the group's outcome. Anything else
  // runs on its own, exactly as its unary RPC.
  using Route = std::tuple<std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t>;
  std::map<Route, std::vector<int>> groups;
  for (int i = 0; i < batch->requests_size(); ++i) {
    const auto& sub = batch->requests(i);
    if (sub.has_raw_put() && validate_key(sub.raw_put().key()).is_ok() &&
        validate_value(sub.raw_put().value()).is_ok()) {
      const kvrpc::Context& c = sub.raw_put().context();
      groups[{c.region_id(), c.region_epoch().conf_ver(), c.region_epoch().version(), c.peer().id()}].push_back(i);
    } else {
      dispatch(batch, i, stream);
    }
  }
  for (auto& [route, members] : groups) {
    std::size_t from = 0;
    while (from < members.size()) {
      // Cut groups by count and bytes so one entry stays well inside message limits.
      std::size_t to = from;
      std::size_t bytes = 0;
      while (to < members.size() && to - from < kMaxBatchKeys && bytes < kMaxGroupedPutBytes) {
        bytes += batch->requests(members[to]).raw_put().value().size();
        ++to;
      }
      if (to - from == 1) {
        dispatch(batch, members[from], stream);
      } else {
        put_group(
            batch,
            {members.begin() + static_cast<std::ptrdiff_t>(from), members.begin() + static_cast<std::ptrdiff_t>(to)},
            stream);
      }
      from = to;
    }
  }
}

void KvService::put_group(const std::shared_ptr<const kvrpc::BatchCommandsRequest>& batch, std::vector<int> members,
                          BatchStream* stream) {
  KvCommand cmd;
  cmd.set_type(KvCommand::RAW_BATCH_PUT);
  std::vector<std::string> keys;
  keys.reserve(members.size());
  for (int i : members) {
    const auto& put = batch->requests(i).raw_put();
    keys.push_back(put.key());
    cmd.add_keys(put.key());
    cmd.add_values(put.value());
  }
  // The group's outcome, copied into every member's answer.
  auto outcome = std::make_shared<kvrpc::RawPutResponse>();
  const auto& first = batch->requests(members.front()).raw_put();
  auto count = static_cast<std::uint64_t>(members.size());
  Done done = [batch, members = std::move(members), outcome, stream](const grpc::Status& s) {
    for (int i : members) {
      auto* out = new kvrpc::BatchCommandsResponse::Response();  // owned by `stream` once answered
      *out->mutable_raw_put() = *outcome;
      stream->complete(batch->request_ids(i), out, s);
    }
  };
  replicate(
      kRawPut, first, outcome.get(), std::move(keys), std::move(cmd), Status::ok(), [](const KvCommandResult&) {},
      std::move(done), count);
}

grpc::ServerBidiReactor<kvrpc::BatchCommandsRequest, kvrpc::BatchCommandsResponse>* KvService::BatchCommands(
    grpc::CallbackServerContext*) {
  return new BatchStream(*this);  // NOLINT(cppcoreguidelines-owning-memory): deletes itself in OnDone
}

}  // namespace rdb
