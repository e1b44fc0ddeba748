#include "pd/pd_service.h"

#include <fmt/format.h>
#include <grpc/grpc_security_constants.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <set>

#include "common/logging.h"
#include "common/version.h"

namespace rdb {
namespace {

void set_error(pdpb::ResponseHeader* h, pdpb::ErrorType type, const std::string& message) {
  h->mutable_error()->set_type(type);
  h->mutable_error()->set_message(message);
}

pdpb::ErrorType error_type_of(const Status& s) {
  if (s.code() == StatusCode::kInvalidArgument) {
    return pdpb::INVALID_ARGUMENT;
  }
  if (s.code() == ServerCode::kAlreadyExists) {
    return pdpb::ALREADY_BOOTSTRAPPED;
  }
  return pdpb::UNKNOWN;
}

// A bound kept in the PD group's log: load() reads the applied value, save() commits
// a new one (and returns once this member applied it).
class GroupBoundStore final : public BoundStore {
 public:
  GroupBoundStore(PdGroup& group, bool tso) : group_(group), tso_(tso) {}
  Result<std::uint64_t> load() override { return tso_ ? group_.tso_bound_ms() : group_.id_bound(); }
  Status save(std::uint64_t bound) override {
    pdpb::PdCommand cmd;
    if (tso_) {
      cmd.set_tso_bound_ms(bound);
    } else {
      cmd.set_id_bound(bound);
    }
    return group_.propose(std::move(cmd), PdGroup::Clock::now() + std::chrono::seconds(3));
  }

