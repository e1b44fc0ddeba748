#include "server/region_apply.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "server/peer_roles.h"
#include "server/snapshot_data.h"

namespace rdb {
namespace {

// The regions a checked BATCH_SPLIT leaves; `region` becomes the first of them.
std::vector<metapb::Region> split_region(metapb::Region& region, const raft_serverpb::KvCommand& cmd) {
  const std::uint64_t version = region.region_epoch().version() + static_cast<std::uint64_t>(cmd.splits_size());
  std::vector<metapb::Region> created;
  for (int i = 0; i < cmd.splits_size(); ++i) {
    const auto& split = cmd.splits(i);
    metapb::Region r;
    r.set_id(split.new_region_id());
    r.set_start_key(split.split_key());
    r.set_end_key(i + 1 < cmd.splits_size() ? cmd.splits(i + 1).split_key() : region.end_key());
    r.mutable_region_epoch()->set_conf_ver(region.region_epoch().conf_ver());
    r.mutable_region_epoch()->set_version(version);
    for (int p = 0; p < region.peers_size(); ++p) {
      metapb::Peer peer = region.peers(p);
      peer.set_id(split.new_peer_ids(p));
      *r.add_peers() = peer;
    }
    created.push_back(std::move(r));
  }
  region.set_end_key(cmd.splits(0).split_key());
  region.mutable_region_epoch()->set_version(version);
  return created;
}

std::set<std::uint64_t> store_ids(const metapb::Region& r) {
  std::set<std::uint64_t> out;
  for (const auto& p : r.peers()) {
    out.insert(p.store_id());
  }
  return out;
}

bool is_admin(raft_serverpb::KvCommand::Type t) {
  return t == raft_serverpb::KvCommand::BATCH_SPLIT || t == raft_serverpb::KvCommand::PREPARE_MERGE ||
         t == raft_serverpb::KvCommand::COMMIT_MERGE || t == raft_serverpb::KvCommand::ROLLBACK_MERGE;
}

kvrpc::RegionError epoch_changed(const metapb::Region& region) {
  kvrpc::RegionError e;
  e.set_message("region epoch changed before the command applied");
  *e.mutable_epoch_not_match()->add_current_regions() = region;
  return e;
}

}  // namespace

std::optional<std::string> check_split(const raft_serverpb::KvCommand& cmd, const metapb::Region& region) {
  if (cmd.splits_size() == 0) {
    return "a split needs at least one split key";
  }
  if (cmd.splits_size() > kMaxSplitKeys) {
    return fmt::format("a split takes at most {} keys, got {}", kMaxSplitKeys, cmd.splits_size());
  }
  std::set<std::uint64_t> ids;
  for (const auto& p : region.peers()) {
    ids.insert(p.id());
  }
  ids.insert(region.id());
  for (int i = 0; i < cmd.splits_size(); ++i) {
    const auto& split = cmd.splits(i);
    if (split.split_key() <= region.start_key() || !key_in_region(split.split_key(), region)) {
      return fmt::format("split key {} is not strictly inside region {}", i + 1, region.id());
    }
    if (i > 0 && split.split_key() <= cmd.splits(i - 1).split_key()) {
      return "split keys must be given in ascending order without repeats";
    }
    if (split.new_peer_ids_size() != region.peers_size()) {
      return fmt::format("split {} names {} peer ids for a region of {} peers", i + 1, split.new_peer_ids_size(),
                         region.peers_size());
    }
    if (split.new_region_id() == 0 || !ids.insert(split.new_region_id()).second) {
      return fmt::format("split {} has a zero or repeated region id", i + 1);
    }
    for (std::uint64_t id : split.new_peer_ids()) {
      if (id == 0 || !ids.insert(id).second) {
        return fmt::format("split {} has a zero or repeated peer id", i + 1);
      }
    }
  }
  return std::nullopt;
}

std::optional<kvrpc::RegionError> check_command_range(const raft_serverpb::KvCommand& cmd,
                                                      const metapb::Region& region) {
  if (cmd.type() == raft_serverpb::KvCommand::RAW_DELETE_RANGE) {
    if (cmd.keys_size() != 2) {
      return std::nullopt;  // malformed: the applier refuses it with an error of its own
    }
    if (!key_in_region(cmd.keys(0), region)) {
      return key_not_in_region(cmd.keys(0), region, "the range's start");
    }
    if (!region.end_key().empty() && cmd.keys(1) > region.end_key()) {
      return key_not_in_region(cmd.keys(1), region, "the range's end");
    }
    return std::nullopt;
  }
  for (const auto& k : cmd.keys()) {
    if (!key_in_region(k, region)) {
      return key_not_in_region(k, region, "a key");
    }
  }
  return std::nullopt;
}

std::optional<std::string> check_merge(const metapb::Region& source, const metapb::Region& target) {
  if (source.id() == 0 || target.id() == 0 || source.id() == target.id()) {
    return fmt::format("regions {} and {} cannot merge: two different regions are needed", source.id(), target.id());
  }
  bool adjacent = (!source.end_key().empty() && source.end_key() == target.start_key()) ||
                  (!target.end_key().empty() && target.end_key() == source.start_key());
  if (!adjacent) {
    return fmt::format("regions {} and {} are not adjacent", source.id(), target.id());
  }
  for (const auto* r : {&source, &target}) {
    if (r->peers_size() == 0) {
      return fmt::format("region {} has no peers", r->id());
    }
    for (const auto& p : r->peers()) {
      if (role_of(p) != metapb::VOTER) {
        return fmt::format("region {} has a learner or a joint membership change (peer {}): merge needs voters only",
                           r->id(), p.id());
      }
    }
  }
  if (store_ids(source) != store_ids(target) || source.peers_size() != target.peers_size()) {
    return fmt::format("regions {} and {} do not have their peers on the same stores", source.id(), target.id());
  }
  return std::nullopt;
}

Result<std::vector<AppliedEntry>> apply_entries(KvApplier& applier, metapb::Region& region,
                                                const std::vector<raft::Entry>& entries, WriteBatch& wb,
                                                const MergeSourceReady& ready) {
  std::vector<AppliedEntry> out;
  out.reserve(entries.size());
  for (const auto& e : entries) {
    AppliedEntry a;
    a.index = e.index();
    a.term = e.term();
    if (e.type() == raftpb::ENTRY_CONF_CHANGE || e.type() == raftpb::ENTRY_CONF_CHANGE_V2) {
      ChangePeerResult change;
      auto decoded = decode_change(e);
      auto next = decoded.is_ok() ? region_after_change(region, *decoded) : Result<metapb::Region>(decoded.status());
      if (next.is_ok()) {
        region = std::move(next).value();
        change.cc = std::move(decoded).value().cc;
      } else {
        change.error = next.status().message();
      }
      a.outcome = std::move(change);
    } else if (!e.data().empty()) {
      raft_serverpb::KvCommand cmd;
      ProposeResult result;
      if (!cmd.ParseFromString(e.data())) {
        result.result.set_error("command does not parse");
      } else if (cmd.epoch_version() != region.region_epoch().version() ||
                 (is_admin(cmd.type()) && cmd.epoch_conf_ver() != region.region_epoch().conf_ver())) {
        // The region's range changed since the command was proposed: it must not apply.
        // Splits copy the peers and merges need them on the same stores: an admin
        // command must not apply after a membership change either.
        result.region_error = epoch_changed(region);
      } else if (cmd.type() == raft_serverpb::KvCommand::PREPARE_MERGE) {
        if (auto bad = check_merge(region, cmd.merge().region())) {
          result.result.set_error(*bad);
        } else {
          region.mutable_region_epoch()->set_version(region.region_epoch().version() + 1);
          region.mutable_region_epoch()->set_conf_ver(region.region_epoch().conf_ver() + 1);
          PrepareMergeResult prepared;
          *prepared.state.mutable_target() = cmd.merge().region();
          prepared.state.set_prepare_index(e.index());
          prepared.state.set_min_index(cmd.merge().min_index());
          a.outcome = std::move(prepared);
          out.push_back(std::move(a));
          continue;
        }
      } else if (cmd.type() == raft_serverpb::KvCommand::COMMIT_MERGE) {
        const metapb::Region& source = cmd.merge().region();
        if (auto bad = check_merge(source, region)) {
          result.result.set_error(*bad);
        } else if (auto prepared = ready ? ready(cmd.merge(), wb) : Result<bool>(true); !prepared.is_ok()) {
          return prepared.status();
        } else if (!*prepared) {
          return out;  // this store's source replica cannot reach its PREPARE_MERGE yet
        } else {
          if (!source.end_key().empty() && source.end_key() == region.start_key()) {
            region.set_start_key(source.start_key());
          } else {
            region.set_end_key(source.end_key());
          }
          region.mutable_region_epoch()->set_version(
              std::max(region.region_epoch().version(), source.region_epoch().version()) + 1);
          CommitMergeResult merged;
          merged.source = source;
          a.outcome = std::move(merged);
          out.push_back(std::move(a));
          continue;
        }
      } else if (cmd.type() == raft_serverpb::KvCommand::ROLLBACK_MERGE) {
        region.mutable_region_epoch()->set_version(region.region_epoch().version() + 1);
        a.outcome = RollbackMergeResult{};
        out.push_back(std::move(a));
        continue;
      } else if (cmd.type() == raft_serverpb::KvCommand::BATCH_SPLIT) {
        if (auto bad = check_split(cmd, region)) {
          result.result.set_error(*bad);
        } else {
          SplitResult split;
          split.new_regions = split_region(region, cmd);
          *split.answer.result.add_split_regions() = region;
          for (const auto& r : split.new_regions) {
            *split.answer.result.add_split_regions() = r;
          }
          a.outcome = std::move(split);
          out.push_back(std::move(a));
          continue;
        }
      } else if (auto outside = check_command_range(cmd, region)) {
        result.region_error = std::move(outside);  // never written past the region's range
      } else {
        auto r = applier.apply(cmd, wb);
        if (!r.is_ok()) {
          return r.status();
        }
        a.written_keys = static_cast<std::uint64_t>(cmd.keys_size());
        a.deleted = cmd.type() == raft_serverpb::KvCommand::RAW_DELETE ||
                    cmd.type() == raft_serverpb::KvCommand::RAW_BATCH_DELETE ||
                    cmd.type() == raft_serverpb::KvCommand::RAW_DELETE_RANGE ||
                    (cmd.type() == raft_serverpb::KvCommand::CAS && cmd.cas_delete());
        for (const auto& k : cmd.keys()) {
          a.written_bytes += k.size();
        }
        for (const auto& v : cmd.values()) {
          a.written_bytes += v.size();
        }
        result.result = std::move(r).value();
      }
      a.outcome = std::move(result);
    }
    out.push_back(std::move(a));
  }
  return out;
}

}  // namespace rdb
