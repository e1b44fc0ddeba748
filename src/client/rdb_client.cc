// The RdbClient implementation: routing, retries, and the outcome rules of
// include/rdb/client.h.
#include <fmt/format.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "client/async_runner.h"
#include "client/pd_client.h"
#include "client/region_cache.h"
#include "client/slow_stores.h"
#include "client/store_stream.h"
#include "client/tso_batcher.h"
#include "client/txn_sender.h"
#include "common/address.h"
#include "common/grpc_setup.h"
#include "common/limits.h"
#include "common/parse.h"
#include "kvrpc.grpc.pb.h"
#include "pdpb.grpc.pb.h"
#include "rdb/client.h"

namespace rdb {
namespace {

using Clock = std::chrono::steady_clock;

// Reads are retried freely. A write is never re-sent once it may have reached a
// store — not even a raw put or delete: re-applying one after another client's
// write to the same key would let an old value reappear (the chaos suite caught
// exactly that: put A, put B, then A's retry, so readers saw A, B, A). Like etcd's
// client, a write is retried only when it certainly was not sent or not executed.
enum class Kind {
  kRead,   // safe to retry; running out of time is DEADLINE_EXCEEDED
  kWrite,  // never re-sent once it may have reached a store; then UNDETERMINED
};

std::chrono::system_clock::time_point to_system(Clock::time_point t) {
  return std::chrono::system_clock::now() + std::chrono::duration_cast<std::chrono::system_clock::duration>(
                                                std::max(t - Clock::now(), Clock::duration::zero()));
}

void sleep_backoff(std::chrono::milliseconds& backoff, Clock::time_point deadline) {
  auto until = std::min(Clock::now() + backoff, deadline);
  std::this_thread::sleep_until(until);  // retry back-off, bounded by the call's deadline
  backoff = std::min(backoff * 2, std::chrono::milliseconds(500));
}

// How one attempt went: the gRPC status, and whether a failed request may have
// reached the store (false only when it certainly was not sent).
struct Attempt {
  grpc::Status status;
  bool maybe_sent = true;
  bool hung = false;  // the store answered nothing for the attempt timeout
};

// The point requests that travel in BatchCommands messages.
using BatchRequest = kvrpc::BatchCommandsRequest::Request;
using BatchResponse = kvrpc::BatchCommandsResponse::Response;
void wrap(const kvrpc::RawGetRequest& r, BatchRequest* b) {
  *b->mutable_raw_get() = r;
}
void wrap(const kvrpc::RawPutRequest& r, BatchRequest* b) {
  *b->mutable_raw_put() = r;
}
void wrap(const kvrpc::RawDeleteRequest& r, BatchRequest* b) {
  *b->mutable_raw_delete() = r;
}
void wrap(const kvrpc::GetRequest& r, BatchRequest* b) {
  *b->mutable_get() = r;
}
void wrap(const kvrpc::CompareAndSwapRequest& r, BatchRequest* b) {
  *b->mutable_compare_and_swap() = r;
}
void unwrap(BatchResponse& b, kvrpc::RawGetResponse* r) {
  r->Swap(b.mutable_raw_get());
}
void unwrap(BatchResponse& b, kvrpc::RawPutResponse* r) {
  r->Swap(b.mutable_raw_put());
}
void unwrap(BatchResponse& b, kvrpc::RawDeleteResponse* r) {
  r->Swap(b.mutable_raw_delete());
}
void unwrap(BatchResponse& b, kvrpc::GetResponse* r) {
  r->Swap(b.mutable_get());
}
void unwrap(BatchResponse& b, kvrpc::CompareAndSwapResponse* r) {
  r->Swap(b.mutable_compare_and_swap());
}

// Where a request goes, and what must hold for it to go there in one piece.
struct Routing {
  std::string key;      // to the region holding this key...
  bool before = false;  // ...or holding the greatest keys below it (reverse scans)
  // When set, the request must fit its region: all these keys inside it, and the
  // range's exclusive end (if any) not past the region's end. A region that no longer
  // holds it all (it split) sets *regroup and the call returns at once: the caller
  // cuts the request anew.
  const std::vector<std::string>* keys = nullptr;
  std::optional<std::string> range_end;
  bool* regroup = nullptr;
};

bool in_region(const metapb::Region& r, const std::string& key) {
  return key >= r.start_key() && (r.end_key().empty() || key < r.end_key());
}

RegionInfo to_region_info(const metapb::Region& region, const metapb::Peer& leader) {
  auto peer_info = [](const metapb::Peer& p) {
    metapb::PeerRole role = p.is_learner() ? metapb::LEARNER : p.role();
    std::string name = metapb::PeerRole_Name(role);
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    return PeerInfo{p.id(), p.store_id(), p.is_learner(), name.empty() ? "voter" : name};
  };
  RegionInfo ri;
  ri.id = region.id();
  ri.start_key = region.start_key();
  ri.end_key = region.end_key();
  ri.conf_ver = region.region_epoch().conf_ver();
  ri.version = region.region_epoch().version();
  ri.leader = peer_info(leader);
  for (const auto& p : region.peers()) {
    ri.peers.push_back(peer_info(p));
  }
  return ri;
}

template <typename Req>
concept Batchable = requires(const Req& r, BatchRequest* b) {
  wrap(r, b);
};

class ClientImpl final : public RdbClient, public TxnSender {
 public:
  ClientImpl(ClientOptions options, std::shared_ptr<grpc::ChannelCredentials> creds)
      : options_(std::move(options)), creds_(std::move(creds)) {
    if (!options_.pd_endpoints.empty()) {
      // connect() checked the endpoints, so this cannot fail.
      pd_ = std::move(PdClient::create(options_.pd_endpoints, creds_, kMaxGrpcMessageBytes)).value();
      tso_ = std::make_unique<TsoBatcher>(
          [pd = pd_.get()] { return pd->current_channel(); },
          [pd = pd_.get()](const auto& ch, const std::string& leader) { pd->member_failed(ch, leader); });
    }
    async_ = std::make_unique<AsyncRunner>(options_.async_threads);
  }

  // Ends the asynchronous calls in flight before anything they use goes: the timer first
  // (its checks read the streams), then the streams (cancelling them completes every point
  // call waiting there), then the pool (it runs what was posted; retries see the shutdown).
  ~ClientImpl() override {
    shutting_down_ = true;
    async_->stop_timer();
    // Destroyed outside the lock: their calls' last callbacks may resend a call (which sees
    // shutting_down_ and goes to the pool), and stream_for() refuses new streams from now on.
    decltype(streams_) doomed;
    {
      std::lock_guard lock(channels_mu_);
      doomed.swap(streams_);
    }
    doomed.clear();
    async_.reset();
  }

  Status raw_put(const std::string& key, const std::string& value) override {
    RDB_RETURN_IF_ERROR(validate_key(key));
    RDB_RETURN_IF_ERROR(validate_value(value));
    kvrpc::RawPutRequest req;
    req.set_key(key);
    req.set_value(value);
    return execute<kvrpc::RawPutResponse>(key, Kind::kWrite, req, &kvrpc::Kv::Stub::RawPut).status();
  }

  Result<std::optional<std::string>> raw_get(const std::string& key) override {
    RDB_RETURN_IF_ERROR(validate_key(key));
    kvrpc::RawGetRequest req;
    req.set_key(key);
    RDB_ASSIGN_OR_RETURN(auto resp, execute<kvrpc::RawGetResponse>(key, Kind::kRead, req, &kvrpc::Kv::Stub::RawGet));
    if (resp.not_found()) {
      return std::optional<std::string>();
    }
    return std::optional<std::string>(std::move(*resp.mutable_value()));
  }

  Status raw_delete(const std::string& key) override {
    RDB_RETURN_IF_ERROR(validate_key(key));
    kvrpc::RawDeleteRequest req;
    req.set_key(key);
    return execute<kvrpc::RawDeleteResponse>(key, Kind::kWrite, req, &kvrpc::Kv::Stub::RawDelete).status();
  }

  Result<std::vector<KeyValue>> raw_scan(const std::string& start, const std::string& end,
                                         const ScanOptions& o) override {
    RDB_RETURN_IF_ERROR(validate_scan_limit(o.limit));
    RDB_RETURN_IF_ERROR(validate_range(start, end, false));
    kvrpc::RawScanRequest req;
    req.set_start_key(start);
    req.set_end_key(end);
    req.set_reverse(o.reverse);
    req.set_key_only(o.keys_only);
    std::vector<KeyValue> out;
    for (;;) {
      // A store cuts a response at kMaxResponseBytes: continue after (reverse: before)
      // the last key. It stops at its region's boundary: continue in the next region.
      req.set_limit(o.limit - static_cast<std::uint32_t>(out.size()));
      Routing routing{o.reverse ? req.end_key() : req.start_key(), o.reverse, nullptr, std::nullopt, nullptr};
      RDB_ASSIGN_OR_RETURN(auto resp,
                           execute<kvrpc::RawScanResponse>(routing, Kind::kRead, req, &kvrpc::Kv::Stub::RawScan));
      auto part = to_pairs(*resp.mutable_kvs());
      bool room = out.size() + part.size() < o.limit;
      bool more = resp.truncated() && !part.empty() && room;
      if (more && !o.reverse) {
        req.set_start_key(part.back().key + '\0');
      } else if (more) {
        req.set_end_key(part.back().key);
      } else if (resp.region_boundary() && room) {
        // The next region must lie beyond this one: a store that says otherwise would
        // send the scan round in circles.
        bool onward =
            o.reverse ? (req.end_key().empty() || resp.next_key() < req.end_key()) : resp.next_key() > req.start_key();
        if (!onward) {
          return Status::internal(fmt::format("a store answered a scan with a continuation key that does not move on"));
        }
        more = true;
        (o.reverse ? req.mutable_end_key() : req.mutable_start_key())->assign(resp.next_key());
      }
      std::move(part.begin(), part.end(), std::back_inserter(out));
      if (!more) {
        return out;
      }
    }
  }