 private:
  PdGroup& group_;
  bool tso_;
};

constexpr auto kReplicateTimeout = std::chrono::seconds(4);  // below PdClient::kAttemptTimeout

}  // namespace

struct PdService::LeaderAllocators {
  std::uint64_t term = 0;
  std::unique_ptr<GroupBoundStore> tso_bound;
  std::unique_ptr<GroupBoundStore> id_bound;
  std::unique_ptr<TsoAllocator> tso;
  std::unique_ptr<IdAllocator> ids;
};

PdService::PdService(PdGroup& group, Clock& clock, TsoAllocator::Options tso_options, ClusterMeta& meta,
                     ClusterLiveness& liveness, MetricsRegistry& metrics, BalanceConfig balance, MergeConfig merge)
    : group_(group),
      clock_(clock),
      tso_options_(tso_options),
      meta_(meta),
      liveness_(liveness),
      tso_requests_(metrics.counter("rdb_pd_tso_requests_total", "TSO stream requests served")),
      tso_timestamps_(metrics.counter("rdb_pd_tso_timestamps_total", "Timestamps handed out")),
      tso_latency_(metrics.histogram("rdb_pd_tso_handle_seconds", "Time to serve one TSO request")),
      balance_(balance),
      merge_(merge) {}

bool PdService::check_header(const pdpb::RequestHeader& req, pdpb::ResponseHeader* resp) {
  if (!check_cluster(req, resp)) {
    return false;
  }
  if (group_.serving_term() == 0) {
    set_not_leader(resp);
    return false;
  }
  return true;
}

void PdService::set_not_leader(pdpb::ResponseHeader* resp) {
  auto leader = group_.leader();
  bool self = leader && leader->member_id() == group_.member_id();
  set_error(resp, pdpb::NOT_LEADER,
            self     ? fmt::format("PD member '{}' was just elected and does not serve yet; retry", group_.name())
            : leader ? fmt::format("PD member '{}' is not the leader; '{}' at {} is", group_.name(), leader->name(),
                                   leader->address())
                     : fmt::format("PD member '{}' is not the leader, and knows of none now", group_.name()));
  if (leader) {
    resp->set_leader(leader->address());
  }
}

Status PdService::replicate(pdpb::PdCommand command, pdpb::ResponseHeader* resp) {
  Status s = group_.propose(std::move(command), PdGroup::Clock::now() + kReplicateTimeout);
  if (s.code() == StatusCode::kUnavailable) {
    set_not_leader(resp);
  }
  return s;
}

std::shared_ptr<PdService::LeaderAllocators> PdService::allocators() {
  std::uint64_t term = group_.serving_term();
  if (term == 0) {
    return nullptr;
  }
  std::lock_guard lock(allocators_mu_);
  if (allocators_ && allocators_->term == term) {
    return allocators_;
  }
  allocators_.reset();
  auto a = std::make_shared<LeaderAllocators>();
  a->term = term;
  a->tso_bound = std::make_unique<GroupBoundStore>(group_, true);
  a->id_bound = std::make_unique<GroupBoundStore>(group_, false);
  // Everything committed before this term is applied (serving_term() says so), so the
  // bounds read here cover whatever an earlier leader handed out.
  auto tso = TsoAllocator::create(clock_, *a->tso_bound, tso_options_);
  auto ids = IdAllocator::create(*a->id_bound);
  if (!tso.is_ok() || !ids.is_ok()) {
    spdlog::warn("PD leader (term {}): cannot start allocating: {}", term,
                 (!tso.is_ok() ? tso.status() : ids.status()).message());
    return nullptr;
  }
  a->tso = std::move(tso).value();
  a->ids = std::move(ids).value();
  spdlog::info("PD leader (term {}): TSO starts above {} ms, ids at {}", term, group_.tso_bound_ms(),
               group_.id_bound());
  allocators_ = a;
  return a;
}

bool PdService::check_cluster(const pdpb::RequestHeader& req, pdpb::ResponseHeader* resp) {
  resp->set_cluster_id(meta_.cluster_id());
  // Every request names its cluster; 0 is not a wildcard (GetMembers tells the id).
  if (req.cluster_id() != meta_.cluster_id()) {
    set_error(resp, pdpb::CLUSTER_ID_MISMATCH,
              req.cluster_id() == 0
                  ? fmt::format("request carries no cluster id; this PD serves cluster {} (ask GetMembers)",
                                meta_.cluster_id())
                  : fmt::format("request is for cluster {}, but this PD serves cluster {}", req.cluster_id(),
                                meta_.cluster_id()));
    return false;
  }
  return true;
}

grpc::Status PdService::GetMembers(grpc::ServerContext*, const pdpb::GetMembersRequest* req,
                                   pdpb::GetMembersResponse* resp) {
  // Any member answers, and a request without a cluster id is how a client learns it.
  if (req->header().cluster_id() == 0 || check_cluster(req->header(), resp->mutable_header())) {
    resp->mutable_header()->clear_error();
    resp->mutable_header()->set_cluster_id(meta_.cluster_id());
  }
  resp->set_version(std::string(kRdbVersion));
  for (auto& m : group_.members()) {
    *resp->add_members() = std::move(m);
  }
  if (auto leader = group_.leader()) {
    *resp->mutable_leader() = *leader;
  }
  return grpc::Status::OK;
}

grpc::Status PdService::serve_tso(const pdpb::TsoRequest& req, pdpb::TsoResponse* resp) {
  ScopedTimer timer(tso_latency_);
  if (!check_header(req.header(), resp->mutable_header())) {
    return grpc::Status::OK;
  }
  auto alloc = allocators();
  if (!alloc) {
    set_not_leader(resp->mutable_header());
    return grpc::Status::OK;
  }
  auto first = alloc->tso->allocate(req.count());
  // Still the serving leader after allocating: a new leader serves only once this
  // lease ran out, so what is answered here is below anything it hands out.
  if (first.is_ok() && group_.serving_term() != alloc->term) {
    set_not_leader(resp->mutable_header());
    return grpc::Status::OK;
  }
  if (!first.is_ok()) {
    if (first.status().code() == StatusCode::kInvalidArgument) {
      set_error(resp->mutable_header(), pdpb::INVALID_ARGUMENT, first.status().message());
      return grpc::Status::OK;
    }
    spdlog::error("TSO allocation failed: {}", first.status().to_string());
    return {grpc::StatusCode::UNAVAILABLE, first.status().to_string()};
  }
  resp->set_first_timestamp(first.value());
  resp->set_count(req.count());
  tso_requests_.inc();
  tso_timestamps_.inc(req.count());
  return grpc::Status::OK;
}

namespace {

// One TSO stream: read a request, answer it, read the next. Deletes itself when done.
class TsoReactor final : public grpc::ServerBidiReactor<pdpb::TsoRequest, pdpb::TsoResponse> {
 public:
  explicit TsoReactor(PdService& service) : service_(service) { StartRead(&req_); }
  void OnReadDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status::OK);  // the client closed its side (or the call was cancelled)
      return;
    }
    resp_.Clear();
    if (grpc::Status s = service_.serve_tso(req_, &resp_); !s.ok()) {
      Finish(s);
      return;
    }
    if (!resp_.header().has_error() && !service_.tso_addr().empty()) {
      resp_.set_tso_addr(service_.tso_addr());  // a client may move to the TCP endpoint
    }
    StartWrite(&resp_);
  }
  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status::OK);  // the stream broke; nothing more to say on it
      return;
    }
    StartRead(&req_);
  }
  void OnDone() override { delete this; }

 private:
  PdService& service_;
  pdpb::TsoRequest req_;
  pdpb::TsoResponse resp_;
};

}  // namespace

grpc::ServerBidiReactor<pdpb::TsoRequest, pdpb::TsoResponse>* PdService::Tso(grpc::CallbackServerContext*) {
  return new TsoReactor(*this);
}

grpc::Status PdService::AllocId(grpc::ServerContext*, const pdpb::AllocIdRequest* req, pdpb::AllocIdResponse* resp) {
  if (!check_header(req->header(), resp->mutable_header())) {
    return grpc::Status::OK;
  }
  std::uint32_t count = req->count() == 0 ? 1 : req->count();
  auto alloc = allocators();
  if (!alloc) {
    set_not_leader(resp->mutable_header());
    return grpc::Status::OK;
  }
  auto first = alloc->ids->allocate(count);
  if (!first.is_ok()) {
    if (first.status().code() == StatusCode::kInvalidArgument) {
      set_error(resp->mutable_header(), pdpb::INVALID_ARGUMENT, first.status().message());
      return grpc::Status::OK;
    }
    return {grpc::StatusCode::UNAVAILABLE, first.status().to_string()};
  }
  resp->set_first_id(first.value());
  resp->set_count(count);
  return grpc::Status::OK;
}

grpc::Status PdService::IsBootstrapped(grpc::ServerContext*, const pdpb::IsBootstrappedRequest* req,
                                       pdpb::IsBootstrappedResponse* resp) {
  if (check_header(req->header(), resp->mutable_header())) {
    resp->set_bootstrapped(meta_.is_bootstrapped());
  }
  return grpc::Status::OK;
}

