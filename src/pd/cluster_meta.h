// ClusterMeta: PD's view of the cluster — its id, stores and regions — kept in
// memory and persisted (synced) in the engine's meta space so that it survives
// a PD restart.
//
// In a PD group it is the replicated state machine's main part: the group applies
// the committed log to it on every member (PdGroup), so its changes must be
// deterministic — the same state and the same command give the same answer
// everywhere. Applying a command twice (a restart replays the log past the last
// recorded applied index) leaves the same state as applying it once.
//
// Thread safety: every method may be called from any thread (internally locked).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "pd/region_tree.h"
#include "pdpb.pb.h"
#include "storage/storage_engine.h"

namespace rdb {

class ClusterMeta {
 public:
  // Loads persisted metadata. A new PD persists `cluster_id` when given (a PD group's
  // members agree on it), else a fresh random one; a persisted id that differs from
  // a given one is an error (the data directory belongs to another cluster).
  static Result<std::unique_ptr<ClusterMeta>> load(StorageEngine& engine, Clock& clock,
                                                   std::optional<std::uint64_t> cluster_id = std::nullopt);

  std::uint64_t cluster_id() const { return cluster_id_; }
  bool is_bootstrapped() const;

  // Records the first store and the first region (ALREADY_EXISTS if bootstrapped).
  Status bootstrap(const metapb::Store& store, const metapb::Region& region);
  // Adds or updates a store; its id must be non-zero and its address must not
  // belong to another live store.
  Status put_store(const metapb::Store& store);
  std::optional<metapb::Store> get_store(std::uint64_t id) const;
  std::vector<metapb::Store> all_stores() const;

  // The region containing `key`, if any.
  std::optional<pdpb::RegionInfo> region_for_key(const std::string& key) const;
  // The region holding the greatest keys below `key` (the last region for "").
  std::optional<pdpb::RegionInfo> region_before(const std::string& key) const;
  std::optional<pdpb::RegionInfo> region_by_id(std::uint64_t id) const;
  // In key order.
  std::vector<pdpb::RegionInfo> all_regions() const;
  // Accepts a leader's report unless PD knows a newer state of its range (see
  // RegionTree); a report from a split region replaces the older regions it overlaps.
  Status region_heartbeat(const metapb::Region& region, const metapb::Peer& leader);
  Status put_region(const pdpb::RegionInfo& info);
  // Whether put_region would change anything (an error if PD knows a newer state).
  Result<bool> region_would_change(const pdpb::RegionInfo& info) const;

  // The replicated part of PD's state, and its replacement by a snapshot's (one write).
  void fill_snapshot(pdpb::PdSnapshot* snap) const;
  Status restore(const pdpb::PdSnapshot& snap);

 private:
  explicit ClusterMeta(StorageEngine& engine) : engine_(engine) {}
  Status persist_store_locked(const metapb::Store& store);

  StorageEngine& engine_;
  std::uint64_t cluster_id_ = 0;
  mutable std::mutex mu_;
  bool bootstrapped_ = false;
  std::map<std::uint64_t, metapb::Store> stores_;
  RegionTree regions_;
};

}  // namespace rdb