  Result<std::vector<KeyValue>> raw_batch_get(const std::vector<std::string>& keys) override {
    RDB_RETURN_IF_ERROR(validate_batch_size(keys.size()));
    for (const auto& k : keys) {
      RDB_RETURN_IF_ERROR(validate_key(k));
    }
    std::map<std::string, std::string> found;
    RDB_RETURN_IF_ERROR(per_region(keys, Kind::kRead, [&](const std::vector<std::string>& part, bool* regroup) {
      kvrpc::RawBatchGetRequest req;
      for (const auto& k : part) {
        req.add_keys(k);
      }
      Routing routing{part.front(), false, &part, std::nullopt, regroup};
      RDB_ASSIGN_OR_RETURN(
          auto resp, execute<kvrpc::RawBatchGetResponse>(routing, Kind::kRead, req, &kvrpc::Kv::Stub::RawBatchGet));
      for (auto& kv : *resp.mutable_pairs()) {
        found[kv.key()] = std::move(*kv.mutable_value());
      }
      return Status::ok();
    }));
    std::vector<KeyValue> out;
    for (const auto& k : keys) {
      if (auto it = found.find(k); it != found.end()) {
        out.push_back({k, it->second});
      }
    }
    return out;
  }

  Status raw_batch_put(const std::vector<KeyValue>& pairs) override {
    RDB_RETURN_IF_ERROR(validate_batch_size(pairs.size()));
    std::size_t bytes = 0;
    for (const auto& p : pairs) {
      bytes += p.key.size() + p.value.size();
    }
    RDB_RETURN_IF_ERROR(validate_write_bytes(bytes));
    std::map<std::string, const std::string*> value_of;
    std::vector<std::string> keys;
    for (const auto& p : pairs) {
      RDB_RETURN_IF_ERROR(validate_key(p.key));
      RDB_RETURN_IF_ERROR(validate_value(p.value));
      value_of[p.key] = &p.value;  // the last pair for a key wins, as in one batch
      keys.push_back(p.key);
    }
    return per_region(keys, Kind::kWrite, [&](const std::vector<std::string>& part, bool* regroup) {
      kvrpc::RawBatchPutRequest req;
      for (const auto& k : part) {
        auto* kv = req.add_pairs();
        kv->set_key(k);
        kv->set_value(*value_of[k]);
      }
      Routing routing{part.front(), false, &part, std::nullopt, regroup};
      return execute<kvrpc::RawBatchPutResponse>(routing, Kind::kWrite, req, &kvrpc::Kv::Stub::RawBatchPut).status();
    });
  }

  Status raw_batch_delete(const std::vector<std::string>& keys) override {
    RDB_RETURN_IF_ERROR(validate_batch_size(keys.size()));
    for (const auto& k : keys) {
      RDB_RETURN_IF_ERROR(validate_key(k));
    }
    return per_region(keys, Kind::kWrite, [&](const std::vector<std::string>& part, bool* regroup) {
      kvrpc::RawBatchDeleteRequest req;
      for (const auto& k : part) {
        req.add_keys(k);
      }
      Routing routing{part.front(), false, &part, std::nullopt, regroup};
      return execute<kvrpc::RawBatchDeleteResponse>(routing, Kind::kWrite, req, &kvrpc::Kv::Stub::RawBatchDelete)
          .status();
    });
  }

  Status raw_delete_range(const std::string& start, const std::string& end) override {
    RDB_RETURN_IF_ERROR(validate_key(start, "start key"));
    RDB_RETURN_IF_ERROR(validate_range(start, end, true));
    // Region by region: [from, min(end, region end)).
    const Clock::time_point deadline = Clock::now() + options_.timeout;
    std::string from = start;
    std::size_t done = 0;
    while (from < end) {
      auto route = locate(from, deadline, false);
      if (!route.is_ok()) {
        return partial(route.status(), done);
      }
      const std::string& region_end = route->region.end_key();
      std::string to = region_end.empty() || end <= region_end ? end : region_end;
      kvrpc::RawDeleteRangeRequest req;
      req.set_start_key(from);
      req.set_end_key(to);
      bool regroup = false;
      Routing routing{from, false, nullptr, to, &regroup};
      Status s =
          execute<kvrpc::RawDeleteRangeResponse>(routing, Kind::kWrite, req, &kvrpc::Kv::Stub::RawDeleteRange).status();
      if (regroup) {
        continue;  // the region split meanwhile: cut again
      }
      if (!s.is_ok()) {
        return partial(s, done);
      }
      ++done;
      from = to;
    }
    return Status::ok();
  }

  Result<VersionedValue> get(const std::string& key) override {
    RDB_RETURN_IF_ERROR(validate_key(key));
    kvrpc::GetRequest req;
    req.set_key(key);
    RDB_ASSIGN_OR_RETURN(auto resp, execute<kvrpc::GetResponse>(key, Kind::kRead, req, &kvrpc::Kv::Stub::Get));
    VersionedValue v;
    v.found = !resp.not_found();
    v.value = std::move(*resp.mutable_value());
    v.version = resp.version();
    return v;
  }

  Result<CasResult> cas(const std::string& key, std::uint64_t expected_version,
                        const std::optional<std::string>& new_value) override {
    RDB_RETURN_IF_ERROR(validate_key(key));
    kvrpc::CompareAndSwapRequest req;
    req.set_key(key);
    req.set_expected_version(expected_version);
    if (new_value) {
      RDB_RETURN_IF_ERROR(validate_value(*new_value));
      req.set_new_value(*new_value);
    } else {
      req.set_delete_(true);
    }
    RDB_ASSIGN_OR_RETURN(
        auto resp, execute<kvrpc::CompareAndSwapResponse>(key, Kind::kWrite, req, &kvrpc::Kv::Stub::CompareAndSwap));
    CasResult r;
    r.succeeded = resp.succeeded();
    r.version = resp.version();
    r.current_found = resp.current_found();
    r.current_value = std::move(*resp.mutable_current_value());
    return r;
  }

  Result<ClusterStatus> cluster_status() override {
    if (!pd_) {
      return Status::invalid_argument("cluster status needs a PD endpoint (--pd)");
    }
    const Clock::time_point deadline = Clock::now() + options_.timeout;
    RDB_ASSIGN_OR_RETURN(std::uint64_t cid, cluster_id(deadline));
    pdpb::GetClusterStatusResponse resp;
    RDB_RETURN_IF_ERROR(pd_->call(&pdpb::PD::Stub::GetClusterStatus, pdpb::GetClusterStatusRequest(), &resp, deadline));
    if (resp.header().has_error()) {
      return Status::unavailable(fmt::format("PD: {}", resp.header().error().message()));
    }
    {
      ClusterStatus out;
      out.cluster_id = cid;
      out.max_replicas = resp.max_replicas();
      for (const auto& st : resp.stores()) {
        StoreInfo si;
        si.id = st.store().id();
        si.address = st.store().address();
        si.status_address = st.store().status_address();
        si.state = st.store().state() == metapb::TOMBSTONE ? "tombstone"
                   : st.store().state() == metapb::OFFLINE ? "offline"
                                                           : (st.up() ? "up" : "down");
        si.region_count = st.region_count();
        si.leader_count = st.leader_count();
        si.last_heartbeat_age_ms = st.last_heartbeat_age_ms();
        si.capacity_bytes = st.capacity_bytes();
        si.available_bytes = st.available_bytes();
        si.region_size = st.region_size();
        out.stores.push_back(std::move(si));
      }
      for (const auto& info : resp.regions()) {
        out.regions.push_back(to_region_info(info.region(), info.leader()));
        out.regions.back().approximate_size = info.approximate_size();
        out.regions.back().approximate_keys = info.approximate_keys();
      }
      return out;
    }
  }

  Status remove_store(std::uint64_t store_id) override {
    if (!pd_) {
      return Status::invalid_argument("removing a store needs a PD endpoint (--pd)");
    }
    pdpb::RemoveStoreRequest req;
    req.set_store_id(store_id);
    pdpb::RemoveStoreResponse resp;
    RDB_RETURN_IF_ERROR(pd_->call(&pdpb::PD::Stub::RemoveStore, req, &resp, Clock::now() + options_.timeout));
    if (resp.header().has_error()) {
      return Status::invalid_argument(resp.header().error().message());
    }
    return Status::ok();
  }

  Result<GcSafePoint> update_gc_safe_point(std::uint64_t ts) override {
    if (!pd_) {
      return Status::invalid_argument("the GC safe point is PD's: it needs a PD endpoint (--pd)");
    }
    pdpb::UpdateGcSafePointRequest req;
    req.set_safe_point(ts);
    pdpb::UpdateGcSafePointResponse resp;
    RDB_RETURN_IF_ERROR(pd_->call(&pdpb::PD::Stub::UpdateGcSafePoint, req, &resp, Clock::now() + options_.timeout));
    if (resp.header().has_error()) {
      return Status::invalid_argument(resp.header().error().message());
    }
    return GcSafePoint{resp.previous_safe_point(), resp.safe_point()};
  }