namespace {

// The caller's TLS certificate common name; empty without TLS.
std::string peer_identity(const grpc::ServerContext* ctx) {
  if (ctx == nullptr || ctx->auth_context() == nullptr) {
    return "";
  }
  auto cns = ctx->auth_context()->FindPropertyValues(GRPC_X509_CN_PROPERTY_NAME);
  return cns.empty() ? "" : std::string(cns.front().data(), cns.front().size());
}

}  // namespace

grpc::Status PdService::Bootstrap(grpc::ServerContext* ctx, const pdpb::BootstrapRequest* req,
                                  pdpb::BootstrapResponse* resp) {
  if (!check_header(req->header(), resp->mutable_header())) {
    return grpc::Status::OK;
  }
  metapb::Store store = req->store();
  store.set_identity(peer_identity(ctx));
  pdpb::PdCommand cmd;
  *cmd.mutable_bootstrap()->mutable_store() = store;
  *cmd.mutable_bootstrap()->mutable_region() = req->region();
  Status s = replicate(std::move(cmd), resp->mutable_header());
  if (!s.is_ok()) {
    if (s.code() != StatusCode::kUnavailable) {
      set_error(resp->mutable_header(), error_type_of(s), s.message());
    }
  } else {
    spdlog::info("cluster {} bootstrapped by store {} with region {}", meta_.cluster_id(), req->store().id(),
                 req->region().id());
  }
  return grpc::Status::OK;
}

grpc::Status PdService::PutStore(grpc::ServerContext* ctx, const pdpb::PutStoreRequest* req,
                                 pdpb::PutStoreResponse* resp) {
  if (!check_header(req->header(), resp->mutable_header())) {
    return grpc::Status::OK;
  }
  if (!handed_out(req->store().id())) {
    set_error(resp->mutable_header(), pdpb::INVALID_ARGUMENT,
              fmt::format("store id {} was never allocated by this PD (ask AllocId first)", req->store().id()));
    return grpc::Status::OK;
  }
  metapb::Store store = req->store();
  std::string caller = peer_identity(ctx);
  auto existing = meta_.get_store(store.id());
  if (existing && !existing->identity().empty() && existing->address() != store.address() &&
      existing->identity() != caller) {
    set_error(resp->mutable_header(), pdpb::INVALID_ARGUMENT,
              fmt::format("store {} registered as '{}'; '{}' may not move it to {}", store.id(), existing->identity(),
                          caller, store.address()));
    return grpc::Status::OK;
  }
  store.set_identity(existing && !existing->identity().empty() ? existing->identity() : caller);
  pdpb::PdCommand cmd;
  *cmd.mutable_put_store() = store;
  Status s = replicate(std::move(cmd), resp->mutable_header());
  if (!s.is_ok() && s.code() != StatusCode::kUnavailable) {
    set_error(resp->mutable_header(),
              s.code() == ServerCode::kAlreadyExists ? pdpb::INVALID_ARGUMENT : error_type_of(s), s.message());
  }
  return grpc::Status::OK;
}

grpc::Status PdService::GetStore(grpc::ServerContext*, const pdpb::GetStoreRequest* req, pdpb::GetStoreResponse* resp) {
  if (!check_header(req->header(), resp->mutable_header())) {
    return grpc::Status::OK;
  }
  auto store = meta_.get_store(req->store_id());
  if (!store) {
    set_error(resp->mutable_header(), pdpb::STORE_NOT_FOUND, fmt::format("store {} is not known", req->store_id()));
  } else {
    *resp->mutable_store() = *store;
  }
  return grpc::Status::OK;
}

grpc::Status PdService::GetAllStores(grpc::ServerContext*, const pdpb::GetAllStoresRequest* req,
                                     pdpb::GetAllStoresResponse* resp) {
  if (check_header(req->header(), resp->mutable_header())) {
    for (auto& s : meta_.all_stores()) {
      *resp->add_stores() = std::move(s);
    }
  }
  return grpc::Status::OK;
}

static void fill_region(const std::optional<pdpb::RegionInfo>& info, const std::string& what,
                        pdpb::GetRegionResponse* resp) {
  if (!info) {
    set_error(resp->mutable_header(), pdpb::REGION_NOT_FOUND, what);
    return;
  }
  *resp->mutable_region() = info->region();
  *resp->mutable_leader() = info->leader();
}

grpc::Status PdService::GetRegion(grpc::ServerContext*, const pdpb::GetRegionRequest* req,
                                  pdpb::GetRegionResponse* resp) {
  if (check_header(req->header(), resp->mutable_header())) {
    auto found = req->before() ? meta_.region_before(req->region_key()) : meta_.region_for_key(req->region_key());
    if (!found && spdlog::should_log(spdlog::level::debug)) {
      spdlog::debug("GetRegion{}: no region holds {}", req->before() ? " (before)" : "",
                    printable_key(req->region_key()));
    }
    fill_region(
        found,
        meta_.is_bootstrapped() ? "no region holds that key" : "cluster is not bootstrapped: no store has joined yet",
        resp);
  }
  return grpc::Status::OK;
}

