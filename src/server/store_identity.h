// Store identity: who this store is (store id, cluster id) and which region it
// serves, kept in the engine's meta space so a restart keeps them.
//
// Standalone (no --pd): store 1 serving region 1 over the whole key space.
// With PD: the store learns the cluster id, gets its store id from PD's id
// allocator, bootstraps the cluster with the first region if nobody has, and
// registers its address. A data dir that belongs to another cluster is refused.
// `region` is set only for the store that bootstrapped the cluster: it seeds
// that store's first Raft peer. Other stores get peers from PD's replica checker.
// Thread safety: call once at start-up, before serving.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "client/pd_client.h"
#include "common/result.h"
#include "metapb.pb.h"
#include "pdpb.grpc.pb.h"
#include "storage/storage_engine.h"

namespace rdb {

struct StoreIdentity {
  std::uint64_t store_id = 0;
  std::uint64_t cluster_id = 0;  // 0 when standalone
  std::optional<metapb::Region> region;
};

Result<StoreIdentity> load_standalone_identity(StorageEngine& engine);

// `self` carries the addresses to register; its id is filled in. Retries
// reaching PD until `deadline` (PD may still be starting).
Result<StoreIdentity> join_cluster(StorageEngine& engine, PdClient& pd, metapb::Store self,
                                   std::chrono::system_clock::time_point deadline);

}  // namespace rdb