  Status move_peer(std::uint64_t region_id, std::uint64_t from_store, std::uint64_t to_store) override {
    if (!pd_) {
      return Status::invalid_argument("moving a replica needs a PD endpoint (--pd)");
    }
    pdpb::MovePeerRequest req;
    req.set_region_id(region_id);
    req.set_from_store(from_store);
    req.set_to_store(to_store);
    pdpb::MovePeerResponse resp;
    RDB_RETURN_IF_ERROR(pd_->call(&pdpb::PD::Stub::MovePeer, req, &resp, Clock::now() + options_.timeout));
    if (resp.header().has_error()) {
      return Status::invalid_argument(resp.header().error().message());
    }
    return Status::ok();
  }

  static std::vector<PdMemberInfo> members_of(const google::protobuf::RepeatedPtrField<pdpb::Member>& members,
                                              std::uint64_t leader_id) {
    std::vector<PdMemberInfo> out;
    for (const auto& m : members) {
      out.push_back({m.name(), m.member_id(), m.address(), m.member_id() == leader_id && leader_id != 0});
    }
    return out;
  }

  Result<std::vector<PdMemberInfo>> pd_members() override {
    if (!pd_) {
      return Status::invalid_argument("listing PD members needs a PD endpoint (--pd)");
    }
    pdpb::GetMembersResponse resp;
    RDB_RETURN_IF_ERROR(
        pd_->call(&pdpb::PD::Stub::GetMembers, pdpb::GetMembersRequest(), &resp, Clock::now() + options_.timeout));
    pd_->learn_members(resp.members());
    return members_of(resp.members(), resp.leader().member_id());
  }

  // After a change, the members with the leader marked (the change's answer came from it).
  Result<std::vector<PdMemberInfo>> members_after_change(
      const pdpb::ResponseHeader& header, const google::protobuf::RepeatedPtrField<pdpb::Member>& members) {
    if (header.has_error() && header.error().type() != pdpb::OK) {
      return header.error().type() == pdpb::INVALID_ARGUMENT ? Status::invalid_argument(header.error().message())
                                                             : Status::unavailable(header.error().message());
    }
    pd_->learn_members(members);
    auto answered = pd_->current();
    std::vector<PdMemberInfo> out = members_of(members, 0);
    for (auto& m : out) {
      m.leader = m.address == answered;
    }
    return out;
  }

  Result<std::vector<PdMemberInfo>> add_pd_member(const std::string& name, const std::string& address) override {
    if (!pd_) {
      return Status::invalid_argument("adding a PD member needs a PD endpoint (--pd)");
    }
    if (name.empty()) {
      return Status::invalid_argument("a PD member needs a name");
    }
    RDB_RETURN_IF_ERROR(parse_host_port(address).status().with_context("PD member address"));
    pdpb::AddMemberRequest req;
    req.set_name(name);
    req.set_address(address);
    pdpb::AddMemberResponse resp;
    RDB_RETURN_IF_ERROR(pd_->call(&pdpb::PD::Stub::AddMember, req, &resp, Clock::now() + options_.timeout));
    return members_after_change(resp.header(), resp.members());
  }

  Result<std::vector<PdMemberInfo>> remove_pd_member(const std::string& name) override {
    if (!pd_) {
      return Status::invalid_argument("removing a PD member needs a PD endpoint (--pd)");
    }
    pdpb::RemoveMemberRequest req;
    req.set_name(name);
    pdpb::RemoveMemberResponse resp;
    RDB_RETURN_IF_ERROR(pd_->call(&pdpb::PD::Stub::RemoveMember, req, &resp, Clock::now() + options_.timeout));
    return members_after_change(resp.header(), resp.members());
  }

  Result<std::vector<RegionInfo>> split(const std::vector<std::string>& keys) override {
    if (keys.empty()) {
      return Status::invalid_argument("give at least one split key");
    }
    for (const auto& k : keys) {
      RDB_RETURN_IF_ERROR(validate_key(k, "split key"));
    }
    std::vector<std::string> sorted = keys;
    std::sort(sorted.begin(), sorted.end());
    sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
    const Clock::time_point deadline = Clock::now() + options_.timeout;
    std::map<std::string, RegionInfo> result;  // by start key
    RDB_RETURN_IF_ERROR(per_region(sorted, Kind::kWrite, [&](const std::vector<std::string>& part, bool* regroup) {
      auto route = locate(part.front(), deadline, false);
      if (!route.is_ok()) {
        return route.status();
      }
      kvrpc::SplitRegionRequest req;
      for (const auto& k : part) {
        if (k != route->region.start_key()) {  // a key that starts a region needs nothing
          req.add_split_keys(k);
        }
      }
      if (req.split_keys_size() == 0) {
        result[route->region.start_key()] = to_region_info(route->region, route->leader);
        return Status::ok();
      }
      std::vector<std::string> must_fit(req.split_keys().begin(), req.split_keys().end());
      Routing routing{part.front(), false, &must_fit, std::nullopt, regroup};
      RDB_ASSIGN_OR_RETURN(
          auto resp, execute<kvrpc::SplitRegionResponse>(routing, Kind::kWrite, req, &kvrpc::Kv::Stub::SplitRegion));
      // The new regions' leaders start on the splitting leader's store.
      std::vector<RegionRoute> routes;
      for (const auto& r : resp.regions()) {
        metapb::Peer here = route->leader;
        for (const auto& p : r.peers()) {
          if (p.store_id() == route->leader.store_id()) {
            here = p;
          }
        }
        result[r.start_key()] = to_region_info(r, here);
        routes.push_back(RegionRoute{r, here, route->store_addr});
      }
      cache_.replace(route->region.id(), std::move(routes));
      return Status::ok();
    }));
    std::vector<RegionInfo> out;
    for (auto& [start, r] : result) {
      out.push_back(std::move(r));
    }
    return out;
  }

  // ---- asynchronous calls: point calls on the stores' streams, the rest on the pool
  void raw_put_async(std::string key, std::string value, StatusCallback done) override {
    if (Status s = validate_key(key); !s.is_ok() || !(s = validate_value(value)).is_ok()) {
      return fail_async(std::move(done), s);
    }
    kvrpc::RawPutRequest req;
    req.set_key(std::move(key));
    req.set_value(std::move(value));
    execute_async<kvrpc::RawPutResponse>(
        Kind::kWrite, std::move(req), &kvrpc::Kv::Stub::RawPut,
        [done = std::move(done)](const Result<kvrpc::RawPutResponse>& r) { done(r.status()); });
  }
  void raw_get_async(std::string key, Callback<std::optional<std::string>> done) override {
    if (Status s = validate_key(key); !s.is_ok()) {
      return fail_async(std::move(done), s);
    }
    kvrpc::RawGetRequest req;
    req.set_key(std::move(key));
    execute_async<kvrpc::RawGetResponse>(Kind::kRead, std::move(req), &kvrpc::Kv::Stub::RawGet,
                                         [done = std::move(done)](Result<kvrpc::RawGetResponse> r) {
                                           if (!r.is_ok()) {
                                             return done(r.status());
                                           }
                                           done(r->not_found()
                                                    ? std::optional<std::string>()
                                                    : std::optional<std::string>(std::move(*r->mutable_value())));
                                         });
  }
  void raw_delete_async(std::string key, StatusCallback done) override {
    if (Status s = validate_key(key); !s.is_ok()) {
      return fail_async(std::move(done), s);
    }
    kvrpc::RawDeleteRequest req;
    req.set_key(std::move(key));
    execute_async<kvrpc::RawDeleteResponse>(
        Kind::kWrite, std::move(req), &kvrpc::Kv::Stub::RawDelete,
        [done = std::move(done)](const Result<kvrpc::RawDeleteResponse>& r) { done(r.status()); });
  }
  void get_async(std::string key, Callback<VersionedValue> done) override {
    if (Status s = validate_key(key); !s.is_ok()) {
      return fail_async(std::move(done), s);
    }
    kvrpc::GetRequest req;
    req.set_key(std::move(key));
    execute_async<kvrpc::GetResponse>(
        Kind::kRead, std::move(req), &kvrpc::Kv::Stub::Get, [done = std::move(done)](Result<kvrpc::GetResponse> r) {
          if (!r.is_ok()) {
            return done(r.status());
          }
          done(VersionedValue{!r->not_found(), std::move(*r->mutable_value()), r->version()});
        });
  }
  void cas_async(std::string key, std::uint64_t expected_version, std::optional<std::string> new_value,
                 Callback<CasResult> done) override {
    Status s = validate_key(key);
    if (s.is_ok() && new_value) {
      s = validate_value(*new_value);
    }
    if (!s.is_ok()) {
      return fail_async(std::move(done), s);
    }
    kvrpc::CompareAndSwapRequest req;
    req.set_key(std::move(key));
    req.set_expected_version(expected_version);
    if (new_value) {
      req.set_new_value(std::move(*new_value));
    } else {
      req.set_delete_(true);
    }
    execute_async<kvrpc::CompareAndSwapResponse>(
        Kind::kWrite, std::move(req), &kvrpc::Kv::Stub::CompareAndSwap,
        [done = std::move(done)](Result<kvrpc::CompareAndSwapResponse> r) {
          if (!r.is_ok()) {
            return done(r.status());
          }
          done(CasResult{r->succeeded(), r->version(), r->current_found(), std::move(*r->mutable_current_value())});
        });
  }
  void raw_scan_async(std::string start, std::string end, ScanOptions options,
                      Callback<std::vector<KeyValue>> done) override {
    on_pool([this, start = std::move(start), end = std::move(end), options] { return raw_scan(start, end, options); },
            std::move(done));
  }
  void raw_batch_get_async(std::vector<std::string> keys, Callback<std::vector<KeyValue>> done) override {
    on_pool([this, keys = std::move(keys)] { return raw_batch_get(keys); }, std::move(done));
  }
  void raw_batch_put_async(std::vector<KeyValue> pairs, StatusCallback done) override {
    on_pool([this, pairs = std::move(pairs)] { return raw_batch_put(pairs); }, std::move(done));
  }
  void raw_batch_delete_async(std::vector<std::string> keys, StatusCallback done) override {
    on_pool([this, keys = std::move(keys)] { return raw_batch_delete(keys); }, std::move(done));
  }
  void raw_delete_range_async(std::string start, std::string end, StatusCallback done) override {
    on_pool([this, start = std::move(start), end = std::move(end)] { return raw_delete_range(start, end); },
            std::move(done));
  }
  void begin_async(Callback<std::unique_ptr<Transaction>> done) override {
    on_pool([this] { return begin(); }, std::move(done));
  }
  void snapshot_at_async(std::uint64_t ts, Callback<std::unique_ptr<Transaction>> done) override {
    on_pool([this, ts] { return snapshot_at(ts); }, std::move(done));
  }
  void open_change_feed_async(std::string start, std::string end, bool with_prev,
                              Callback<std::unique_ptr<ChangeFeed>> done) override {
    on_pool([this, start = std::move(start), end = std::move(end),
             with_prev] { return open_change_feed(start, end, with_prev); },
            std::move(done));
  }
  void update_gc_safe_point_async(std::uint64_t ts, Callback<GcSafePoint> done) override {
    on_pool([this, ts] { return update_gc_safe_point(ts); }, std::move(done));
  }
  void cluster_status_async(Callback<ClusterStatus> done) override {
    on_pool([this] { return cluster_status(); }, std::move(done));
  }
  void remove_store_async(std::uint64_t store_id, StatusCallback done) override {
    on_pool([this, store_id] { return remove_store(store_id); }, std::move(done));
  }
  void move_peer_async(std::uint64_t region_id, std::uint64_t from_store, std::uint64_t to_store,
                       StatusCallback done) override {
    on_pool([this, region_id, from_store, to_store] { return move_peer(region_id, from_store, to_store); },
            std::move(done));
  }
  void pd_members_async(Callback<std::vector<PdMemberInfo>> done) override {
    on_pool([this] { return pd_members(); }, std::move(done));
  }
  void add_pd_member_async(std::string name, std::string address, Callback<std::vector<PdMemberInfo>> done) override {
    on_pool([this, name = std::move(name), address = std::move(address)] { return add_pd_member(name, address); },
            std::move(done));
  }
  void remove_pd_member_async(std::string name, Callback<std::vector<PdMemberInfo>> done) override {
    on_pool([this, name = std::move(name)] { return remove_pd_member(name); }, std::move(done));
  }
  void split_async(std::vector<std::string> keys, Callback<std::vector<RegionInfo>> done) override {
    on_pool([this, keys = std::move(keys)] { return split(keys); }, std::move(done));
  }
  // For transactions and change feeds (TxnSender): their asynchronous calls run here.
  void post(std::function<void()> task) override { async_->post(std::move(task)); }