grpc::Status PdService::GetRegionById(grpc::ServerContext*, const pdpb::GetRegionByIdRequest* req,
                                      pdpb::GetRegionResponse* resp) {
  if (check_header(req->header(), resp->mutable_header())) {
    fill_region(meta_.region_by_id(req->region_id()), fmt::format("region {} is not known", req->region_id()), resp);
  }
  return grpc::Status::OK;
}

Status PdService::validate_region_heartbeat(const pdpb::RegionHeartbeatRequest& req) {
  const metapb::Region& region = req.region();
  const metapb::Peer& leader = req.leader();
  bool leader_is_member = std::any_of(region.peers().begin(), region.peers().end(), [&](const metapb::Peer& p) {
    return p.id() == leader.id() && p.store_id() == leader.store_id();
  });
  if (!leader_is_member) {
    return Status::invalid_argument(fmt::format("region {}: leader peer {} on store {} is not a member of the region",
                                                region.id(), leader.id(), leader.store_id()));
  }
  for (const auto& pending : req.pending_peers()) {
    bool member = std::any_of(region.peers().begin(), region.peers().end(),
                              [&](const metapb::Peer& p) { return p.id() == pending.id(); });
    if (!member) {
      return Status::invalid_argument(
          fmt::format("region {}: pending peer {} is not a member of the region", region.id(), pending.id()));
    }
  }
  if (!meta_.get_store(leader.store_id())) {
    return Status::invalid_argument(
        fmt::format("region {}: store {} is not registered", region.id(), leader.store_id()));
  }
  if (!handed_out(region.id())) {
    return Status::invalid_argument(fmt::format("region id {} was never allocated by this PD", region.id()));
  }
  for (const auto& p : region.peers()) {
    if (!handed_out(p.id())) {
      return Status::invalid_argument(
          fmt::format("region {}: peer id {} was never allocated by this PD", region.id(), p.id()));
    }
  }
  auto known = meta_.region_by_id(region.id());
  if (!known) {
    return Status::ok();
  }
  // Epochs grow only by what PD asked for: one conf_ver per membership change it
  // issued (plus a little slack for changes issued before a PD restart). Splits are
  // decided by the stores: the version may grow by what many batch splits (at most
  // 64 keys each) between two heartbeats can add, no more.
  const auto& have = known->region().region_epoch();
  const auto& got = region.region_epoch();
  std::lock_guard lock(epoch_mu_);
  std::uint64_t& allowance = conf_ver_allowance_[region.id()];
  std::uint64_t conf_growth = got.conf_ver() > have.conf_ver() ? got.conf_ver() - have.conf_ver() : 0;
  std::uint64_t version_growth = got.version() > have.version() ? got.version() - have.version() : 0;
  if (conf_growth > allowance + kEpochSlack || version_growth > kVersionSlack) {
    return Status::invalid_argument(
        fmt::format("region {}: epoch ({}, {}) jumps beyond what PD handed out (known ({}, {}), {} change(s) issued)",
                    region.id(), got.conf_ver(), got.version(), have.conf_ver(), have.version(), allowance));
  }
  allowance = conf_growth > allowance ? 0 : allowance - conf_growth;
  return Status::ok();
}

void PdService::log_refused_report(const Status& why) {
  // Stale reports are normal (a report made before a split that PD already heard of); one
  // refused for good (a region PD never learns) shows as the same line again and again.
  std::lock_guard lock(refusals_mu_);
  ++refusals_;
  auto now = std::chrono::steady_clock::now();
  if (now - refusal_logged_ >= std::chrono::seconds(10)) {
    spdlog::info("region reports refused: {} in the last 10 s; the latest: {}", refusals_, why.message());
    refusals_ = 0;
    refusal_logged_ = now;
  }
}

