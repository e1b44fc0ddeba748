#include "server/region_apply.h"

#include <fmt/format.h>

#include <algorithm>

#include "server/snapshot_data.h"

namespace rdb {
namespace {

// The region's peers after `cc`: conf changes bump conf_ver (TiKV's epoch rules).
void change_members(metapb::Region& region, const raft::ConfChange& cc) {
  metapb::Peer target;
  (void)target.ParseFromString(cc.context());
  auto* peers = region.mutable_peers();
  auto it = std::find_if(peers->begin(), peers->end(), [&](const metapb::Peer& p) { return p.id() == cc.node_id(); });
  switch (cc.type()) {
    case raftpb::ADD_NODE:
    case raftpb::ADD_LEARNER_NODE:
      if (it == peers->end()) {
        target.set_is_learner(cc.type() == raftpb::ADD_LEARNER_NODE);
        *peers->Add() = target;
      } else if (cc.type() == raftpb::ADD_NODE) {
        it->set_is_learner(false);
      }
      break;
    case raftpb::REMOVE_NODE:
      if (it != peers->end()) {
        peers->erase(it);
      }
      break;
    default:
      break;
  }
  region.mutable_region_epoch()->set_conf_ver(region.region_epoch().conf_ver() + 1);
}

}  // namespace

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

Result<std::vector<AppliedEntry>> apply_entries(KvApplier& applier, metapb::Region& region,
                                                const std::vector<raft::Entry>& entries, WriteBatch& wb) {
  std::vector<AppliedEntry> out;
  out.reserve(entries.size());
  for (const auto& e : entries) {
    AppliedEntry a;
    a.index = e.index();
    a.term = e.term();
    if (e.type() == raftpb::ENTRY_CONF_CHANGE) {
      ChangePeerResult change;
      (void)change.cc.ParseFromString(e.data());
      change_members(region, change.cc);
      a.outcome = std::move(change);
    } else if (!e.data().empty()) {
      raft_serverpb::KvCommand cmd;
      ProposeResult result;
      if (!cmd.ParseFromString(e.data())) {
        result.result.set_error("command does not parse");
      } else if (cmd.epoch_version() != region.region_epoch().version()) {
        // The region's range changed since the command was proposed: it must not apply.
        result.region_error = kvrpc::RegionError();
        result.region_error->set_message("region epoch changed before the command applied");
        *result.region_error->mutable_epoch_not_match()->add_current_regions() = region;
      } else if (auto outside = check_command_range(cmd, region)) {
        result.region_error = std::move(outside);  // never written past the region's range
      } else {
        auto r = applier.apply(cmd, wb);
        if (!r.is_ok()) {
          return r.status();
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
