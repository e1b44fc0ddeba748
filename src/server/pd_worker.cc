#include "server/pd_worker.h"

#include <fmt/format.h>
#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>
#include <sys/statvfs.h>

#include <algorithm>

#include "common/logging.h"
#include "server/peer_roles.h"

namespace rdb {
namespace {

raftpb::ConfChangeType conf_change_type(pdpb::ChangePeerType t) {
  switch (t) {
    case pdpb::ADD_VOTER:
      return raftpb::ADD_NODE;
    case pdpb::REMOVE:
      return raftpb::REMOVE_NODE;
    default:
      return raftpb::ADD_LEARNER_NODE;
  }
}

}  // namespace

PdWorker::PdWorker(PdClient& pd, RaftStore& store, std::chrono::milliseconds interval, std::string data_dir)
    : pd_(pd), store_(store), interval_(interval), data_dir_(std::move(data_dir)) {}

PdWorker::~PdWorker() {
  stop();
}

void PdWorker::start() {
  thread_ = std::thread([this] { run(); });
}

void PdWorker::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
}

Result<std::string> PdWorker::resolve(std::uint64_t store_id) {
  RDB_ASSIGN_OR_RETURN(metapb::Store store, lookup_store(store_id));
  return store.address();
}

Result<std::string> PdWorker::resolve_raft(std::uint64_t store_id) {
  RDB_ASSIGN_OR_RETURN(metapb::Store store, lookup_store(store_id));
  return store.raft_address();
}

Result<metapb::Store> PdWorker::lookup_store(std::uint64_t store_id) {
  pdpb::GetStoreRequest req;
  req.set_store_id(store_id);
  pdpb::GetStoreResponse resp;
  if (Status s = pd_.call(&pdpb::PD::Stub::GetStore, req, &resp, PdClient::Clock::now() + std::chrono::seconds(2));
      !s.is_ok()) {
    return Status::unavailable(fmt::format("PD unreachable: {}", s.message()));
  }
  if (resp.header().has_error()) {
    return ServerStatus::not_found(resp.header().error().message());
  }
  return resp.store();
}

Result<std::uint64_t> PdWorker::alloc_ids(std::uint32_t count) {
  pdpb::AllocIdRequest req;
  req.set_count(count);
  pdpb::AllocIdResponse resp;
  if (Status s = pd_.call(&pdpb::PD::Stub::AllocId, req, &resp, PdClient::Clock::now() + std::chrono::seconds(5));
      !s.is_ok()) {
    return Status::unavailable(fmt::format("PD unreachable: {}", s.message()));
  }
  if (resp.header().has_error()) {
    return Status::unavailable(fmt::format("PD refused to allocate ids: {}", resp.header().error().message()));
  }
  if (resp.count() < count) {
    return Status::unavailable(fmt::format("PD allocated {} ids, {} were asked", resp.count(), count));
  }
  return resp.first_id();
}

void PdWorker::heartbeat_soon() {
  {
    std::lock_guard lock(mu_);
    soon_ = true;
  }
  cv_.notify_all();
}

void PdWorker::run() {
  for (;;) {
    heartbeat();
    std::unique_lock lock(mu_);
    if (cv_.wait_for(lock, interval_, [&] { return stopping_ || soon_; }) && stopping_) {
      return;
    }
    soon_ = false;
  }
}