grpc::Status PdService::RegionHeartbeat(grpc::ServerContext*, const pdpb::RegionHeartbeatRequest* req,
                                        pdpb::RegionHeartbeatResponse* resp) {
  if (!check_header(req->header(), resp->mutable_header())) {
    return grpc::Status::OK;
  }
  if (Status v = validate_region_heartbeat(*req); !v.is_ok()) {
    spdlog::warn("region heartbeat refused: {}", v.message());
    set_error(resp->mutable_header(), pdpb::INVALID_ARGUMENT, v.message());
    return grpc::Status::OK;
  }
  pdpb::PdCommand cmd;
  *cmd.mutable_region()->mutable_region() = req->region();
  *cmd.mutable_region()->mutable_leader() = req->leader();
  auto changes = meta_.region_would_change(cmd.region());
  if (!changes.is_ok()) {
    log_refused_report(changes.status());
  }
  Status s = !changes.is_ok() ? changes.status()
             : *changes       ? replicate(std::move(cmd), resp->mutable_header())
                              : Status::ok();
  if (!s.is_ok()) {
    if (s.code() != StatusCode::kUnavailable) {
      set_error(resp->mutable_header(), error_type_of(s), s.message());
    }
    return grpc::Status::OK;
  }
  {
    std::lock_guard lock(sizes_mu_);
    region_sizes_[req->region().id()] = {req->approximate_size(), req->approximate_keys()};
    auto [since, fresh] =
        range_since_.try_emplace(req->region().id(), req->region().region_epoch().version(), liveness_.now_ms());
    if (!fresh && since->second.first != req->region().region_epoch().version()) {
      since->second = {req->region().region_epoch().version(), liveness_.now_ms()};
    }
  }
  RegionDecision decision = schedule(*req);
  if (decision.transfer_leader_to) {
    record_operation(req->region().id(), "transfer_leader",
                     fmt::format("leader from store {} to store {}", req->leader().store_id(),
                                 decision.transfer_leader_to->store_id()));
    *resp->mutable_transfer_leader() = *decision.transfer_leader_to;
  }
  if (decision.merge_into) {
    {
      std::lock_guard lock(epoch_mu_);
      ++conf_ver_allowance_[req->region().id()];  // PREPARE_MERGE bumps conf_ver once
    }
    spdlog::info("region {}: asking store {} to merge it into region {}", req->region().id(), req->leader().store_id(),
                 decision.merge_into->id());
    record_operation(req->region().id(), "merge", fmt::format("into region {}", decision.merge_into->id()));
    *resp->mutable_merge_into() = *decision.merge_into;
  }
  if (decision.joint_change) {
    {
      std::lock_guard lock(epoch_mu_);
      conf_ver_allowance_[req->region().id()] += 2;  // entering and leaving the joint configuration
    }
    std::string what;
    for (const auto& c : decision.joint_change->changes()) {
      what += fmt::format(" {} peer {} on store {};", pdpb::ChangePeerType_Name(c.type()), c.peer().id(),
                          c.peer().store_id());
    }
    spdlog::info("region {}: asking store {} for a joint change:{}", req->region().id(), req->leader().store_id(),
                 what);
    record_operation(req->region().id(), "joint_change", what.substr(1));
    *resp->mutable_change_peer_v2() = std::move(*decision.joint_change);
  }
  auto& change = decision.change;
  if (change) {
    if (change->type() == pdpb::ADD_LEARNER) {
      auto alloc = allocators();
      auto id = alloc ? alloc->ids->allocate(1) : Result<std::uint64_t>(Status::unavailable("not the PD leader"));
      if (!id.is_ok()) {
        return grpc::Status::OK;  // try again on the next heartbeat
      }
      change->mutable_peer()->set_id(id.value());
    }
    {
      std::lock_guard lock(epoch_mu_);
      ++conf_ver_allowance_[req->region().id()];  // this change may bump conf_ver once
    }
    spdlog::info("region {}: asking store {} to {} peer {} on store {}", req->region().id(), req->leader().store_id(),
                 pdpb::ChangePeerType_Name(change->type()), change->peer().id(), change->peer().store_id());
    std::string kind = pdpb::ChangePeerType_Name(change->type());
    std::transform(kind.begin(), kind.end(), kind.begin(), [](unsigned char c) { return std::tolower(c); });
    record_operation(req->region().id(), kind,
                     fmt::format("peer {} on store {}", change->peer().id(), change->peer().store_id()));
    *resp->mutable_change_peer() = std::move(*change);
  }
  return grpc::Status::OK;
}

void PdService::record_operation(std::uint64_t region_id, std::string kind, std::string detail) {
  operations_.record({static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                     std::chrono::system_clock::now().time_since_epoch())
                                                     .count()),
                      region_id, std::move(kind), std::move(detail)});
}

std::map<std::uint64_t, StoreLiveness> PdService::store_liveness() {
  std::map<std::uint64_t, StoreLiveness> stores;
  for (const auto& st : meta_.all_stores()) {
    StoreLiveness l = liveness_.liveness(st.id());
    l.tombstone = st.state() == metapb::TOMBSTONE;
    l.offline = st.state() == metapb::OFFLINE;
    stores[st.id()] = l;
  }
  return stores;
}

