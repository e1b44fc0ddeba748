#include "server/store_identity.h"

#include <fmt/format.h>
#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

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
    return Status::corruption("store meta 'region' does not parse");
  }
  return std::optional<metapb::Region>(std::move(r));
}

grpc::ClientContext* with_deadline(grpc::ClientContext* ctx) {
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  return ctx;
}

Status pd_error(const std::string& what, const grpc::Status& s, const pdpb::ResponseHeader& h) {
  if (!s.ok()) {
    return Status::unavailable(fmt::format("{}: PD unreachable: {}", what, s.error_message()));
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

Result<StoreIdentity> join_cluster(StorageEngine& engine, pdpb::PD::Stub& pd, const std::string& pd_addr,
                                   metapb::Store self, std::chrono::system_clock::time_point deadline) {
  // 1. Which cluster does this PD serve? Retry while PD starts up.
  std::uint64_t pd_cluster = 0;
  for (;;) {
    grpc::ClientContext ctx;
    pdpb::GetMembersRequest req;
    pdpb::GetMembersResponse resp;
    grpc::Status s = pd.GetMembers(with_deadline(&ctx), req, &resp);
    if (s.ok()) {
      pd_cluster = resp.header().cluster_id();
      break;
    }
    if (std::chrono::system_clock::now() >= deadline) {
      return Status::unavailable(fmt::format("cannot reach PD at {}: {}", pd_addr, s.error_message()));
    }
    spdlog::warn("waiting for PD at {}: {}", pd_addr, s.error_message());
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
  pdpb::RequestHeader header;
  header.set_cluster_id(pd_cluster);

  // 2. A store id from PD, persisted (cluster first, so a crash in between is detected above).
  if (id.store_id == 0) {
    grpc::ClientContext ctx;
    pdpb::AllocIdRequest req;
    *req.mutable_header() = header;
    req.set_count(1);
    pdpb::AllocIdResponse resp;
    grpc::Status s = pd.AllocId(with_deadline(&ctx), req, &resp);
    RDB_RETURN_IF_ERROR(pd_error("allocating a store id", s, resp.header()));
    RDB_RETURN_IF_ERROR(engine.meta_put(kClusterIdKey, std::to_string(pd_cluster)));
    RDB_RETURN_IF_ERROR(engine.meta_put(kStoreIdKey, std::to_string(resp.first_id())));
    id.store_id = resp.first_id();
  }
  self.set_id(id.store_id);

  // 3. The first store bootstraps the cluster. The region is recorded locally first
  //    ("prepared"), so a crash before or after PD accepts it is recovered on restart.
  {
    grpc::ClientContext ctx;
    pdpb::IsBootstrappedRequest req;
    *req.mutable_header() = header;
    pdpb::IsBootstrappedResponse resp;
    grpc::Status s = pd.IsBootstrapped(with_deadline(&ctx), req, &resp);
    RDB_RETURN_IF_ERROR(pd_error("asking PD whether the cluster is bootstrapped", s, resp.header()));
    if (resp.bootstrapped()) {
      if (id.region) {
        // Keep our prepared region only if it is the one PD accepted.
        grpc::ClientContext rctx;
        pdpb::GetRegionByIdRequest rreq;
        *rreq.mutable_header() = header;
        rreq.set_region_id(id.region->id());
        pdpb::GetRegionResponse rresp;
        grpc::Status rs = pd.GetRegionById(with_deadline(&rctx), rreq, &rresp);
        RDB_RETURN_IF_ERROR(pd_error("looking up the bootstrapped region", rs, pdpb::ResponseHeader()));
        if (rresp.header().has_error()) {
          RDB_RETURN_IF_ERROR(engine.meta_put(kRegionKey, ""));
          id.region.reset();
        }
      }
    } else {
      if (!id.region) {
        grpc::ClientContext alloc_ctx;
        pdpb::AllocIdRequest alloc;
        *alloc.mutable_header() = header;
        alloc.set_count(2);
        pdpb::AllocIdResponse ids;
        grpc::Status as = pd.AllocId(with_deadline(&alloc_ctx), alloc, &ids);
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
      grpc::ClientContext boot_ctx;
      pdpb::BootstrapRequest boot;
      *boot.mutable_header() = header;
      *boot.mutable_store() = self;
      *boot.mutable_region() = *id.region;
      pdpb::BootstrapResponse boot_resp;
      grpc::Status bs = pd.Bootstrap(with_deadline(&boot_ctx), boot, &boot_resp);
      if (!bs.ok()) {
        return Status::unavailable(fmt::format("bootstrapping the cluster: {}", bs.error_message()));
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
    grpc::ClientContext ctx;
    pdpb::PutStoreRequest req;
    *req.mutable_header() = header;
    *req.mutable_store() = self;
    pdpb::PutStoreResponse resp;
    grpc::Status s = pd.PutStore(with_deadline(&ctx), req, &resp);
    RDB_RETURN_IF_ERROR(pd_error(fmt::format("registering store {}", id.store_id), s, resp.header()));
  }
  return id;
}

}  // namespace rdb
