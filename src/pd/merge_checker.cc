#include "pd/merge_checker.h"

#include <set>

namespace rdb {
namespace {

std::set<std::uint64_t> voter_stores(const metapb::Region& r) {
  std::set<std::uint64_t> out;
  for (const auto& p : r.peers()) {
    if (!p.is_learner()) {
      out.insert(p.store_id());
    }
  }
  return out;
}

// Small, measured, settled, fully replicated, without learners or lagging peers.
bool mergeable(const MergeCandidate& c, const MergeConfig& config, std::uint32_t max_replicas, std::uint64_t now_ms) {
  if (c.size == 0 || c.size > config.max_merge_region_size || c.keys > config.max_merge_region_keys) {
    return false;
  }
  if (now_ms < c.range_since_ms + config.split_merge_interval_ms || c.has_pending_peers) {
    return false;
  }
  auto voters = voter_stores(c.region);
  return voters.size() == max_replicas && static_cast<std::size_t>(c.region.peers_size()) == voters.size();
}

}  // namespace

std::optional<metapb::Region> merge_target(const MergeCandidate& source, const std::optional<MergeCandidate>& before,
                                           const std::optional<MergeCandidate>& after, const MergeConfig& config,
                                           std::uint32_t max_replicas, std::uint64_t now_ms) {
  if (config.max_merge_region_size == 0 || !mergeable(source, config, max_replicas, now_ms)) {
    return std::nullopt;
  }
  const MergeCandidate* best = nullptr;
  auto consider = [&](const std::optional<MergeCandidate>& n, bool is_before) {
    if (!n || n->region.id() == source.region.id() || !mergeable(*n, config, max_replicas, now_ms)) {
      return;
    }
    bool adjacent = is_before ? !source.region.start_key().empty() && n->region.end_key() == source.region.start_key()
                              : !source.region.end_key().empty() && n->region.start_key() == source.region.end_key();
    if (!adjacent || voter_stores(n->region) != voter_stores(source.region)) {
      return;
    }
    if (best == nullptr || n->size < best->size) {
      best = &*n;
    }
  };
  consider(before, true);
  consider(after, false);
  if (best == nullptr) {
    return std::nullopt;
  }
  return best->region;
}

}  // namespace rdb