RegionDecision PdService::schedule(const pdpb::RegionHeartbeatRequest& req) {
  std::map<std::uint64_t, StoreLiveness> stores = store_liveness();
  std::lock_guard lock(load_mu_);
  std::uint64_t now = liveness_.now_ms();
  if (now >= load_at_ms_ + 500 || load_at_ms_ == 0) {
    std::map<std::uint64_t, std::uint64_t> sizes;
    {
      std::lock_guard sizes_lock(sizes_mu_);
      for (const auto& [id, s] : region_sizes_) {
        sizes.emplace_hint(sizes.end(), id, s.first);
      }
    }
    std::vector<pdpb::RegionInfo> regions = meta_.all_regions();
    load_ = cluster_load(regions, stores, liveness_.config().max_replicas, sizes);
    load_at_ms_ = now;
    moves_started_ = 0;
    forget_gone_regions(regions);
  }
  for (auto& [id, l] : stores) {
    l.region_count = load_.stores[id].regions;  // the region tree's count, fresher than store heartbeats
  }
  const std::uint64_t region_id = req.region().id();
  if (req.merging_into() != 0 && meta_.region_by_id(req.merging_into())) {
    // A merge under way: neither region is touched until it ends (a move or transfer
    // would roll it back or keep its leaders apart).
    in_flight_[req.merging_into()] = {0, 0, now + 3000};
    in_flight_.erase(region_id);
    return {};
  }
  if (auto it = in_flight_.find(region_id); it != in_flight_.end()) {
    bool same = (it->second.conf_ver == 0 || it->second.conf_ver == req.region().region_epoch().conf_ver()) &&
                (it->second.leader == 0 || it->second.leader == req.leader().id());  // 0: any leader
    if (same && now < it->second.until_ms) {
      return {};  // the last step has not shown up yet
    }
    in_flight_.erase(it);
  }
  const bool joint = std::any_of(req.region().peers().begin(), req.region().peers().end(),
                                 [](const metapb::Peer& p) { return !p.is_learner() && p.role() != metapb::VOTER; });
  if (joint) {
    return {};  // a joint configuration: its leader leaves it by itself
  }
  auto started = [&](const RegionDecision& d) {
    if (d.change || d.joint_change || d.transfer_leader_to) {
      in_flight_[region_id] = {req.region().region_epoch().conf_ver(), req.leader().id(), now + 3000};
    }
    return d;
  };
  std::vector<metapb::Peer> pending(req.pending_peers().begin(), req.pending_peers().end());
  // A move asked for by hand goes first: the checkers would pick their own victim.
  if (auto move = moves_.find(region_id); move != moves_.end()) {
    auto step = now > move->second.until_ms
                    ? std::nullopt
                    : move_peer_step(req.region(), req.leader().store_id(), move->second, pending);
    if (step) {
      return started(*step);
    }
    spdlog::info("region {}: move of its peer from store {} to store {} {}", region_id, move->second.from_store,
                 move->second.to_store, now > move->second.until_ms ? "given up (timed out)" : "is over");
    moves_.erase(move);
  }
  // The replica checker first: what the region needs beats what the cluster would like.
  RegionDecision d = check_region(req.region(), req.leader().store_id(), stores, liveness_.config(), pending);
  if (d.change || d.joint_change || d.transfer_leader_to) {
    return started(d);
  }
  if (merge_.max_merge_region_size > 0) {
    auto info = meta_.region_by_id(region_id);
    auto source = merge_candidate(info);
    if (source) {
      source->has_pending_peers = !pending.empty();
      auto before = source->region.start_key().empty()
                        ? std::nullopt
                        : merge_candidate(meta_.region_before(source->region.start_key()));
      auto after = source->region.end_key().empty() ? std::nullopt
                                                    : merge_candidate(meta_.region_for_key(source->region.end_key()));
      if (auto target = merge_target(*source, before, after, merge_, liveness_.config().max_replicas, now)) {
        d.merge_into = std::move(target);
        // Both regions wait for the merge to show up before anything else is asked of them.
        in_flight_[d.merge_into->id()] = {d.merge_into->region_epoch().conf_ver(), 0, now + 3000};
        in_flight_[region_id] = {req.region().region_epoch().conf_ver(), req.leader().id(), now + 3000};
        return d;
      }
    }
  }
  if (now >= leader_window_ms_ + 1000) {
    leader_window_ms_ = now;
    leader_transfers_ = 0;
  }
  bool may_move_leader = leader_transfers_ < balance_.leader_schedule_limit;
  bool may_move_region = load_.moving + moves_started_ < balance_.region_schedule_limit;
  d = balance_region(req.region(), req.leader().store_id(), load_, liveness_.config().max_replicas, pending,
                     may_move_leader, may_move_region, req.approximate_size());
  if (d.transfer_leader_to) {
    ++leader_transfers_;
    // Counted at once, so the next heartbeats see it before the tree is recomputed.
    --load_.stores[req.leader().store_id()].leaders;
    ++load_.stores[d.transfer_leader_to->store_id()].leaders;
  }
  if (d.change) {
    ++moves_started_;
    ++load_.stores[d.change->peer().store_id()].regions;
    load_.stores[d.change->peer().store_id()].size += region_weight(load_, req.approximate_size());
    spdlog::info("region {}: balancing replicas onto store {}", req.region().id(), d.change->peer().store_id());
  }
  return started(d);
}

void PdService::forget_gone_regions(const std::vector<pdpb::RegionInfo>& regions) {
  std::set<std::uint64_t> live;
  for (const auto& r : regions) {
    live.insert(r.region().id());
  }
  // `regions` is a snapshot: a region added since (a split's new region, reported on
  // another thread) is not in it but is in the tree now, and keeps what PD knows of it.
  auto gone = [&](std::uint64_t id) { return live.count(id) == 0 && !meta_.region_by_id(id); };
  auto prune = [&gone](auto& by_region) {
    for (auto it = by_region.begin(); it != by_region.end();) {
      it = gone(it->first) ? by_region.erase(it) : std::next(it);
    }
  };
  prune(in_flight_);
  prune(moves_);
  {
    std::lock_guard lock(sizes_mu_);
    prune(region_sizes_);
    prune(range_since_);
  }
  std::lock_guard lock(epoch_mu_);
  prune(conf_ver_allowance_);
}

std::optional<MergeCandidate> PdService::merge_candidate(const std::optional<pdpb::RegionInfo>& info) {
  if (!info) {
    return std::nullopt;
  }
  MergeCandidate c;
  c.region = info->region();
  std::lock_guard lock(sizes_mu_);
  if (auto it = region_sizes_.find(c.region.id()); it != region_sizes_.end()) {
    std::tie(c.size, c.keys) = it->second;
  }
  auto since = range_since_.find(c.region.id());
  if (since == range_since_.end() || since->second.first != c.region.region_epoch().version()) {
    return std::nullopt;  // not seen at this range by a heartbeat yet
  }
  c.range_since_ms = since->second.second;
  return c;
}

