#include "server/region_peer.h"

#include <fmt/format.h>

#include "server/snapshot_data.h"

namespace rdb {

kvrpc::RegionError server_is_busy(const std::string& why) {
  kvrpc::RegionError e;
  e.set_message(why);
  e.mutable_server_is_busy()->set_reason(why);
  e.mutable_server_is_busy()->set_backoff_ms(50);
  return e;
}

kvrpc::RegionError key_not_in_region(const std::string& key, const metapb::Region& region, const char* what) {
  kvrpc::RegionError e;
  e.set_message(fmt::format("{} is outside region {}", what, region.id()));
  auto* kn = e.mutable_key_not_in_region();
  kn->set_key(key);
  kn->set_region_id(region.id());
  kn->set_start_key(region.start_key());
  kn->set_end_key(region.end_key());
  return e;
}

std::optional<metapb::Peer> find_member(const metapb::Region& region, std::uint64_t peer_id) {
  for (const auto& p : region.peers()) {
    if (p.id() == peer_id) {
      return p;
    }
  }
  return std::nullopt;
}

kvrpc::RegionError RegionPeer::not_leader() const {
  kvrpc::RegionError e;
  e.set_message(fmt::format("peer {} of region {} is not the leader", self.id(), region.id()));
  e.mutable_not_leader()->set_region_id(region.id());
  if (auto leader = find_member(region, node->raft().leader())) {
    *e.mutable_not_leader()->mutable_leader() = *leader;
  }
  return e;
}

std::optional<kvrpc::RegionError> RegionPeer::check_request(const kvrpc::Context& ctx,
                                                            const std::vector<std::string>& keys) const {
  kvrpc::RegionError e;
  const auto& have = region.region_epoch();
  const auto& want = ctx.region_epoch();
  if (have.conf_ver() != want.conf_ver() || have.version() != want.version()) {
    e.set_message(fmt::format("region {} epoch is ({}, {}), request has ({}, {})", region.id(), have.conf_ver(),
                              have.version(), want.conf_ver(), want.version()));
    *e.mutable_epoch_not_match()->add_current_regions() = region;
    for (const auto& r : split_into) {
      *e.mutable_epoch_not_match()->add_current_regions() = r;
    }
    return e;
  }
  for (const auto& k : keys) {
    if (!key_in_region(k, region)) {
      return key_not_in_region(k, region, "key");
    }
  }
  if (!is_leader()) {
    return not_leader();
  }
  if (ctx.term() != 0 && ctx.term() != node->raft().term()) {
    auto stale = not_leader();
    stale.set_message(fmt::format("region {} is led in term {} now, the request was for term {}", region.id(),
                                  node->raft().term(), ctx.term()));
    return stale;
  }
  if (merging) {
    return server_is_busy(fmt::format("region {} is merging into region {}", region.id(), merging->target().id()));
  }
  return std::nullopt;
}

Status RegionPeer::propose(const std::string& data, ProposeCallback& cb) {
  RDB_RETURN_IF_ERROR(node->propose(data));
  proposals_[node->raft().log().last_index()] = {node->raft().term(), std::move(cb)};
  return Status::ok();
}

Status RegionPeer::read_index(ReadCallback& cb, std::uint64_t now_ms) {
  if (lease_valid(now_ms)) {
    // Everything acknowledged before now is at or below the commit index.
    const std::uint64_t index = node->raft().log().committed();
    if (storage->applied_index() >= index) {
      cb(std::nullopt);
    } else {
      reads_waiting_apply_.emplace(index, std::move(cb));
    }
    renew_lease(now_ms);  // ahead of expiry, so steady reads never wait for a round
    return Status::ok();
  }
  // Reads that arrive before the next Ready is taken share one read index request: its
  // heartbeats leave with that Ready, after every one of them arrived, and no write of
  // this region is acknowledged before then (acks come from applying a Ready).
  if (auto open = reads_waiting_index_.find(open_read_batch_);
      !open_read_batch_.empty() && open != reads_waiting_index_.end()) {
    open->second.push_back(std::move(cb));
    return Status::ok();
  }
  return start_read_round(now_ms, &cb);
}

Status RegionPeer::start_read_round(std::uint64_t now_ms, ReadCallback* cb) {
  std::string request = fmt::format("{}:{}", region.id(), ++read_seq_);
  RDB_RETURN_IF_ERROR(node->read_index(request));
  auto& waiting = reads_waiting_index_[request];
  if (cb != nullptr) {
    waiting.push_back(std::move(*cb));
    open_read_batch_ = request;
  }
  if (lease_ms > 0) {
    const auto& epoch = region.region_epoch();
    read_rounds_[request] = {now_ms + lease_ms, node->raft().term(), epoch.conf_ver(), epoch.version()};
  }
  return Status::ok();
}

void RegionPeer::renew_lease(std::uint64_t now_ms) {
  const bool renewing = renewal_started_ms_ != 0 && now_ms - renewal_started_ms_ < lease_ms;
  if (!renewing && lease_valid(now_ms) && lease_.until_ms - now_ms < lease_ms / 3 &&
      start_read_round(now_ms, nullptr).is_ok()) {
    renewal_started_ms_ = now_ms;
  }
}

bool RegionPeer::lease_valid(std::uint64_t now_ms) const {
  if (lease_ms == 0 || now_ms >= lease_.until_ms || !is_leader()) {
    return false;
  }
  const raft::Raft& r = node->raft();
  const auto& epoch = region.region_epoch();
  return lease_.term == r.term() && lease_forbidden_term_ != r.term() && r.lead_transferee() == raft::kNone &&
         lease_.conf_ver == epoch.conf_ver() && lease_.version == epoch.version() && !merging &&
         r.log().term_or_zero(r.log().committed()) == r.term();
}

void RegionPeer::forbid_lease_this_term() {
  lease_forbidden_term_ = node->raft().term();
  lease_.until_ms = 0;
}

Status RegionPeer::propose_conf_change(const raftpb::ConfChangeV2& cc, std::function<void(Status)>& cb) {
  RDB_RETURN_IF_ERROR(node->propose_conf_change(cc));
  conf_changes_[node->raft().log().last_index()] = std::move(cb);
  return Status::ok();
}

std::optional<RegionPeer::PendingProposal> RegionPeer::take_proposal(std::uint64_t index) {
  auto it = proposals_.find(index);
  if (it == proposals_.end()) {
    return std::nullopt;
  }
  PendingProposal p = std::move(it->second);
  proposals_.erase(it);
  return p;
}

std::function<void(Status)> RegionPeer::take_conf_change(std::uint64_t index) {
  auto it = conf_changes_.find(index);
  if (it == conf_changes_.end()) {
    return nullptr;
  }
  auto cb = std::move(it->second);
  conf_changes_.erase(it);
  return cb;
}

void RegionPeer::on_role_change(const raft::SoftState& ss) {
  if (ss.role == raft::StateRole::kLeader) {
    return;
  }
  lease_.until_ms = 0;
  read_rounds_.clear();
  renewal_started_ms_ = 0;
  for (auto& [ctx, cbs] : reads_waiting_index_) {
    for (auto& cb : cbs) {
      cb(not_leader());
    }
  }
  reads_waiting_index_.clear();
  open_read_batch_.clear();
}

void RegionPeer::answer_truncated_proposals() {
  if (proposals_.empty() && conf_changes_.empty()) {
    return;
  }
  // A proposal whose entry is still in the log is answered when that index applies (with
  // its result, or "overwritten" when another leader's entry took its place). One whose
  // entry was cut off the end of the log (a deposed leader's log replaced by the next
  // leader's shorter one) would wait until the log grows back that far — perhaps for
  // ever, holding a 1PC's latches and memory locks all along. It may still commit
  // elsewhere, so it is answered UNDETERMINED now.
  // One at or below the applied index that is still waiting was never applied entry by
  // entry: a snapshot covered it. UNDETERMINED too.
  const std::uint64_t applied = storage->applied_index();
  for (auto it = proposals_.begin(); it != proposals_.end() && it->first <= applied; it = proposals_.erase(it)) {
    ProposeResult r;
    r.undetermined = true;
    r.undetermined_why = "a snapshot replaced the log where its entry was";
    it->second.cb(std::move(r));
  }
  const std::uint64_t last = node->raft().log().last_index();
  for (auto it = proposals_.upper_bound(last); it != proposals_.end(); it = proposals_.erase(it)) {
    ProposeResult r;
    r.undetermined = true;
    r.undetermined_why = "a new leader cut its entry from this replica's log; it may still commit elsewhere";
    it->second.cb(std::move(r));
  }
  for (auto it = conf_changes_.upper_bound(last); it != conf_changes_.end(); it = conf_changes_.erase(it)) {
    it->second(Status::unavailable(
        fmt::format("region {}: the membership change was cut from the log by a new leader", region.id())));
  }
}

void RegionPeer::on_read_states(const std::vector<raft::ReadState>& states) {
  for (const auto& rs : states) {
    if (auto round = read_rounds_.find(rs.request_ctx); round != read_rounds_.end()) {
      // A quorum confirmed this leader after the round started: the lease runs from then,
      // if nothing it depends on changed meanwhile.
      const Lease won = round->second;
      const auto& epoch = region.region_epoch();
      if (is_leader() && won.term == node->raft().term() && won.conf_ver == epoch.conf_ver() &&
          won.version == epoch.version() && won.until_ms > lease_.until_ms) {
        lease_ = won;
      }
      read_rounds_.erase(round);
      renewal_started_ms_ = 0;
    }
    auto it = reads_waiting_index_.find(rs.request_ctx);
    if (it != reads_waiting_index_.end()) {
      for (auto& cb : it->second) {
        reads_waiting_apply_.emplace(rs.index, std::move(cb));
      }
      reads_waiting_index_.erase(it);
    }
  }
}

void RegionPeer::answer_applied_reads() {
  std::uint64_t applied = storage->applied_index();
  while (!reads_waiting_apply_.empty() && reads_waiting_apply_.begin()->first <= applied) {
    reads_waiting_apply_.begin()->second(std::nullopt);
    reads_waiting_apply_.erase(reads_waiting_apply_.begin());
  }
}

void RegionPeer::fail_pending(const std::string& why) {
  for (auto& [index, p] : proposals_) {
    ProposeResult r;
    r.undetermined = true;
    r.undetermined_why = why;
    p.cb(std::move(r));
  }
  for (auto& [ctx, cbs] : reads_waiting_index_) {
    for (auto& cb : cbs) {
      cb(server_is_busy(why));
    }
  }
  open_read_batch_.clear();
  for (auto& [index, cb] : reads_waiting_apply_) {
    cb(server_is_busy(why));
  }
  for (auto& [index, cb] : conf_changes_) {
    cb(Status::unavailable(why));
  }
  proposals_.clear();
  reads_waiting_index_.clear();
  reads_waiting_apply_.clear();
  conf_changes_.clear();
}

}  // namespace rdb