  void get_tso_async(std::uint32_t count, std::function<void(Result<std::uint64_t>)> done) override {
    if (!tso_) {
      done(Status::invalid_argument("get_tso needs a PD endpoint (ClientOptions::pd_endpoints is empty)"));
      return;
    }
    auto deadline = Clock::now() + options_.timeout;
    if (auto cid = cluster_id(deadline); !cid.is_ok()) {
      done(cid.status());
      return;
    }
    tso_->get_async(count, deadline, std::move(done));
  }

  // ---- transactions (TxnSender; the logic is in transaction.cc)
  Result<std::unique_ptr<Transaction>> begin() override {
    RDB_ASSIGN_OR_RETURN(std::uint64_t start_ts, get_tso(1));
    return make_transaction(*this, start_ts, options_.txn_one_pc);
  }
  Result<std::unique_ptr<Transaction>> snapshot_at(std::uint64_t ts) override {
    if (ts == 0) {
      return Status::invalid_argument("a snapshot needs a timestamp (0 given)");
    }
    RDB_ASSIGN_OR_RETURN(std::uint64_t now, get_tso(1));
    if (ts > now) {
      // A read from the future would also hold every later 1PC commit above it.
      return Status::invalid_argument(fmt::format("the snapshot timestamp {} is in the future (PD is at {})", ts, now));
    }
    return make_read_only_transaction(*this, ts);
  }
  Result<std::unique_ptr<ChangeFeed>> open_change_feed(const std::string& start, const std::string& end,
                                                       bool with_prev) override {
    return rdb::open_change_feed(*this, start, end, with_prev);
  }
  Result<kvrpc::KvChangeFeedRegisterResponse> kv_change_feed_register(
      const kvrpc::KvChangeFeedRegisterRequest& req) override {
    return execute<kvrpc::KvChangeFeedRegisterResponse>(req.start_key(), Kind::kRead, req,
                                                        &kvrpc::Kv::Stub::KvChangeFeedRegister);
  }
  Result<kvrpc::KvChangeFeedPollResponse> kv_change_feed_poll(const kvrpc::KvChangeFeedPollRequest& req,
                                                              const std::string& start_key) override {
    return execute<kvrpc::KvChangeFeedPollResponse>(start_key, Kind::kRead, req, &kvrpc::Kv::Stub::KvChangeFeedPoll);
  }
  void kv_change_feed_cancel(const kvrpc::KvChangeFeedCancelRequest& req) override {
    // Once, briefly: a store that does not hear it drops the idle feed by itself.
    auto deadline = Clock::now() + std::min(options_.timeout, std::chrono::milliseconds(500));
    auto route = locate(req.start_key(), deadline, false);
    if (!route.is_ok()) {
      return;
    }
    auto stub = kvrpc::Kv::NewStub(channel_for(route->store_addr));
    grpc::ClientContext ctx;
    ctx.set_deadline(to_system(deadline));
    kvrpc::KvChangeFeedCancelResponse resp;
    (void)stub->KvChangeFeedCancel(&ctx, req, &resp);
  }
  Result<std::uint64_t> timestamp() override { return get_tso(1); }
  std::chrono::milliseconds timeout() const override { return options_.timeout; }
  Result<kvrpc::KvGetResponse> kv_get(const kvrpc::KvGetRequest& req) override {
    return execute<kvrpc::KvGetResponse>(req.key(), Kind::kRead, req, &kvrpc::Kv::Stub::KvGet);
  }
  Result<kvrpc::KvScanResponse> kv_scan(const kvrpc::KvScanRequest& req) override {
    return execute<kvrpc::KvScanResponse>(req.start_key(), Kind::kRead, req, &kvrpc::Kv::Stub::KvScan);
  }
  Result<kvrpc::KvScanChangesResponse> kv_scan_changes(const kvrpc::KvScanChangesRequest& req) override {
    return execute<kvrpc::KvScanChangesResponse>(req.start_key(), Kind::kRead, req, &kvrpc::Kv::Stub::KvScanChanges);
  }
  Result<kvrpc::KvCheckTxnStatusResponse> kv_check_txn_status(const kvrpc::KvCheckTxnStatusRequest& req) override {
    return execute<kvrpc::KvCheckTxnStatusResponse>(req.primary_key(), Kind::kRead, req,
                                                    &kvrpc::Kv::Stub::KvCheckTxnStatus);
  }
  Result<kvrpc::KvTxnHeartBeatResponse> kv_heart_beat(const kvrpc::KvTxnHeartBeatRequest& req) override {
    return execute<kvrpc::KvTxnHeartBeatResponse>(req.primary_lock(), Kind::kRead, req,
                                                  &kvrpc::Kv::Stub::KvTxnHeartBeat);
  }
  Status kv_batch_get(const kvrpc::KvBatchGetRequest& req,
                      const std::function<Status(kvrpc::KvBatchGetResponse&)>& on_part) override {
    std::vector<std::string> keys(req.keys().begin(), req.keys().end());
    return per_region_part<kvrpc::KvBatchGetResponse>(
        req, keys, &kvrpc::Kv::Stub::KvBatchGet,
        [](kvrpc::KvBatchGetRequest& r, const std::vector<std::string>& part) {
          r.clear_keys();
          for (const auto& k : part) {
            r.add_keys(k);
          }
        },
        on_part);
  }
  Status kv_prewrite(const kvrpc::KvPrewriteRequest& req,
                     const std::function<Status(kvrpc::KvPrewriteResponse&)>& on_part) override {
    std::vector<std::string> keys;
    std::map<std::string, const txnpb::Mutation*> by_key;
    for (const auto& m : req.mutations()) {
      keys.push_back(m.key());
      by_key[m.key()] = &m;
    }
    return per_region_part<kvrpc::KvPrewriteResponse>(
        req, keys, &kvrpc::Kv::Stub::KvPrewrite,
        [&by_key, &keys](kvrpc::KvPrewriteRequest& r, const std::vector<std::string>& part) {
          // 1PC only when this part is the whole transaction (one region holds every key).
          r.set_try_one_pc(r.try_one_pc() && part.size() == keys.size());
          r.clear_mutations();
          for (const auto& k : part) {
            *r.add_mutations() = *by_key.at(k);
          }
        },
        on_part);
  }
  Status kv_commit(const kvrpc::KvCommitRequest& req,
                   const std::function<Status(kvrpc::KvCommitResponse&)>& on_part) override {
    return keyed_part(req, &kvrpc::Kv::Stub::KvCommit, on_part);
  }
  Status kv_batch_rollback(const kvrpc::KvBatchRollbackRequest& req,
                           const std::function<Status(kvrpc::KvBatchRollbackResponse&)>& on_part) override {
    return keyed_part(req, &kvrpc::Kv::Stub::KvBatchRollback, on_part);
  }
  Status kv_resolve_lock(const kvrpc::KvResolveLockRequest& req,
                         const std::function<Status(kvrpc::KvResolveLockResponse&)>& on_part) override {
    return keyed_part(req, &kvrpc::Kv::Stub::KvResolveLock, on_part);
  }