void PdService::advance_gc_safe_point() {
  const std::uint64_t life_ms = gc_life_time_ms_.load();
  auto alloc = allocators();
  if (!alloc || life_ms == 0) {
    return;
  }
  auto now = alloc->tso->allocate(1);
  if (!now.is_ok() || (*now >> TsoAllocator::kLogicalBits) <= life_ms) {
    return;
  }
  const std::uint64_t candidate = ((*now >> TsoAllocator::kLogicalBits) - life_ms) << TsoAllocator::kLogicalBits;
  // Moved in steps of a tenth of the life time (at least a second): not one Raft entry
  // per heartbeat, nor a new pass over every region's versions each time.
  const std::uint64_t step_ms = std::max<std::uint64_t>(1000, life_ms / 10);
  if (candidate < group_.gc_safe_point() + (step_ms << TsoAllocator::kLogicalBits)) {
    return;
  }
  pdpb::PdCommand cmd;
  cmd.set_gc_safe_point(candidate);
  if (Status s = group_.propose(std::move(cmd), PdGroup::Clock::now() + kReplicateTimeout); !s.is_ok()) {
    spdlog::warn("could not advance the GC safe point: {}", s.to_string());
  }
}

grpc::Status PdService::StoreHeartbeat(grpc::ServerContext*, const pdpb::StoreHeartbeatRequest* req,
                                       pdpb::StoreHeartbeatResponse* resp) {
  if (!check_header(req->header(), resp->mutable_header())) {
    return grpc::Status::OK;
  }
  if (!meta_.get_store(req->store_id())) {
    set_error(resp->mutable_header(), pdpb::STORE_NOT_FOUND, fmt::format("store {} is not known", req->store_id()));
    return grpc::Status::OK;
  }
  liveness_.heartbeat(req->store_id(), req->region_count(), req->leader_count(), req->capacity_bytes(),
                      req->available_bytes());
  advance_gc_safe_point();
  resp->set_gc_safe_point(group_.gc_safe_point());
  // A store being removed becomes a tombstone once no region keeps a replica on it.
  auto store = meta_.get_store(req->store_id());
  if (store && store->state() == metapb::OFFLINE) {
    bool holds = false;
    for (const auto& info : meta_.all_regions()) {
      for (const auto& p : info.region().peers()) {
        holds = holds || p.store_id() == req->store_id();
      }
    }
    if (!holds && req->region_count() == 0) {
      store->set_state(metapb::TOMBSTONE);
      pdpb::PdCommand cmd;
      *cmd.mutable_put_store() = *store;
      if (group_.propose(std::move(cmd), PdGroup::Clock::now() + kReplicateTimeout).is_ok()) {
        spdlog::info("store {} holds no replicas any more: it is now a tombstone", req->store_id());
      }
    }
  }
  return grpc::Status::OK;
}

grpc::Status PdService::RemoveStore(grpc::ServerContext*, const pdpb::RemoveStoreRequest* req,
                                    pdpb::RemoveStoreResponse* resp) {
  if (!check_header(req->header(), resp->mutable_header())) {
    return grpc::Status::OK;
  }
  auto store = meta_.get_store(req->store_id());
  if (!store) {
    set_error(resp->mutable_header(), pdpb::STORE_NOT_FOUND, fmt::format("store {} is not known", req->store_id()));
    return grpc::Status::OK;
  }
  if (store->state() == metapb::UP) {
    store->set_state(metapb::OFFLINE);
    pdpb::PdCommand cmd;
    *cmd.mutable_put_store() = *store;
    Status s = replicate(std::move(cmd), resp->mutable_header());
    if (!s.is_ok()) {
      if (s.code() != StatusCode::kUnavailable) {
        set_error(resp->mutable_header(), pdpb::UNKNOWN, s.message());
      }
      return grpc::Status::OK;
    }
    spdlog::info("store {} is being removed: moving its replicas away", req->store_id());
  }
  return grpc::Status::OK;
}

grpc::Status PdService::UpdateGcSafePoint(grpc::ServerContext*, const pdpb::UpdateGcSafePointRequest* req,
                                          pdpb::UpdateGcSafePointResponse* resp) {
  if (!check_header(req->header(), resp->mutable_header())) {
    return grpc::Status::OK;
  }
  const std::uint64_t previous = group_.gc_safe_point();
  resp->set_previous_safe_point(previous);
  if (req->safe_point() > previous) {
    auto alloc = allocators();
    if (!alloc) {
      set_error(resp->mutable_header(), pdpb::NOT_LEADER, "this member is not serving");
      return grpc::Status::OK;
    }
    auto now = alloc->tso->allocate(1);
    if (!now.is_ok()) {
      set_error(resp->mutable_header(), pdpb::UNKNOWN, now.status().message());
      return grpc::Status::OK;
    }
    if (req->safe_point() > *now) {
      set_error(resp->mutable_header(), pdpb::INVALID_ARGUMENT,
                fmt::format("a GC safe point of {} is in the future (PD is at {})", req->safe_point(), *now));
      return grpc::Status::OK;
    }
    pdpb::PdCommand cmd;
    cmd.set_gc_safe_point(req->safe_point());
    Status s = replicate(std::move(cmd), resp->mutable_header());
    if (!s.is_ok()) {
      if (s.code() != StatusCode::kUnavailable) {
        set_error(resp->mutable_header(), pdpb::UNKNOWN, s.message());
      }
      return grpc::Status::OK;
    }
    spdlog::info("GC safe point raised to {} on request", req->safe_point());
  }
  resp->set_safe_point(group_.gc_safe_point());
  return grpc::Status::OK;
}

