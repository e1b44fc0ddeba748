// RaftStore: region merge. The source's leader proposes PREPARE_MERGE (the source stops
// serving); once it applied, the source leader has the target's leader propose
// COMMIT_MERGE — moving its own leadership to the target leader's store when they are
// apart — or proposes ROLLBACK_MERGE when the target changed so that the commit can
// never apply. Each target replica applies COMMIT_MERGE only after its store's source
// replica applied PREPARE_MERGE (the entries behind it wait), then takes the source's
// range and destroys that replica; the data, in the shared key spaces, stays in place.
//
// Why a rollback is safe: COMMIT_MERGE carries the target epoch PREPARE_MERGE recorded
// and is refused at apply under any other. The source leader rolls back only when its
// store's target replica applied a newer epoch while the source replica still exists;
// as the target applies in log order and a commit destroys the local source, that newer
// epoch precedes any COMMIT_MERGE in the target's log, which therefore fails everywhere.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <limits>
#include <variant>

#include "raftdisk/raft_keys.h"
#include "server/raft_store.h"

namespace rdb {
namespace {

raft_serverpb::KvCommand admin_command(raft_serverpb::KvCommand::Type type, const metapb::Region& region) {
  raft_serverpb::KvCommand cmd;
  cmd.set_type(type);
  cmd.set_region_id(region.id());
  cmd.set_epoch_version(region.region_epoch().version());
  cmd.set_epoch_conf_ver(region.region_epoch().conf_ver());
  return cmd;
}

}  // namespace

void RaftStore::merge_region(std::uint64_t source_id, std::uint64_t target_id, std::function<void(Status)> cb) {
  post([this, source_id, target_id, cb = std::move(cb)]() mutable {
    Peer* source = awake_peer(source_id);
    if (source == nullptr || !source->is_leader()) {
      cb(Status::unavailable(fmt::format("region {}: this store does not lead it", source_id)));
      return;
    }
    if (source->merging) {
      cb(Status::unavailable(
          fmt::format("region {} is already merging into region {}", source_id, source->merging->target().id())));
      return;
    }
    Peer* target = find_peer(target_id);
    if (target == nullptr || target->storage->applied_index() == 0) {
      cb(Status::unavailable(fmt::format("region {}: this store holds no initialized replica of it", target_id)));
      return;
    }
    if (target->merging) {
      cb(Status::unavailable(fmt::format("region {} is itself merging", target_id)));
      return;
    }
    if (auto bad = check_merge(source->region, target->region)) {
      cb(Status::invalid_argument(*bad));
      return;
    }
    // Every source replica must hold the whole log: while merging, none may need a snapshot.
    const raft::Raft& r = source->node->raft();
    const std::uint64_t last = r.log().last_index();
    for (const auto& [id, pr] : r.progress()) {
      if (id != source->self.id() && pr.match != last) {
        cb(Status::unavailable(
            fmt::format("region {}: peer {} is behind (at {} of {}); merge later", source_id, id, pr.match, last)));
        return;
      }
    }
    if (r.log().committed() != last || source->storage->applied_index() != last || !source->blocked_entries.empty()) {
      cb(Status::unavailable(fmt::format("region {}: not everything is applied yet; merge later", source_id)));
      return;
    }
    auto cmd = admin_command(raft_serverpb::KvCommand::PREPARE_MERGE, source->region);
    *cmd.mutable_merge()->mutable_region() = target->region;
    cmd.mutable_merge()->set_min_index(last);
    ProposeCallback done = [cb, source_id, target_id](ProposeResult res) {
      if (res.region_error) {
        cb(Status::unavailable(res.region_error->message()));
      } else if (!res.result.error().empty()) {
        cb(Status::invalid_argument(res.result.error()));
      } else if (res.undetermined) {
        cb(Status::unavailable("the store stopped before the merge's first step was known to apply"));
      } else {
        spdlog::info("region {}: prepared to merge into region {}", source_id, target_id);
        cb(Status::ok());
      }
    };
    if (Status s = source->propose(cmd.SerializeAsString(), done); !s.is_ok()) {
      done({server_is_busy(s.message()), {}});
    }
  });
}

bool RaftStore::merge_source_reachable(const raft_serverpb::MergeRequest& merge) {
  auto it = peers_.find(merge.region().id());
  return it != peers_.end() && !it->second->removed && !it->second->broken && it->second->storage->applied_index() > 0;
}

Result<bool> RaftStore::catch_up_merge_source(const raft_serverpb::MergeRequest& merge, WriteBatch& wb) {
  if (!merge_source_reachable(merge)) {
    return false;
  }
  Peer& source = *peers_.at(merge.region().id());
  const std::uint64_t applied = source.storage->applied_index();
  const std::uint64_t prepare = merge.prepare_index();
  if (applied >= prepare) {
    return source.merging.has_value();
  }
  // What it lacks: its own log through min_index, then the entries the command carries.
  std::vector<raft::Entry> lacking;
  if (applied < merge.min_index()) {
    auto own = source.storage->entries(applied + 1, merge.min_index() + 1, std::numeric_limits<std::uint64_t>::max());
    if (!own.is_ok()) {
      spdlog::warn("region {}: cannot read its log to finish a merge: {}", source.region.id(),
                   own.status().to_string());
      return false;
    }
    lacking = std::move(own).value();
  }
  for (const auto& e : merge.entries()) {
    if (e.index() > std::max(applied, merge.min_index()) && e.index() <= prepare) {
      lacking.push_back(e);
    }
  }
  bool contiguous = lacking.size() == prepare - applied;
  for (std::size_t i = 0; contiguous && i < lacking.size(); ++i) {
    contiguous = lacking[i].index() == applied + 1 + i;
  }
  if (!contiguous) {
    spdlog::warn("region {}: the merge does not carry the entries its replica here lacks ({} to {})",
                 source.region.id(), applied + 1, prepare);
    return false;
  }
  metapb::Region region = source.region;
  RDB_ASSIGN_OR_RETURN(auto done, apply_entries(applier_, region, lacking, wb));
  if (done.size() != lacking.size() || !std::holds_alternative<PrepareMergeResult>(done.back().outcome)) {
    return ServerStatus::corruption(fmt::format(
        "region {}: its log does not end in the PREPARE_MERGE a merge names at {}", source.region.id(), prepare));
  }
  spdlog::info("region {}: applied entries {} to {} on its behalf to finish the merge", source.region.id(), applied + 1,
               prepare);
  return true;
}

void RaftStore::on_prepare_merge(Peer& peer, const raft_serverpb::MergeState& state, WriteBatch& wb) {
  // peer.region already carries the bumped epoch (apply_entries). Its keys may be the
  // target's from now on: no more local reads of them here.
  revoke_lease(peer.region.id());
  wb.put(ColumnFamily::kRaft, raft_keys::region_state_key(peer.region.id()), peer.region.SerializeAsString());
  wb.put(ColumnFamily::kRaft, raft_keys::merge_state_key(peer.region.id()), state.SerializeAsString());
  peer.merging = state;
  peer.merge_step_at_ms = 0;
  regions_changed_ = regions_changed_ || peer.is_leader();
}

void RaftStore::on_rollback_merge(Peer& peer, WriteBatch& wb) {
  wb.put(ColumnFamily::kRaft, raft_keys::region_state_key(peer.region.id()), peer.region.SerializeAsString());
  wb.del(ColumnFamily::kRaft, raft_keys::merge_state_key(peer.region.id()));
  if (peer.merging) {
    spdlog::info("region {}: merge into region {} rolled back", peer.region.id(), peer.merging->target().id());
  }
  peer.merging.reset();
  regions_changed_ = regions_changed_ || peer.is_leader();
}

void RaftStore::on_commit_merge(Peer& peer, const metapb::Region& source, WriteBatch& wb) {
  // peer.region already spans both ranges (apply_entries).
  revoke_lease(peer.region.id());
  revoke_lease(source.id());
  wb.put(ColumnFamily::kRaft, raft_keys::region_state_key(peer.region.id()), peer.region.SerializeAsString());
  // The source replica goes, in the same write; its data stays, owned by the target now.
  const std::uint64_t id = source.id();
  auto [raft_start, raft_end] = raft_keys::region_range(id);
  wb.delete_range(ColumnFamily::kRaft, raft_start, raft_keys::region_state_key(id));
  wb.delete_range(ColumnFamily::kRaft, raft_keys::snapshot_ingest_key(id), raft_end);
  metapb::Region tombstone = source;
  tombstone.clear_peers();  // no peer of this store: never loaded again
  wb.put(ColumnFamily::kRaft, raft_keys::region_state_key(id), tombstone.SerializeAsString());
  merged_sources_.emplace_back(id, peer.region.id());
  merged_away_.insert(id);
  peer.approximate_bytes = 0;  // measured again
  peer.approximate_keys = 0;
  peer.split_check_due = true;
  regions_changed_ = regions_changed_ || peer.is_leader();
}

void RaftStore::finish_merges() {
  for (const auto& [source_id, target_id] : merged_sources_) {
    if (auto it = peers_.find(source_id); it != peers_.end() && !it->second->removed) {
      Peer& source = *it->second;
      source.fail_pending(fmt::format("region {} was merged into region {}", source_id, target_id));
      wake_peer(source);
      source.removed = true;
      snaps_.forget(source_id);
      status_dirty_.insert(source_id);
    }
    ranges_.erase(source_id);
    if (Peer* target = find_peer(target_id)) {
      ranges_.put(target->region);
    }
    spdlog::info("region {} merged into region {}", source_id, target_id);
  }
  merged_sources_.clear();
  merged_away_.clear();
}

void RaftStore::resume_blocked_applies() {
  if (blocked_.empty() || clock_->now_ms() < engine_retry_at_) {
    return;
  }
  std::vector<std::uint64_t> ids(blocked_.begin(), blocked_.end());
  WriteBatch wb;
  std::vector<std::function<void()>> replies;
  std::vector<Peer*> resumed;
  applier_.collect_changes(change_feeds_.active());
  for (std::uint64_t id : ids) {
    Peer* peer = find_peer(id);
    if (peer == nullptr || peer->blocked_entries.empty()) {
      blocked_.erase(id);
      continue;
    }
    raft_serverpb::KvCommand cmd;
    if (!cmd.ParseFromString(peer->blocked_entries.front().data()) || !merge_source_reachable(cmd.merge())) {
      continue;
    }
    resumed.push_back(peer);
    apply_committed(*peer, {}, wb, replies);
  }
  if (resumed.empty()) {
    return;
  }
  change_feeds_.publish(applier_.take_changes());  // before the write, as in handle_ready
  if (Status s = engine_.write(wb, false); !s.is_ok()) {
    persist_failed(resumed, s);
    merged_sources_.clear();
    merged_away_.clear();
    return;
  }
  applier_.batch_written();
  for (auto& r : replies) {
    r();
  }
  for (Peer* p : resumed) {
    p->answer_applied_reads();
    status_dirty_.insert(p->region.id());
  }
  finish_merges();
  refresh_status();
}

void RaftStore::drive_merge(Peer& peer) {
  const std::uint64_t now = clock_->now_ms();
  const auto pause =
      static_cast<std::uint64_t>(config_.election_ticks) * static_cast<std::uint64_t>(config_.tick_interval.count());
  if (peer.merge_step_at_ms != 0 && now < peer.merge_step_at_ms + pause) {
    return;  // one step per election timeout: the last one may still be on its way
  }
  peer.merge_step_at_ms = now;
  const raft_serverpb::MergeState& state = *peer.merging;
  Peer* target = find_peer(state.target().id());
  if (target == nullptr) {
    spdlog::warn("region {}: merging into region {}, which has no replica on this store yet", peer.region.id(),
                 state.target().id());
    return;
  }
  const auto& have = target->region.region_epoch();
  const auto& want = state.target().region_epoch();
  const std::uint64_t source_id = peer.region.id();
  auto log_result = [source_id](const char* what) {
    return [source_id, what](ProposeResult r) {
      if (r.region_error || !r.result.error().empty()) {
        spdlog::info("region {}: {} not done: {}", source_id, what,
                     r.region_error ? r.region_error->message() : r.result.error());
      }
    };
  };
  if (have.version() > want.version() || have.conf_ver() > want.conf_ver()) {
    spdlog::info("region {}: target region {} changed (epoch {}/{} → {}/{}); rolling the merge back", source_id,
                 target->region.id(), want.conf_ver(), want.version(), have.conf_ver(), have.version());
    auto cmd = admin_command(raft_serverpb::KvCommand::ROLLBACK_MERGE, peer.region);
    ProposeCallback cb = log_result("rollback");
    (void)peer.propose(cmd.SerializeAsString(), cb);
    return;
  }
  if (target->is_leader()) {
    if (have.version() != want.version() || have.conf_ver() != want.conf_ver()) {
      return;  // this replica lags what PREPARE_MERGE saw: it catches up first
    }
    auto carried = peer.storage->entries(state.min_index() + 1, state.prepare_index() + 1,
                                         std::numeric_limits<std::uint64_t>::max());
    if (!carried.is_ok()) {
      spdlog::warn("region {}: cannot read its log for the merge's commit: {}", source_id,
                   carried.status().to_string());
      return;
    }
    auto cmd = admin_command(raft_serverpb::KvCommand::COMMIT_MERGE, target->region);
    *cmd.mutable_merge()->mutable_region() = peer.region;
    cmd.mutable_merge()->set_prepare_index(state.prepare_index());
    cmd.mutable_merge()->set_min_index(state.min_index());
    for (auto& e : *carried) {
      *cmd.mutable_merge()->add_entries() = std::move(e);
    }
    wake_peer(*target);
    ProposeCallback cb = log_result("commit");
    (void)target->propose(cmd.SerializeAsString(), cb);
    return;
  }
  // The target's leader is elsewhere: lead the source from its store, which then commits.
  auto leader = find_member(target->region, target->node->raft().leader());
  if (!leader) {
    return;
  }
  for (const auto& p : peer.region.peers()) {
    if (p.store_id() == leader->store_id() && p.id() != peer.self.id()) {
      (void)peer.node->transfer_leader(p.id());
    }
  }
}

}  // namespace rdb