  Result<std::uint64_t> get_tso(std::uint32_t count) override {
    if (!tso_) {
      return Status::invalid_argument("get_tso needs a PD endpoint (ClientOptions::pd_endpoints is empty)");
    }
    auto deadline = Clock::now() + options_.timeout;
    RDB_RETURN_IF_ERROR(cluster_id(deadline).status());
    return tso_->get(count, deadline);
  }

 private:
  static constexpr const char* kShuttingDown = "the client is shutting down";

  // Hands `s` to `done` on a pool thread (an asynchronous call never completes inline).
  template <typename Done>
  void fail_async(Done done, Status s) {
    async_->post([done = std::move(done), s = std::move(s)]() mutable { done(std::move(s)); });
  }

  // Runs the blocking `call` on the pool and hands its outcome to `done`.
  template <typename Call, typename Done>
  void on_pool(Call call, Done done) {
    async_->post([this, call = std::move(call), done = std::move(done)]() mutable {
      if (shutting_down_) {
        return done(Status::unavailable(kShuttingDown));
      }
      done(call());
    });
  }

  // One asynchronous point call. Its outcome goes to `finish` once: whoever claims it first
  // (the store's answer, the timer at the deadline or on a hung store, a hand-off to the pool
  // for a retry) delivers it; the others see it claimed and do nothing.
  template <typename Resp>
  struct PointCall {
    std::string key;
    Kind kind = Kind::kRead;
    Clock::time_point deadline;
    std::function<void(Result<Resp>)> finish;
    RegionRoute route;
    std::shared_ptr<grpc::Channel> channel;
    StoreStream* stream = nullptr;        // valid while the timer runs (streams outlive it)
    Clock::time_point heard;              // when the store last showed it is alive to this call
    std::function<Result<Resp>()> retry;  // the blocking execute of the same request, to the deadline
    int resends = 0;                      // earlier attempts that a region error sent elsewhere
    std::atomic<bool> claimed{false};
    bool claim() { return !claimed.exchange(true); }
    // Delivers the outcome (by the claimer only) and lets go of the request at once: the
    // timer may hold this call until its next check.
    void complete(Result<Resp> outcome) {
      auto done = std::move(finish);
      retry = nullptr;
      done(std::move(outcome));
    }
  };

  // Sends a point request on its store's stream when its region is cached (no thread held
  // while it waits); otherwise, and to retry after a routing error that needs PD, runs the
  // blocking execute on the pool with what is left of the deadline. Outcomes as execute's.
  template <typename Resp, typename Req, typename Rpc>
  void execute_async(Kind kind, Req req, Rpc rpc, std::function<void(Result<Resp>)> finish) {
    auto call = std::make_shared<PointCall<Resp>>();
    call->key = req.key();
    call->kind = kind;
    call->deadline = Clock::now() + options_.timeout;
    call->finish = std::move(finish);
    auto shared_req = std::make_shared<Req>(std::move(req));
    call->retry = [this, shared_req, rpc, key = call->key, kind, deadline = call->deadline] {
      Routing routing{key, false, nullptr, std::nullopt, nullptr};
      return execute_until<Resp>(routing, kind, *shared_req, rpc, deadline);
    };
    send_point(call, shared_req, rpc);
  }

  // One attempt of `call` on its region's cached route (see execute_async). `request` is
  // copied into the stream's message, so a later attempt may restamp its context.
  template <typename Resp, typename Req, typename Rpc>
  void send_point(const std::shared_ptr<PointCall<Resp>>& call, const std::shared_ptr<Req>& request, Rpc rpc) {
    std::optional<RegionRoute> route = cache_.lookup(call->key);
    bool direct = options_.batch_requests && route && !slow_->is_slow(route->store_addr) && !shutting_down_;
    if (direct) {
      call->channel = channel_for(route->store_addr);
      // The blocking path waits for a write's connection (nothing sent yet: safe to go
      // elsewhere); a write goes direct only on a connected channel.
      direct = call->kind == Kind::kRead || call->channel->GetState(false) == GRPC_CHANNEL_READY;
    }
    if (!direct) {
      call->claim();
      return retry_on_pool(call, std::nullopt);
    }
    StoreStream* stream = stream_for(route->store_addr, call->channel).get();  // kept by streams_ past the timer
    if (stream == nullptr) {
      call->claim();
      return retry_on_pool(call, std::nullopt);  // shutting down: the pool ends it
    }
    call->route = std::move(*route);
    auto* ctx_proto = request->mutable_context();
    ctx_proto->set_region_id(call->route.region.id());
    *ctx_proto->mutable_region_epoch() = call->route.region.region_epoch();
    *ctx_proto->mutable_peer() = call->route.leader;
    call->stream = stream;
    call->heard = Clock::now();
    BatchRequest message;
    wrap(*request, &message);
    call->stream->call(std::move(message), [this, call, request, rpc](StoreReply reply) {
      if (call->claimed) {
        return;  // the deadline or a hung store ended it: a late answer fills nothing
      }
      if (reply.status.ok()) {
        Resp resp;
        unwrap(reply.response, &resp);
        slow_->answered(call->route.store_addr);
        if (!resp.has_region_error()) {
          if (call->claim()) {
            call->complete(std::move(resp));
          }
          return;
        }
        if (call->claim()) {  // not executed: route again and retry
          resend_after_region_error(call, request, rpc, std::move(*resp.mutable_region_error()));
        }
        return;
      }
      if (!call->claim()) {
        return;
      }
      if (reply.maybe_sent) {
        if (auto final_status = after_failure(reply.status, call->kind, call->route)) {
          return call->complete(std::move(*final_status));
        }
      } else {
        cache_.invalidate(call->route.region.id());  // never sent: safe to retry even a write
      }
      retry_on_pool(call, std::nullopt);
    });
    watch(call, std::min(call->deadline, call->heard + options_.attempt_timeout));
  }

  // The claimed `call` answered with `err` (not executed). When the error itself says where
  // to go (a NotLeader naming a leader on a store whose address is known, an EpochNotMatch
  // listing the current regions), it is sent again on a stream at once — no pool thread is
  // taken, as a leader transfer would otherwise hand every call in flight to the pool at
  // once. Else (a ServerIsBusy's back-off included), and after kMaxDirectResends, the pool
  // retries it (asking PD).
  template <typename Resp, typename Req, typename Rpc>
  void resend_after_region_error(const std::shared_ptr<PointCall<Resp>>& call, const std::shared_ptr<Req>& request,
                                 Rpc rpc, kvrpc::RegionError err) {
    if (call->resends >= kMaxDirectResends || shutting_down_ || !reroute_from_error(call->route, err)) {
      return retry_on_pool(call, std::move(err));
    }
    auto next = std::make_shared<PointCall<Resp>>();
    next->key = call->key;
    next->kind = call->kind;
    next->deadline = call->deadline;
    next->finish = std::move(call->finish);
    next->retry = std::move(call->retry);
    next->resends = call->resends + 1;
    send_point(next, request, rpc);  // on this (gRPC) thread: it only queues the request
  }

  // Updates the routing from `err` alone, without asking PD and without waiting; false when
  // it cannot (then the blocking path's on_region_error handles it, backing off as told).
  bool reroute_from_error(const RegionRoute& route, const kvrpc::RegionError& err) {
    if (!options_.store_addr.empty() || err.has_disk_full()) {
      return false;  // pointed at one store, or a final error: the pool path decides
    }
    if (err.has_not_leader()) {
      const auto& leader = err.not_leader().leader();
      if (!err.not_leader().has_leader() || leader.store_id() == 0 || leader.store_id() == route.leader.store_id()) {
        return false;
      }
      auto addr = known_store_address(leader.store_id());
      if (!addr) {
        return false;
      }
      cache_.replace(route.region.id(), {RegionRoute{route.region, leader, *addr}});
      return true;
    }
    if (err.has_epoch_not_match() && err.epoch_not_match().current_regions_size() > 0) {
      learn_current_regions(route, err.epoch_not_match());
      return true;
    }
    return false;
  }

  // The claimed `call` retried by the blocking execute on the pool (after handling the
  // region error its store answered, if any), within its deadline.
  template <typename Resp>
  void retry_on_pool(const std::shared_ptr<PointCall<Resp>>& call, std::optional<kvrpc::RegionError> region_error) {
    async_->post([this, call, region_error = std::move(region_error)] {
      if (shutting_down_) {
        return call->complete(Status::unavailable(kShuttingDown));
      }
      if (region_error) {
        std::chrono::milliseconds backoff(2);
        if (auto final_status = after_region_error(call->route, *region_error, backoff, call->deadline)) {
          return call->complete(std::move(*final_status));
        }
        sleep_backoff(backoff, call->deadline);
      }
      call->complete(call->retry());
    });
  }

