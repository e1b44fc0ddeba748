#include "server/store_identity.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <thread>

#include "common/parse.h"

namespace rdb {
namespace {

constexpr const char* kStoreIdKey = "store_id";
constexpr const char* kClusterIdKey = "cluster_id";
constexpr const char* kRegionKey = "region";

Result<std::uint64_t> load_u64(StorageEngine& engine, const char* key) {
  RDB_ASSIGN_OR_RETURN(auto text, engine.meta_get(key));
  if (!text) {
    return std::uint64_t{0};
  }
  return parse_u64(*text, fmt::format("store meta '{}'", key));
}

Result<std::optional<metapb::Region>> load_region(StorageEngine& engine) {
  RDB_ASSIGN_OR_RETURN(auto bytes, engine.meta_get(kRegionKey));
  if (!bytes || bytes->empty()) {
    return std::optional<metapb::Region>();
  }
  metapb::Region r;
  if (!r.ParseFromString(*bytes)) {
    return ServerStatus::corruption("store meta 'region' does not parse");
  }
  return std::optional<metapb::Region>(std::move(r));
}

PdClient::Clock::time_point call_deadline() {
  return PdClient::Clock::now() + std::chrono::seconds(5);
}

Status pd_error(const std::string& what, const Status& sent, const pdpb::ResponseHeader& h) {
  if (!sent.is_ok()) {
    return Status::unavailable(fmt::format("{}: PD unreachable: {}", what, sent.message()));
  }
  if (h.has_error() && h.error().type() != pdpb::OK) {
    return Status::internal(fmt::format("{}: {}", what, h.error().message()));
  }
  return Status::ok();
}

}  // namespace

Result<StoreIdentity> load_standalone_identity(StorageEngine& engine) {
  StoreIdentity id;
  RDB_ASSIGN_OR_RETURN(id.cluster_id, load_u64(engine, kClusterIdKey));
  if (id.cluster_id != 0) {
    return Status::invalid_argument(fmt::format(
        "data dir belongs to cluster {} (it was started with --pd); start it with --pd again", id.cluster_id));
  }
  RDB_ASSIGN_OR_RETURN(id.store_id, load_u64(engine, kStoreIdKey));
  RDB_ASSIGN_OR_RETURN(id.region, load_region(engine));
  if (id.store_id == 0) {
    id.store_id = 1;
    RDB_RETURN_IF_ERROR(engine.meta_put(kStoreIdKey, "1"));
  }
  if (!id.region) {
    metapb::Region r;
    r.set_id(1);
    r.mutable_region_epoch()->set_conf_ver(1);
    r.mutable_region_epoch()->set_version(1);
    auto* peer = r.add_peers();
    peer->set_id(1);
    peer->set_store_id(id.store_id);
    RDB_RETURN_IF_ERROR(engine.meta_put(kRegionKey, r.SerializeAsString()));
    id.region = std::move(r);
  }
  return id;
}

Result<StoreIdentity> join_cluster(StorageEngine& engine, PdClient& pd, metapb::Store self,
                                   std::chrono::system_clock::time_point deadline) {
  const std::string pd_addr = fmt::format("{}", fmt::join(pd.endpoints(), ","));
  // 1. Which cluster does this PD serve? Retry while PD starts up.
  std::uint64_t pd_cluster = 0;
  for (;;) {
    // Never past the caller's deadline (--pd-wait-seconds), but give each try a moment.
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::system_clock::now());
    const auto this_try = std::clamp(left, std::chrono::milliseconds(200), std::chrono::milliseconds(5000));
    auto cluster = pd.cluster_id(PdClient::Clock::now() + this_try);
    if (cluster.is_ok()) {
      pd_cluster = *cluster;
      break;
    }
    if (std::chrono::system_clock::now() >= deadline) {
      return Status::unavailable(fmt::format("cannot reach PD at {}: {}", pd_addr, cluster.status().message()));
    }
    spdlog::warn("waiting for PD at {}: {}", pd_addr, cluster.status().message());
    std::this_thread::sleep_for(std::chrono::milliseconds(500));  // retry back-off while PD starts
  }

  StoreIdentity id;
  RDB_ASSIGN_OR_RETURN(std::uint64_t stored_cluster, load_u64(engine, kClusterIdKey));
  RDB_ASSIGN_OR_RETURN(id.store_id, load_u64(engine, kStoreIdKey));
  RDB_ASSIGN_OR_RETURN(id.region, load_region(engine));
  if (stored_cluster != 0 && stored_cluster != pd_cluster) {
    return Status::invalid_argument(fmt::format(
        "data dir belongs to cluster {}, but the PD at {} serves cluster {}; use an empty --data-dir to join it",
        stored_cluster, pd_addr, pd_cluster));
  }
  if (stored_cluster == 0 && id.store_id != 0) {
    return Status::invalid_argument(
        "data dir was initialised by a standalone store (no --pd) and cannot join a cluster; use an empty --data-dir");
  }
  id.cluster_id = pd_cluster;