void PdWorker::heartbeat() {
  auto regions = store_.regions();
  std::uint64_t leaders = 0;
  for (const auto& r : regions) {
    leaders += r.is_leader ? 1 : 0;
  }
  {
    pdpb::StoreHeartbeatRequest req;
    req.set_store_id(store_.store_id());
    req.set_region_count(regions.size());
    req.set_leader_count(leaders);
    struct statvfs fs {};
    if (::statvfs(data_dir_.c_str(), &fs) == 0) {
      req.set_capacity_bytes(static_cast<std::uint64_t>(fs.f_blocks) * fs.f_frsize);
      req.set_available_bytes(static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize);
    }
    pdpb::StoreHeartbeatResponse resp;
    if (Status s = pd_.call(&pdpb::PD::Stub::StoreHeartbeat, req, &resp, PdClient::Clock::now() + interval_);
        !s.is_ok()) {
      // No region is reported until it succeeds again: PD learns no split meanwhile.
      ++failed_store_heartbeats_;
      if (failed_store_heartbeats_ == 1 || failed_store_heartbeats_ % 30 == 0) {
        spdlog::warn("store heartbeat to PD failed ({} in a row; regions are not reported meanwhile): {}",
                     failed_store_heartbeats_, s.message());
      }
      return;
    }
    if (failed_store_heartbeats_ > 0) {
      spdlog::info("store heartbeat to PD answered again after {} failures", failed_store_heartbeats_);
      failed_store_heartbeats_ = 0;
    }
    if (on_gc_safe_point_ && resp.gc_safe_point() != 0) {
      on_gc_safe_point_(resp.gc_safe_point());
    }
  }
  ++round_;
  // Each quiet region reports once every quiet_rounds, in a round of its own (by id), so
  // that the reports spread evenly instead of coming all at once.
  const std::uint64_t quiet_rounds = std::max(kQuietRounds, (leaders + kMaxQuietPerRound - 1) / kMaxQuietPerRound);
  std::map<std::uint64_t, Reported> still_led;
  std::size_t refused = 0;  // region reports PD refused or did not answer this round
  std::string refused_why;
  for (const auto& r : regions) {
    if (!r.is_leader) {
      continue;
    }
    pdpb::RegionHeartbeatRequest req;
    *req.mutable_region() = r.region;
    *req.mutable_leader() = r.self;
    for (const auto& p : r.pending_peers) {
      *req.add_pending_peers() = p;
    }
    req.set_approximate_size(r.approximate_bytes);
    req.set_approximate_keys(r.approximate_keys);
    req.set_merging_into(r.merging_into);
    std::string what = req.SerializeAsString();
    Reported& last = still_led[r.region.id()];
    if (auto it = reported_.find(r.region.id()); it != reported_.end()) {
      last = it->second;
    }
    bool learners = std::any_of(r.region.peers().begin(), r.region.peers().end(),
                                [](const metapb::Peer& p) { return role_of(p) != metapb::VOTER; });
    bool due = what != last.what || last.in_motion || learners || !r.pending_peers.empty() || r.merging_into != 0 ||
               (round_ > last.round && (round_ + r.region.id()) % quiet_rounds == 0);
    if (!due) {
      continue;
    }
    pdpb::RegionHeartbeatResponse resp;
    const bool sent =
        pd_.call(&pdpb::PD::Stub::RegionHeartbeat, req, &resp, PdClient::Clock::now() + interval_).is_ok();
    if (!sent || resp.header().has_error()) {
      ++refused;
      if (refused_why.empty()) {
        refused_why = fmt::format("region {}: {}", r.region.id(),
                                  sent ? resp.header().error().message() : std::string("no answer in time"));
      }
    }
    if (spdlog::should_log(spdlog::level::debug)) {  // the keys are formatted only when logged
      spdlog::debug("region {} [{}, {}) version {} conf_ver {}: reported to PD, {}", r.region.id(),
                    printable_key(r.region.start_key()), printable_key(r.region.end_key()),
                    r.region.region_epoch().version(), r.region.region_epoch().conf_ver(),
                    !sent                       ? std::string("no answer in time")
                    : resp.header().has_error() ? "refused: " + resp.header().error().message()
                                                : std::string("accepted"));
    }
    if (sent && !resp.header().has_error()) {
      last = {
          std::move(what), round_,
          resp.has_change_peer() || resp.has_change_peer_v2() || resp.has_transfer_leader() || resp.has_merge_into()};
    }
    if (sent && resp.has_merge_into()) {
      std::uint64_t source = r.region.id();
      std::uint64_t target = resp.merge_into().id();
      spdlog::info("region {}: PD asks to merge it into region {}", source, target);
      store_.merge_region(source, target, [source, target](const Status& st) {
        if (!st.is_ok()) {
          spdlog::info("region {}: merge into region {} not started: {}", source, target, st.message());
        }
      });
    }
    if (sent && resp.has_transfer_leader()) {
      spdlog::info("region {}: PD asks to move leadership to peer {}", r.region.id(), resp.transfer_leader().id());
      store_.transfer_leader(r.region.id(), resp.transfer_leader().id());
    }
    std::uint64_t region_id = r.region.id();
    if (sent && resp.has_change_peer_v2() && resp.change_peer_v2().changes_size() > 0) {
      std::vector<std::pair<raftpb::ConfChangeType, metapb::Peer>> changes;
      std::string what;
      for (const auto& c : resp.change_peer_v2().changes()) {
        changes.emplace_back(conf_change_type(c.type()), c.peer());
        what += fmt::format(" {} peer {} on store {};", pdpb::ChangePeerType_Name(c.type()), c.peer().id(),
                            c.peer().store_id());
      }
      spdlog::info("region {}: PD asks for a joint change:{}", region_id, what);
      store_.change_peers(region_id, std::move(changes), [region_id, what](const Status& st) {
        if (st.is_ok()) {
          spdlog::info("region {}: joint change{} entered", region_id, what);
        } else {
          spdlog::info("region {}: joint change not done: {}", region_id, st.message());
        }
      });
    }
    if (!sent || !resp.has_change_peer()) {
      continue;
    }
    const auto& change = resp.change_peer();
    raftpb::ConfChangeType type = conf_change_type(change.type());
    store_.change_peer(region_id, type, change.peer(), [region_id, change](const Status& st) {
      if (st.is_ok()) {
        spdlog::info("region {}: {} peer {} on store {} done", region_id, pdpb::ChangePeerType_Name(change.type()),
                     change.peer().id(), change.peer().store_id());
      } else {
        spdlog::debug("region {}: membership change not done: {}", region_id, st.message());
      }
    });
  }
  reported_ = std::move(still_led);  // regions no longer led here are forgotten
  // A report refused round after round (a region PD never learns) is worth a line now and then.
  if (refused > 0 && (round_ - last_refusal_log_round_ >= 30 || last_refusal_log_round_ == 0)) {
    spdlog::warn("PD refused or did not answer {} region report(s) this round; the first: {}", refused, refused_why);
    last_refusal_log_round_ = round_;
  }
}

}  // namespace rdb
