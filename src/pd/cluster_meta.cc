#include "pd/cluster_meta.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <random>

#include "common/address.h"
#include "common/logging.h"
#include "common/parse.h"

namespace rdb {
namespace {

constexpr const char* kClusterIdKey = "cluster_id";
constexpr const char* kBootstrappedKey = "bootstrapped";
constexpr const char* kStorePrefix = "store/";
constexpr const char* kRegionPrefix = "region/";

std::string id_key(const char* prefix, std::uint64_t id) {
  return fmt::format("{}{:020}", prefix, id);
}

}  // namespace

Result<std::unique_ptr<ClusterMeta>> ClusterMeta::load(StorageEngine& engine, Clock& clock,
                                                       std::optional<std::uint64_t> cluster_id) {
  std::unique_ptr<ClusterMeta> meta(new ClusterMeta(engine));
  RDB_ASSIGN_OR_RETURN(auto id_text, engine.meta_get(kClusterIdKey));
  if (id_text) {
    RDB_ASSIGN_OR_RETURN(meta->cluster_id_, parse_u64(*id_text, "persisted cluster id"));
    if (cluster_id && *cluster_id != meta->cluster_id_) {
      return Status::invalid_argument(
          fmt::format("the data directory belongs to cluster {}, not to cluster {} (--initial-cluster differs?)",
                      meta->cluster_id_, *cluster_id));
    }
  } else if (cluster_id) {
    meta->cluster_id_ = *cluster_id;
    RDB_RETURN_IF_ERROR(engine.meta_put(kClusterIdKey, std::to_string(meta->cluster_id_)));
  } else {
    // Time in the high bits, randomness in the low: unique across PDs created on different machines.
    std::random_device rd;
    meta->cluster_id_ = (clock.now_ms() << 22) | (rd() & ((1u << 22) - 1));
    RDB_RETURN_IF_ERROR(engine.meta_put(kClusterIdKey, std::to_string(meta->cluster_id_)));
  }
  RDB_ASSIGN_OR_RETURN(auto boot, engine.meta_get(kBootstrappedKey));
  meta->bootstrapped_ = boot.has_value();
  RDB_ASSIGN_OR_RETURN(auto stores, engine.meta_scan_prefix(kStorePrefix));
  for (const auto& kv : stores) {
    metapb::Store s;
    if (!s.ParseFromString(kv.value)) {
      return ServerStatus::corruption(fmt::format("persisted store record '{}' does not parse", kv.key));
    }
    meta->stores_[s.id()] = s;
  }
  RDB_ASSIGN_OR_RETURN(auto regions, engine.meta_scan_prefix(kRegionPrefix));
  for (const auto& kv : regions) {
    pdpb::RegionInfo info;
    if (!info.ParseFromString(kv.value)) {
      return ServerStatus::corruption(fmt::format("persisted region record '{}' does not parse", kv.key));
    }
    // Records a crash left behind (a replaced region not yet deleted) lose to newer ones.
    auto update = meta->regions_.check(info);
    if (update.is_ok()) {
      meta->regions_.put(info, *update);
    }
  }
  return meta;
}

bool ClusterMeta::is_bootstrapped() const {
  std::lock_guard lock(mu_);
  return bootstrapped_;
}

Status ClusterMeta::persist_store_locked(const metapb::Store& store) {
  return engine_.meta_put(id_key(kStorePrefix, store.id()), store.SerializeAsString());
}

Status ClusterMeta::bootstrap(const metapb::Store& store, const metapb::Region& region) {
  if (store.id() == 0 || region.id() == 0 || region.peers_size() == 0) {
    return Status::invalid_argument("bootstrap needs a store id, a region id and at least one peer");
  }
  std::lock_guard lock(mu_);
  if (bootstrapped_) {
    return ServerStatus::already_exists(fmt::format("cluster {} is already bootstrapped", cluster_id_));
  }
  pdpb::RegionInfo info;
  *info.mutable_region() = region;
  *info.mutable_leader() = region.peers(0);
  // Store and region first, the flag last: a crash in between leaves an unbootstrapped cluster.
  RDB_RETURN_IF_ERROR(persist_store_locked(store));
  RDB_RETURN_IF_ERROR(engine_.meta_put(id_key(kRegionPrefix, info.region().id()), info.SerializeAsString()));
  RDB_RETURN_IF_ERROR(engine_.meta_put(kBootstrappedKey, "1"));
  stores_[store.id()] = store;
  regions_.load(info);
  bootstrapped_ = true;
  return Status::ok();
}

Status ClusterMeta::put_store(const metapb::Store& store) {
  if (store.id() == 0) {
    return Status::invalid_argument("store id must be non-zero");
  }
  if (store.address().empty()) {
    return Status::invalid_argument(fmt::format("store {} has an empty address", store.id()));
  }
  if (!store.raft_address().empty()) {
    if (auto hp = parse_host_port(store.raft_address()); !hp.is_ok()) {
      return Status::invalid_argument(fmt::format("store {} has a bad Raft address '{}': {}", store.id(),
                                                  store.raft_address(), hp.status().message()));
    }
  }
  std::lock_guard lock(mu_);
  metapb::Store record = store;
  if (auto it = stores_.find(store.id()); it != stores_.end()) {
    if (it->second.state() == metapb::TOMBSTONE && store.state() != metapb::TOMBSTONE) {
      return Status::invalid_argument(fmt::format("store {} was removed from the cluster (tombstone)", store.id()));
    }
    // A store re-registering keeps a removal in progress (only PD changes the state).
    if (store.state() == metapb::UP) {
      record.set_state(it->second.state());
    }
  }
  for (const auto& [id, other] : stores_) {
    if (id != store.id() && other.address() == store.address() && other.state() != metapb::TOMBSTONE) {
      return ServerStatus::already_exists(fmt::format("address {} already belongs to store {}; store {} cannot use it",
                                                      store.address(), id, store.id()));
    }
  }
  RDB_RETURN_IF_ERROR(persist_store_locked(record));
  stores_[store.id()] = record;
  return Status::ok();
}

std::optional<metapb::Store> ClusterMeta::get_store(std::uint64_t id) const {
  std::lock_guard lock(mu_);
  auto it = stores_.find(id);
  if (it == stores_.end()) {
    return std::nullopt;
  }
  return it->second;
}

std::vector<metapb::Store> ClusterMeta::all_stores() const {
  std::lock_guard lock(mu_);
  std::vector<metapb::Store> out;
  for (const auto& [id, s] : stores_) {
    out.push_back(s);
  }
  return out;
}

std::optional<pdpb::RegionInfo> ClusterMeta::region_for_key(const std::string& key) const {
  std::lock_guard lock(mu_);
  return regions_.by_key(key);
}

std::optional<pdpb::RegionInfo> ClusterMeta::region_before(const std::string& key) const {
  std::lock_guard lock(mu_);
  return regions_.before(key);
}

std::optional<pdpb::RegionInfo> ClusterMeta::region_by_id(std::uint64_t id) const {
  std::lock_guard lock(mu_);
  return regions_.by_id(id);
}

std::vector<pdpb::RegionInfo> ClusterMeta::all_regions() const {
  std::lock_guard lock(mu_);
  return regions_.all();
}

Status ClusterMeta::region_heartbeat(const metapb::Region& region, const metapb::Peer& leader) {
  pdpb::RegionInfo info;
  *info.mutable_region() = region;
  *info.mutable_leader() = leader;
  return put_region(info);
}

Result<bool> ClusterMeta::region_would_change(const pdpb::RegionInfo& info) const {
  std::lock_guard lock(mu_);
  RDB_ASSIGN_OR_RETURN(auto update, regions_.check(info));
  return update.changed;
}

void ClusterMeta::fill_snapshot(pdpb::PdSnapshot* snap) const {
  std::lock_guard lock(mu_);
  snap->set_cluster_id(cluster_id_);
  snap->set_bootstrapped(bootstrapped_);
  for (const auto& [id, store] : stores_) {
    *snap->add_stores() = store;
  }
  for (auto& info : regions_.all()) {
    info.clear_approximate_size();
    info.clear_approximate_keys();
    *snap->add_regions() = std::move(info);
  }
}

Status ClusterMeta::restore(const pdpb::PdSnapshot& snap) {
  if (snap.cluster_id() != cluster_id_) {
    return Status::invalid_argument(
        fmt::format("a PD snapshot of cluster {} cannot restore cluster {}", snap.cluster_id(), cluster_id_));
  }
  RegionTree regions;
  for (const auto& info : snap.regions()) {
    if (info.region().id() == 0) {
      return Status::invalid_argument("a PD snapshot holds a region with id 0");
    }
    regions.load(info);
  }
  std::map<std::uint64_t, metapb::Store> stores;
  for (const auto& store : snap.stores()) {
    if (store.id() == 0) {
      return Status::invalid_argument("a PD snapshot holds a store with id 0");
    }
    stores[store.id()] = store;
  }
  std::lock_guard lock(mu_);
  WriteBatch wb;
  for (const auto& [id, s] : stores_) {
    wb.del(ColumnFamily::kMeta, id_key(kStorePrefix, id));
  }
  for (const auto& info : regions_.all()) {
    wb.del(ColumnFamily::kMeta, id_key(kRegionPrefix, info.region().id()));
  }
  for (const auto& [id, s] : stores) {
    wb.put(ColumnFamily::kMeta, id_key(kStorePrefix, id), s.SerializeAsString());
  }
  for (const auto& info : snap.regions()) {
    wb.put(ColumnFamily::kMeta, id_key(kRegionPrefix, info.region().id()), info.SerializeAsString());
  }
  if (snap.bootstrapped()) {
    wb.put(ColumnFamily::kMeta, kBootstrappedKey, "1");
  } else {
    wb.del(ColumnFamily::kMeta, kBootstrappedKey);
  }
  RDB_RETURN_IF_ERROR(engine_.write(wb, true));
  stores_ = std::move(stores);
  regions_ = std::move(regions);
  bootstrapped_ = snap.bootstrapped();
  return Status::ok();
}

Status ClusterMeta::put_region(const pdpb::RegionInfo& info) {
  const metapb::Region& region = info.region();
  std::lock_guard lock(mu_);
  RDB_ASSIGN_OR_RETURN(auto update, regions_.check(info));
  if (!update.changed) {
    return Status::ok();  // nothing changed: skip the synced write
  }
  // The report and the removal of the regions it replaces in one synced write.
  WriteBatch wb;
  for (std::uint64_t id : update.removed) {
    wb.del(ColumnFamily::kMeta, id_key(kRegionPrefix, id));
  }
  wb.put(ColumnFamily::kMeta, id_key(kRegionPrefix, region.id()), info.SerializeAsString());
  RDB_RETURN_IF_ERROR(engine_.write(wb, true));
  regions_.put(info, update);
  if (spdlog::should_log(spdlog::level::debug)) {
    spdlog::debug(
        "region {} [{}, {}) version {} conf_ver {} learned{}", region.id(), printable_key(region.start_key()),
        printable_key(region.end_key()), region.region_epoch().version(), region.region_epoch().conf_ver(),
        update.removed.empty() ? std::string() : fmt::format(", replacing {}", fmt::join(update.removed, ", ")));
  }
  return Status::ok();
}

}  // namespace rdb