  // Checks `call` at `when` on the timer thread: past its deadline it ends (a read
  // DEADLINE_EXCEEDED, a write UNDETERMINED); when its store has been silent for the attempt
  // timeout, the store is probed on the pool, as the blocking path does.
  template <typename Resp>
  void watch(const std::shared_ptr<PointCall<Resp>>& call, Clock::time_point when) {
    async_->at(when, [this, call] {
      if (call->claimed) {
        return;
      }
      auto now = Clock::now();
      if (now >= call->deadline) {
        if (call->claim()) {
          call->complete(call->kind == Kind::kRead
                             ? Status::deadline_exceeded(
                                   fmt::format("store {} did not answer before the deadline", call->route.store_addr))
                             : Status::undetermined(fmt::format("store {} did not answer before the deadline; the "
                                                                "write may or may not have been applied",
                                                                call->route.store_addr)));
        }
        return;
      }
      auto silent_until = std::max(call->heard, call->stream->last_answer()) + options_.attempt_timeout;
      if (now < silent_until) {
        return watch(call, std::min(call->deadline, silent_until));
      }
      async_->post([this, call] {
        bool alive = !shutting_down_ && store_answers(call->channel, call->deadline);
        if (call->claimed) {
          return;
        }
        if (alive) {
          call->heard = Clock::now();  // only the timer reads it, after this re-arms it
          return watch(call, std::min(call->deadline, call->heard + options_.attempt_timeout));
        }
        if (shutting_down_ || !call->claim()) {
          return;  // the streams' cancellation ends it
        }
        slow_->mark(call->route.store_addr);
        cache_.invalidate(call->route.region.id());
        if (call->kind == Kind::kWrite) {
          return call->complete(Status::undetermined(
              fmt::format("store {} answered nothing for {} ms; the write may or may not have been applied",
                          call->route.store_addr, options_.attempt_timeout.count())));
        }
        call->complete(call->retry());  // another replica next (the store is marked)
      });
    });
  }

  // The id of the cluster PD serves, asked once (GetMembers) and stamped on every PD request.
  Result<std::uint64_t> cluster_id(Clock::time_point deadline) {
    if (!pd_) {
      return Status::invalid_argument("no PD endpoint configured");
    }
    RDB_ASSIGN_OR_RETURN(std::uint64_t id, pd_->cluster_id(deadline));
    if (tso_) {
      tso_->set_cluster_id(id);
    }
    return id;
  }

  template <typename Repeated>
  static std::vector<KeyValue> to_pairs(Repeated& kvs) {
    std::vector<KeyValue> out;
    out.reserve(static_cast<std::size_t>(kvs.size()));
    for (auto& kv : kvs) {
      out.push_back({std::move(*kv.mutable_key()), std::move(*kv.mutable_value())});
    }
    return out;
  }

  std::shared_ptr<grpc::Channel> channel_for(const std::string& addr) {
    std::lock_guard lock(channels_mu_);
    auto& ch = channels_[addr];
    if (!ch) {
      ch = make_channel(addr, creds_, kMaxGrpcMessageBytes);
    }
    return ch;
  }

  // Where does `key` live? From the cache, else from the store (direct mode) or PD.
  // With `before`: the region holding the greatest keys below `key` (reverse scans).
  //
  // PD's map has short gaps: a split region reports its new range before the regions cut
  // from it report theirs, and a new region's leader is not known at once. Those are
  // retried (with back-off) until the deadline rather than failing the caller's request.
  Result<RegionRoute> locate(const std::string& key, Clock::time_point deadline, bool before) {
    std::chrono::milliseconds backoff(2);
    for (;;) {
      bool transient = false;
      auto route = locate_once(key, deadline, before, &transient);
      if (route.is_ok() || !transient || Clock::now() + backoff >= deadline) {
        return route;
      }
      sleep_backoff(backoff, deadline);
    }
  }

  Result<RegionRoute> locate_once(const std::string& key, Clock::time_point deadline, bool before, bool* transient) {
    auto cached = [&] { return before ? cache_.lookup_before(key) : cache_.lookup(key); };
    if (auto hit = cached()) {
      return *hit;
    }
    if (!options_.store_addr.empty()) {
      auto stub = kvrpc::Kv::NewStub(channel_for(options_.store_addr));
      grpc::ClientContext ctx;
      ctx.set_deadline(to_system(deadline));
      kvrpc::StoreInfoResponse info;
      grpc::Status s = stub->StoreInfo(&ctx, kvrpc::StoreInfoRequest(), &info);
      if (!s.ok()) {
        return grpc_failure(s, fmt::format("store {}", options_.store_addr));
      }
      for (const auto& region : info.regions()) {
        RegionRoute route{region, {}, options_.store_addr};
        for (const auto& p : region.peers()) {
          if (p.store_id() == info.store_id()) {
            route.leader = p;
          }
        }
        cache_.insert(std::move(route));
      }
      if (auto hit = cached()) {
        return *hit;
      }
      return Status::unavailable(fmt::format("store {} serves no region for this key", options_.store_addr));
    }
    if (!pd_) {
      return Status::invalid_argument("no PD endpoint and no store address configured");
    }
    RDB_RETURN_IF_ERROR(cluster_id(deadline).status());
    pdpb::GetRegionRequest rreq;
    rreq.set_region_key(key);
    rreq.set_before(before);
    pdpb::GetRegionResponse rresp;
    RDB_RETURN_IF_ERROR(pd_->call(&pdpb::PD::Stub::GetRegion, rreq, &rresp, deadline));
    if (rresp.header().has_error()) {
      *transient = rresp.header().error().type() == pdpb::REGION_NOT_FOUND;
      return Status::unavailable(fmt::format("PD {}: {}", pd_->current(), rresp.header().error().message()));
    }
    if (rresp.leader().store_id() == 0) {
      *transient = true;
      return Status::unavailable(fmt::format("region {} has no known leader yet", rresp.region().id()));
    }
    RDB_ASSIGN_OR_RETURN(std::string addr, store_address(rresp.leader().store_id(), deadline));
    RegionRoute route{rresp.region(), rresp.leader(), std::move(addr)};
    cache_.insert(route);
    // The other replicas' stores too (once each), connecting in the background: where a
    // NotLeader may point an asynchronous call, which then needs no pool thread to follow it.
    for (const auto& p : rresp.region().peers()) {
      if (!known_store_address(p.store_id())) {
        auto other = store_address(p.store_id(), std::min(deadline, Clock::now() + options_.attempt_timeout));
        if (other.is_ok()) {
          channel_for(*other)->GetState(true);
        }
      }
    }
    return route;
  }

  static Status grpc_failure(const grpc::Status& s, const std::string& who) {
    return PdClient::transport_failure(s, who);
  }

  // The address PD has for a store.
  Result<std::string> store_address(std::uint64_t store_id, Clock::time_point deadline) {
    if (!pd_) {
      return Status::unavailable("no PD endpoint to look up store addresses");
    }
    pdpb::GetStoreRequest sreq;
    sreq.set_store_id(store_id);
    pdpb::GetStoreResponse sresp;
    RDB_RETURN_IF_ERROR(pd_->call(&pdpb::PD::Stub::GetStore, sreq, &sresp, deadline));
    if (sresp.header().has_error()) {
      return Status::unavailable(fmt::format("PD: {}", sresp.header().error().message()));
    }
    std::lock_guard lock(store_addresses_mu_);
    store_addresses_[store_id] = sresp.store().address();
    return sresp.store().address();
  }

  // The address PD last gave for `store_id`, if asked before (the asynchronous path's
  // resends use it; a stale one fails to connect or answers a region error, and the pool's
  // blocking retry asks PD again).
  std::optional<std::string> known_store_address(std::uint64_t store_id) const {
    std::lock_guard lock(store_addresses_mu_);
    auto it = store_addresses_.find(store_id);
    return it == store_addresses_.end() ? std::nullopt : std::optional<std::string>(it->second);
  }

  // The regions an EpochNotMatch lists replace `route`'s in the cache.
  void learn_current_regions(const RegionRoute& route, const kvrpc::EpochNotMatch& err) {
    std::vector<RegionRoute> routes;
    for (const auto& r : err.current_regions()) {
      // Regions a split made have their leaders on the store that answered, at first:
      // address this store's peer of each (a NotLeader hint corrects it later).
      metapb::Peer here = route.leader;
      for (const auto& p : r.peers()) {
        if (p.store_id() == route.leader.store_id()) {
          here = p;
        }
      }
      routes.push_back(RegionRoute{r, here, route.store_addr});
    }
    cache_.replace(route.region.id(), std::move(routes));
  }

  void on_region_error(const RegionRoute& route, const kvrpc::RegionError& err, std::chrono::milliseconds& backoff,
                       Clock::time_point deadline) {
    if (err.has_not_leader() && err.not_leader().has_leader() && err.not_leader().leader().store_id() != 0 &&
        options_.store_addr.empty()) {
      // Follow the hint: the store knows who leads now, PD may not yet.
      auto addr = store_address(err.not_leader().leader().store_id(), deadline);
      if (addr.is_ok()) {
        cache_.replace(route.region.id(), {RegionRoute{route.region, err.not_leader().leader(), *addr}});
        backoff = std::chrono::milliseconds(1);
        return;
      }
    }
    if (err.has_epoch_not_match() && err.epoch_not_match().current_regions_size() > 0) {
      learn_current_regions(route, err.epoch_not_match());
      return;
    }
    if (err.has_server_is_busy()) {
      backoff = std::max(backoff, std::chrono::milliseconds(err.server_is_busy().backoff_ms()));
    }
    cache_.invalidate(route.region.id());
  }

