// MergeChecker: PD's merge scheduler — picks, for a small region its leader just
// reported, an adjacent small region to merge into.
//
// A region merges only when both it and its neighbour are measured (sizes reported
// by their leaders) and below both limits, neither changed its range for
// `split_merge_interval_ms` (no merge right after a split, nor right after PD
// started: it has not watched them long enough), both have exactly `max_replicas`
// voters on the same stores, no learners and no pending peers. Of the two
// neighbours the smaller one is chosen. The stores carry the merge out
// (RaftStore::merge_region) and roll it back if the target changes meanwhile.
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>

#include "pdpb.pb.h"

namespace rdb {

struct MergeConfig {
  std::uint64_t max_merge_region_size = std::uint64_t{20} << 20;  // bytes (keys + values); 0 turns merging off
  std::uint64_t max_merge_region_keys = 200'000;
  std::uint64_t split_merge_interval_ms = 3'600'000;  // a region younger than this (by its range) never merges
};

// What PD knows of one region for merging.
struct MergeCandidate {
  metapb::Region region;
  std::uint64_t size = 0;  // 0: never measured
  std::uint64_t keys = 0;
  std::uint64_t range_since_ms = 0;  // when PD first saw its current range (version)
  bool has_pending_peers = false;
};

// The region `source` should merge into (one of its neighbours), if any, at `now_ms`.
std::optional<metapb::Region> merge_target(const MergeCandidate& source, const std::optional<MergeCandidate>& before,
                                           const std::optional<MergeCandidate>& after, const MergeConfig& config,
                                           std::uint32_t max_replicas, std::uint64_t now_ms);

}  // namespace rdb