  // 2. A store id from PD, persisted (cluster first, so a crash in between is detected above).
  if (id.store_id == 0) {
    pdpb::AllocIdRequest req;
    req.set_count(1);
    pdpb::AllocIdResponse resp;
    Status sent = pd.call(&pdpb::PD::Stub::AllocId, req, &resp, call_deadline());
    RDB_RETURN_IF_ERROR(pd_error("allocating a store id", sent, resp.header()));
    RDB_RETURN_IF_ERROR(engine.meta_put(kClusterIdKey, std::to_string(pd_cluster)));
    RDB_RETURN_IF_ERROR(engine.meta_put(kStoreIdKey, std::to_string(resp.first_id())));
    id.store_id = resp.first_id();
  }
  self.set_id(id.store_id);

  // 3. The first store bootstraps the cluster. The region is recorded locally first
  //    ("prepared"), so a crash before or after PD accepts it is recovered on restart.
  {
    pdpb::IsBootstrappedResponse resp;
    Status sent = pd.call(&pdpb::PD::Stub::IsBootstrapped, pdpb::IsBootstrappedRequest(), &resp, call_deadline());
    RDB_RETURN_IF_ERROR(pd_error("asking PD whether the cluster is bootstrapped", sent, resp.header()));
    if (resp.bootstrapped()) {
      if (id.region) {
        // Keep our prepared region only if it is the one PD accepted.
        pdpb::GetRegionByIdRequest rreq;
        rreq.set_region_id(id.region->id());
        pdpb::GetRegionResponse rresp;
        Status rs = pd.call(&pdpb::PD::Stub::GetRegionById, rreq, &rresp, call_deadline());
        RDB_RETURN_IF_ERROR(pd_error("looking up the bootstrapped region", rs, pdpb::ResponseHeader()));
        if (rresp.header().has_error()) {
          RDB_RETURN_IF_ERROR(engine.meta_put(kRegionKey, ""));
          id.region.reset();
        }
      }
    } else {
      if (!id.region) {
        pdpb::AllocIdRequest alloc;
        alloc.set_count(2);
        pdpb::AllocIdResponse ids;
        Status as = pd.call(&pdpb::PD::Stub::AllocId, alloc, &ids, call_deadline());
        RDB_RETURN_IF_ERROR(pd_error("allocating region ids", as, ids.header()));
        metapb::Region r;
        r.set_id(ids.first_id());
        r.mutable_region_epoch()->set_conf_ver(1);
        r.mutable_region_epoch()->set_version(1);
        auto* peer = r.add_peers();
        peer->set_id(ids.first_id() + 1);
        peer->set_store_id(id.store_id);
        RDB_RETURN_IF_ERROR(engine.meta_put(kRegionKey, r.SerializeAsString()));
        id.region = r;
      }
      pdpb::BootstrapRequest boot;
      *boot.mutable_store() = self;
      *boot.mutable_region() = *id.region;
      pdpb::BootstrapResponse boot_resp;
      // One attempt: after a lost answer a retry would be refused as "already bootstrapped"
      // and this store would drop the region PD accepted. A restart sorts that out (above).
      Status bs = pd.call_once(&pdpb::PD::Stub::Bootstrap, boot, &boot_resp, call_deadline());
      if (!bs.is_ok()) {
        return Status::unavailable(fmt::format("bootstrapping the cluster: {}", bs.message()));
      }
      if (boot_resp.header().has_error()) {
        // Another store won the race: it holds the first region, we hold none yet.
        RDB_RETURN_IF_ERROR(engine.meta_put(kRegionKey, ""));
        id.region.reset();
      } else {
        spdlog::info("bootstrapped cluster {} with region {}", pd_cluster, id.region->id());
      }
    }
  }

  // 4. Register (or refresh) this store's address.
  {
    pdpb::PutStoreRequest req;
    *req.mutable_store() = self;
    pdpb::PutStoreResponse resp;
    Status sent = pd.call(&pdpb::PD::Stub::PutStore, req, &resp, call_deadline());
    RDB_RETURN_IF_ERROR(pd_error(fmt::format("registering store {}", id.store_id), sent, resp.header()));
  }
  return id;
}

}  // namespace rdb