  // Asks a hung store for its StoreInfo without waiting; an answer lifts its mark.
  // Does the store answer a cheap StoreInfo within the attempt timeout? It is served
  // by gRPC's threads, not the store's Raft thread: a busy store answers, a hung one not.
  bool store_answers(const std::shared_ptr<grpc::Channel>& channel, Clock::time_point deadline) {
    auto stub = kvrpc::Kv::NewStub(channel);
    grpc::ClientContext ctx;
    ctx.set_deadline(to_system(std::min(deadline, Clock::now() + options_.attempt_timeout)));
    kvrpc::StoreInfoResponse info;
    return stub->StoreInfo(&ctx, kvrpc::StoreInfoRequest(), &info).ok();
  }

  // The region through a replica other than `route`'s, on a store that has not hung.
  std::optional<RegionRoute> route_around(const RegionRoute& route, Clock::time_point deadline) {
    for (const auto& p : route.region.peers()) {
      if (p.store_id() == route.leader.store_id()) {
        continue;
      }
      auto addr = store_address(p.store_id(), deadline);
      if (addr.is_ok() && !slow_->is_slow(*addr)) {
        return RegionRoute{route.region, p, *addr};
      }
    }
    return std::nullopt;
  }

  // The store's request stream; nullptr once the client is shutting down. Shared: a blocking
  // call keeps the stream it waits on alive even if the client's destructor drops the map's
  // reference meanwhile (the last holder destroys it).
  std::shared_ptr<StoreStream> stream_for(const std::string& addr, const std::shared_ptr<grpc::Channel>& channel) {
    std::lock_guard lock(channels_mu_);
    if (shutting_down_) {
      return nullptr;
    }
    auto& stream = streams_[addr];
    if (!stream) {
      stream = std::make_shared<StoreStream>(channel);
    }
    return stream;
  }

  // One attempt at `req` on the store at `addr`: through its BatchCommands stream
  // when the request can travel there, else as a unary call.
  template <typename Req, typename Resp, typename Rpc>
  Attempt send(const std::string& addr, const std::shared_ptr<grpc::Channel>& channel, const Req& req, Resp* resp,
               Rpc rpc, Clock::time_point deadline) {
    if constexpr (Batchable<Req>) {
      if (options_.batch_requests) {
        struct Waiting {
          std::mutex mu;
          std::condition_variable cv;
          bool done = false;
          StoreReply reply;
        };
        auto waiting = std::make_shared<Waiting>();
        BatchRequest request;
        wrap(req, &request);
        std::shared_ptr<StoreStream> stream_ref = stream_for(addr, channel);
        if (!stream_ref) {
          return {grpc::Status(grpc::StatusCode::CANCELLED, std::string(kShuttingDown)), false};
        }
        StoreStream& stream = *stream_ref;
        stream.call(std::move(request), [waiting](StoreReply reply) {
          {
            std::lock_guard lock(waiting->mu);
            waiting->reply = std::move(reply);
            waiting->done = true;
          }
          // Outside the lock: the woken caller takes it at once. `waiting` is shared, so
          // it outlives a caller that gave up meanwhile.
          waiting->cv.notify_one();
        });
        auto heard = Clock::now();  // when the store last showed it is alive
        std::unique_lock lock(waiting->mu);
        for (;;) {
          // Wake when the store has been silent for the attempt timeout (since this
          // request started, its last answer to anyone, or its last probe), or at the deadline.
          auto silent_until = std::max(heard, stream.last_answer()) + options_.attempt_timeout;
          if (waiting->cv.wait_until(lock, std::min(deadline, silent_until), [&] { return waiting->done; })) {
            break;
          }
          // A late answer only fills this abandoned slot.
          if (Clock::now() >= deadline) {
            return {grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "no answer before the deadline"), true};
          }
          if (Clock::now() < std::max(heard, stream.last_answer()) + options_.attempt_timeout) {
            continue;
          }
          // Silent: busy with a big or slow request, or hung? A process that answers a
          // probe (served off its Raft thread) is alive: keep waiting.
          lock.unlock();
          bool alive = store_answers(channel, deadline);
          lock.lock();
          if (alive) {
            heard = Clock::now();
            continue;
          }
          if (waiting->done) {
            break;
          }
          return {grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                               fmt::format("the store answered nothing, not even a probe, for {} ms",
                                           2 * options_.attempt_timeout.count())),
                  true, true};
        }
        if (!waiting->reply.status.ok()) {
          return {waiting->reply.status, waiting->reply.maybe_sent};
        }
        unwrap(waiting->reply.response, resp);
        return {};
      }
    }
    auto stub = kvrpc::Kv::NewStub(channel);
    grpc::ClientContext ctx;
    ctx.set_deadline(to_system(deadline));
    return {((*stub).*rpc)(&ctx, req, resp), true};
  }

  // Runs `send_part` once per region over `keys` (each part: the keys one region
  // holds, in the order given). A part whose region split meanwhile (regroup) is cut
  // again by the regions as they are now. An error stops it; when earlier parts were
  // written, the error says how many.
  template <typename SendPart>
  Status per_region(const std::vector<std::string>& keys, Kind kind, SendPart&& send_part) {
    const Clock::time_point deadline = Clock::now() + options_.timeout;
    std::vector<std::string> pending = keys;
    std::size_t done = 0;
    while (!pending.empty()) {
      if (Clock::now() >= deadline) {
        return partial(Status::deadline_exceeded("the regions kept changing until the deadline"), done);
      }
      std::map<std::string, std::pair<std::uint64_t, std::vector<std::string>>> parts;  // by region start
      for (auto& k : pending) {
        auto route = locate(k, deadline, false);
        if (!route.is_ok()) {
          return kind == Kind::kWrite ? partial(route.status(), done) : route.status();
        }
        auto& part = parts[route->region.start_key()];
        part.first = route->region.id();
        part.second.push_back(std::move(k));
      }
      pending.clear();
      for (auto& [start, part] : parts) {
        // A request carries at most kMaxBatchKeys keys: a large transaction's part of a
        // region goes in several.
        for (std::size_t from = 0; from < part.second.size(); from += kMaxBatchKeys) {
          std::size_t to = std::min(part.second.size(), from + kMaxBatchKeys);
          std::vector<std::string> chunk;
          if (from == 0 && to == part.second.size()) {
            chunk = std::move(part.second);
          } else {
            chunk.assign(std::make_move_iterator(part.second.begin() + static_cast<std::ptrdiff_t>(from)),
                         std::make_move_iterator(part.second.begin() + static_cast<std::ptrdiff_t>(to)));
          }
          bool regroup = false;
          Status s = send_part(chunk, &regroup);
          if (regroup) {
            std::move(chunk.begin(), chunk.end(), std::back_inserter(pending));
            continue;
          }
          if (!s.is_ok()) {
            return kind == Kind::kWrite ? partial(s, done) : s;
          }
        }
        ++done;
      }
    }
    return Status::ok();
  }

  // Sends one request per region holding some of `keys`, built from `tmpl` by
  // `set_part`; transactional commands are idempotent, so they retry as reads do.
  template <typename Resp, typename Req, typename Rpc, typename SetPart>
  Status per_region_part(const Req& tmpl, const std::vector<std::string>& keys, Rpc rpc, SetPart&& set_part,
                         const std::function<Status(Resp&)>& on_part) {
    return per_region(keys, Kind::kRead, [&](const std::vector<std::string>& part, bool* regroup) -> Status {
      Req req = tmpl;
      set_part(req, part);
      Routing routing{part.front(), false, &part, std::nullopt, regroup};
      RDB_ASSIGN_OR_RETURN(auto resp, execute<Resp>(routing, Kind::kRead, req, rpc));
      return on_part(resp);
    });
  }
  // The same for requests whose `keys` field is what is split.
  template <typename Req, typename Resp>
  Status keyed_part(const Req& req, grpc::Status (kvrpc::Kv::Stub::*rpc)(grpc::ClientContext*, const Req&, Resp*),
                    const std::function<Status(Resp&)>& on_part) {
    std::vector<std::string> keys(req.keys().begin(), req.keys().end());
    return per_region_part<Resp>(
        req, keys, rpc,
        [](Req& r, const std::vector<std::string>& part) {
          r.clear_keys();
          for (const auto& k : part) {
            r.add_keys(k);
          }
        },
        on_part);
  }

  // An error after `done` regions' parts of a write were applied.
  static Status partial(const Status& s, std::size_t done) {
    if (done == 0) {
      return s;
    }
    return Status(s.code(), fmt::format("{} (the parts for {} other region(s) were applied)", s.message(), done));
  }

  // Sends `req` to the store holding `key`, following the retry rules of `kind`.
  template <typename Resp, typename Req, typename Rpc>
  Result<Resp> execute(const std::string& key, Kind kind, Req req, Rpc rpc) {
    return execute<Resp>(Routing{key, false, nullptr, std::nullopt, nullptr}, kind, std::move(req), rpc);
  }