grpc::Status PdService::MovePeer(grpc::ServerContext*, const pdpb::MovePeerRequest* req, pdpb::MovePeerResponse* resp) {
  if (!check_header(req->header(), resp->mutable_header())) {
    return grpc::Status::OK;
  }
  auto info = meta_.region_by_id(req->region_id());
  if (!info) {
    set_error(resp->mutable_header(), pdpb::REGION_NOT_FOUND, fmt::format("region {} is not known", req->region_id()));
    return grpc::Status::OK;
  }
  auto stores = store_liveness();
  auto to = stores.find(req->to_store());
  rdb::MovePeer move{req->from_store(), req->to_store(), liveness_.now_ms() + kMovePeerTimeoutMs};
  if (Status s = check_move_peer(info->region(), move, to == stores.end() ? nullptr : &to->second); !s.is_ok()) {
    set_error(resp->mutable_header(), pdpb::INVALID_ARGUMENT, s.message());
    return grpc::Status::OK;
  }
  std::lock_guard lock(load_mu_);
  moves_[req->region_id()] = move;
  spdlog::info("region {}: moving its peer from store {} to store {} (asked by hand)", req->region_id(),
               req->from_store(), req->to_store());
  return grpc::Status::OK;
}

grpc::Status PdService::GetClusterStatus(grpc::ServerContext*, const pdpb::GetClusterStatusRequest* req,
                                         pdpb::GetClusterStatusResponse* resp) {
  if (!check_header(req->header(), resp->mutable_header())) {
    return grpc::Status::OK;
  }
  auto regions = meta_.all_regions();
  std::map<std::uint64_t, std::uint64_t> store_sizes;
  {
    std::lock_guard lock(sizes_mu_);
    for (auto& r : regions) {
      auto it = region_sizes_.find(r.region().id());
      if (it != region_sizes_.end()) {
        r.set_approximate_size(it->second.first);
        r.set_approximate_keys(it->second.second);
      }
      for (const auto& p : r.region().peers()) {
        store_sizes[p.store_id()] += r.approximate_size();
      }
    }
  }
  for (const auto& st : meta_.all_stores()) {
    auto* out = resp->add_stores();
    out->set_region_size(store_sizes[st.id()]);
    *out->mutable_store() = st;
    StoreLiveness l = liveness_.liveness(st.id());
    out->set_up(l.up);
    out->set_last_heartbeat_age_ms(liveness_.age_ms(st.id()));
    out->set_region_count(l.region_count);
    out->set_leader_count(liveness_.leader_count(st.id()));
    auto [capacity, available] = liveness_.capacity(st.id());
    out->set_capacity_bytes(capacity);
    out->set_available_bytes(available);
  }
  for (auto& r : regions) {
    *resp->add_regions() = std::move(r);
  }
  resp->set_max_replicas(liveness_.config().max_replicas);
  return grpc::Status::OK;
}

namespace {

// The members after a change, or the header's error when the change failed.
template <typename Response>
void answer_member_change(const Status& s, PdGroup& group, Response* resp) {
  if (!s.is_ok()) {
    if (resp->header().error().type() != pdpb::NOT_LEADER) {
      set_error(resp->mutable_header(), error_type_of(s), s.message());
    }
    return;
  }
  for (auto& m : group.members()) {
    *resp->add_members() = std::move(m);
  }
}

}  // namespace

grpc::Status PdService::AddMember(grpc::ServerContext*, const pdpb::AddMemberRequest* req,
                                  pdpb::AddMemberResponse* resp) {
  if (!check_header(req->header(), resp->mutable_header())) {
    return grpc::Status::OK;
  }
  pdpb::Member m;
  m.set_name(req->name());
  m.set_address(req->address());
  Status s = group_.add_member(m, PdGroup::Clock::now() + kReplicateTimeout);
  if (s.code() == StatusCode::kUnavailable) {
    set_not_leader(resp->mutable_header());
  } else if (s.is_ok()) {
    spdlog::info("PD member '{}' at {} joined the group", req->name(), req->address());
  }
  answer_member_change(s, group_, resp);
  return grpc::Status::OK;
}

grpc::Status PdService::RemoveMember(grpc::ServerContext*, const pdpb::RemoveMemberRequest* req,
                                     pdpb::RemoveMemberResponse* resp) {
  if (!check_header(req->header(), resp->mutable_header())) {
    return grpc::Status::OK;
  }
  auto deadline = PdGroup::Clock::now() + kReplicateTimeout;
  Status s;
  if (req->name() == group_.name() && group_.members().size() > 1) {
    // The leader leaves: it hands over first, and the caller asks the new leader.
    s = group_.transfer_leadership(deadline);
    if (s.is_ok()) {
      s = Status::unavailable("the leader handed over before its removal");
    }
  } else {
    s = group_.remove_member(req->name(), deadline);
  }
  if (s.code() == StatusCode::kUnavailable) {
    set_not_leader(resp->mutable_header());
  } else if (s.is_ok()) {
    spdlog::info("PD member '{}' left the group", req->name());
  }
  answer_member_change(s, group_, resp);
  return grpc::Status::OK;
}

}  // namespace rdb