  template <typename Resp, typename Req, typename Rpc>
  Result<Resp> execute(const Routing& routing, Kind kind, Req req, Rpc rpc) {
    return execute_until<Resp>(routing, kind, std::move(req), rpc, Clock::now() + options_.timeout);
  }

  // A store answered with a region error (it did not execute the request): the call's
  // final status when no retry can help, else nullopt after updating routing (retry).
  std::optional<Status> after_region_error(const RegionRoute& route, const kvrpc::RegionError& err,
                                           std::chrono::milliseconds& backoff, Clock::time_point deadline) {
    Status why = Status::unavailable(fmt::format("store {}: {}", route.store_addr, err.message()));
    if (err.has_disk_full()) {
      return why;
    }
    if (!options_.store_addr.empty() && err.has_not_leader()) {
      // Pointed at one store that does not lead: no retry here can fix that.
      return why;
    }
    on_region_error(route, err, backoff, deadline);
    return std::nullopt;
  }

  // A request that may have reached the store failed with `s`: the call's final status,
  // or nullopt when it may be retried (a read whose connection failed; routing dropped).
  std::optional<Status> after_failure(const grpc::Status& s, Kind kind, const RegionRoute& route) {
    switch (s.error_code()) {
      case grpc::StatusCode::INVALID_ARGUMENT:
        return Status::invalid_argument(s.error_message());
      case grpc::StatusCode::DEADLINE_EXCEEDED:
        if (kind == Kind::kRead) {
          return Status::deadline_exceeded(
              fmt::format("store {} did not answer before the deadline ({})", route.store_addr, s.error_message()));
        }
        return Status::undetermined(
            fmt::format("store {} did not answer before the deadline ({}); the write may or may not have been "
                        "applied",
                        route.store_addr, s.error_message()));
      case grpc::StatusCode::UNAVAILABLE:
      case grpc::StatusCode::CANCELLED:
      case grpc::StatusCode::UNKNOWN:
        if (kind == Kind::kWrite) {
          return Status::undetermined(
              fmt::format("connection to store {} failed during the request ({}); the write may or may not have "
                          "been applied",
                          route.store_addr, s.error_message()));
        }
        cache_.invalidate(route.region.id());
        return std::nullopt;
      default:
        return Status::internal(fmt::format("store {} failed the request: {}", route.store_addr, s.error_message()));
    }
  }

  template <typename Resp, typename Req, typename Rpc>
  Result<Resp> execute_until(const Routing& routing, Kind kind, Req req, Rpc rpc, Clock::time_point deadline) {
    std::chrono::milliseconds backoff(2);
    Status last = Status::deadline_exceeded("the call's deadline passed before any attempt");
    while (Clock::now() < deadline) {
      if (shutting_down_) {
        return Status::unavailable(kShuttingDown);  // a pool retry that outlived the client's streams
      }
      auto route = locate(routing.key, deadline, routing.before);
      if (!route.is_ok()) {
        if (route.status().code() == StatusCode::kInvalidArgument) {
          return route.status();
        }
        last = route.status();
        sleep_backoff(backoff, deadline);
        continue;
      }
      if (routing.regroup != nullptr) {
        const auto& region = route->region;
        bool fits = !routing.range_end || region.end_key().empty() || *routing.range_end <= region.end_key();
        if (routing.keys != nullptr) {
          fits = fits && std::all_of(routing.keys->begin(), routing.keys->end(),
                                     [&](const std::string& k) { return in_region(region, k); });
        }
        if (!fits) {
          *routing.regroup = true;
          return Status::unavailable("the request spans regions now");
        }
      }
      if (slow_->is_slow(route->store_addr) && slow_->take_probe_turn(route->store_addr) &&
          store_answers(channel_for(route->store_addr), deadline)) {
        slow_->answered(route->store_addr);  // it answers again: use it
      }
      if (slow_->is_slow(route->store_addr) && options_.store_addr.empty()) {
        // It hung lately: go through another replica, which answers or names the leader.
        auto around = route_around(*route, deadline);
        if (!around) {
          last = Status::unavailable(fmt::format("store {} hung and no other replica is reachable", route->store_addr));
          cache_.invalidate(route->region.id());
          sleep_backoff(backoff, deadline);
          continue;
        }
        route = std::move(*around);
      }
      auto channel = channel_for(route->store_addr);
      if (kind == Kind::kWrite &&
          !channel->WaitForConnected(to_system(std::min(deadline, Clock::now() + std::chrono::seconds(1))))) {
        // Not connected, so nothing was sent: safe to look elsewhere and retry.
        last = Status::unavailable(fmt::format("cannot connect to store {}", route->store_addr));
        cache_.invalidate(route->region.id());
        sleep_backoff(backoff, deadline);
        continue;
      }
      auto* ctx_proto = req.mutable_context();
      ctx_proto->set_region_id(route->region.id());
      *ctx_proto->mutable_region_epoch() = route->region.region_epoch();
      *ctx_proto->mutable_peer() = route->leader;
      Resp resp;
      Attempt attempt = send(route->store_addr, channel, req, &resp, rpc, deadline);
      const grpc::Status& s = attempt.status;
      if (!s.ok() && !attempt.maybe_sent) {
        // It never left this client: safe to retry even a write.
        last = Status::unavailable(fmt::format("cannot reach store {}: {}", route->store_addr, s.error_message()));
        cache_.invalidate(route->region.id());
        sleep_backoff(backoff, deadline);
        continue;
      }
      if (attempt.hung) {
        slow_->mark(route->store_addr);
        cache_.invalidate(route->region.id());
        if (kind == Kind::kWrite) {
          return Status::undetermined(
              fmt::format("store {} answered nothing for {} ms; the write may or may not have been applied",
                          route->store_addr, options_.attempt_timeout.count()));
        }
        last = Status::unavailable(fmt::format("store {} hung: {}", route->store_addr, s.error_message()));
        continue;  // another replica next
      }
      if (s.ok()) {
        slow_->answered(route->store_addr);
        if (!resp.has_region_error()) {
          return resp;
        }
        // A region error means the store did not execute the request: retrying is safe.
        last = Status::unavailable(fmt::format("store {}: {}", route->store_addr, resp.region_error().message()));
        if (auto final_status = after_region_error(*route, resp.region_error(), backoff, deadline)) {
          return *final_status;
        }
        sleep_backoff(backoff, deadline);
        continue;
      }
      if (auto final_status = after_failure(s, kind, *route)) {
        return *final_status;
      }
      last = Status::unavailable(fmt::format("cannot reach store {}: {}", route->store_addr, s.error_message()));
      sleep_backoff(backoff, deadline);
    }
    return last;
  }

  ClientOptions options_;
  std::shared_ptr<grpc::ChannelCredentials> creds_;
  std::unique_ptr<PdClient> pd_;  // null without PD endpoints (direct mode)
  std::unique_ptr<TsoBatcher> tso_;
  RegionCache cache_;
  std::shared_ptr<SlowStores> slow_ = std::make_shared<SlowStores>(std::chrono::seconds(1));
  std::mutex channels_mu_;
  std::map<std::string, std::shared_ptr<grpc::Channel>> channels_;
  std::atomic<bool> shutting_down_{false};
  // Stores' addresses as PD last gave them (see known_store_address).
  mutable std::mutex store_addresses_mu_;
  std::unordered_map<std::uint64_t, std::string> store_addresses_;
  // Region errors an asynchronous point call follows on streams before the pool takes it.
  static constexpr int kMaxDirectResends = 3;
  std::unique_ptr<AsyncRunner> async_;  // asynchronous calls' pool and timer (see ~ClientImpl)
  // Declared last so they are destroyed first: their destructors wait for the streams' callbacks.
  std::map<std::string, std::shared_ptr<StoreStream>> streams_;
};

}  // namespace

Result<std::unique_ptr<RdbClient>> RdbClient::connect(ClientOptions options) {
  if (options.pd_endpoints.empty() && options.store_addr.empty()) {
    return Status::invalid_argument("give at least one PD endpoint (--pd) or a store address (--addr)");
  }
  // Each entry may be one endpoint or a comma-separated list of the PD group's members.
  std::vector<std::string> pd_endpoints;
  for (const auto& entry : options.pd_endpoints) {
    auto list = split_list(entry);
    if (list.empty()) {
      return Status::invalid_argument("an empty PD endpoint");
    }
    for (auto& ep : list) {
      RDB_RETURN_IF_ERROR(parse_host_port(ep).status().with_context("PD endpoint"));
      pd_endpoints.push_back(std::move(ep));
    }
  }
  options.pd_endpoints = std::move(pd_endpoints);
  if (!options.store_addr.empty()) {
    RDB_RETURN_IF_ERROR(parse_host_port(options.store_addr).status().with_context("store address"));
  }
  if (options.timeout <= std::chrono::milliseconds::zero()) {
    return Status::invalid_argument("timeout must be positive");
  }
  if (options.attempt_timeout <= std::chrono::milliseconds::zero()) {
    return Status::invalid_argument("attempt_timeout must be positive");
  }
  if (options.async_threads < 1 || options.async_threads > 1024) {
    return Status::invalid_argument(fmt::format("async_threads must be 1 to 1024 ({} given)", options.async_threads));
  }
  RDB_ASSIGN_OR_RETURN(auto creds, channel_credentials({options.tls_ca, options.tls_cert, options.tls_key, {}}));
  return std::unique_ptr<RdbClient>(new ClientImpl(std::move(options), std::move(creds)));
}

}  // namespace rdb
