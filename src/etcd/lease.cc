#include "etcd/lease.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/limits.h"

namespace rdb::etcd {
namespace {

std::uint64_t now_ms_of(const Transaction& t) {
  return tso_physical_ms(t.start_ts());
}

bool expired(const etcdgw::LeaseRecord& l, std::uint64_t now_ms) {
  return l.expires_ms() <= now_ms;
}

}  // namespace

Leases::Leases(EtcdKv& kv, RdbClient& client, const KeyLayout& layout, MemberRegistry& members)
    : kv_(kv), client_(client), layout_(layout), members_(members), rng_(std::random_device{}()) {}

Leases::~Leases() {
  stop();
}

Result<std::optional<etcdgw::LeaseRecord>> Leases::read_lease(Transaction& t, std::int64_t id) {
  RDB_ASSIGN_OR_RETURN(auto bytes, t.get(layout_.lease_key(id)));
  if (!bytes) {
    return std::optional<etcdgw::LeaseRecord>();
  }
  etcdgw::LeaseRecord rec;
  if (!rec.ParseFromString(*bytes)) {
    return ServerStatus::corruption(fmt::format("the record of lease {} does not parse", id));
  }
  return std::optional<etcdgw::LeaseRecord>(std::move(rec));
}

grpc::Status Leases::grant(const etcdserverpb::LeaseGrantRequest& req, etcdserverpb::LeaseGrantResponse* resp) {
  if (req.ttl() > kMaxLeaseTtlSeconds) {
    return err_lease_ttl_too_large();
  }
  if (req.id() < 0) {
    return {grpc::StatusCode::INVALID_ARGUMENT, "rdb-etcd: a lease id must not be negative"};
  }
  const std::int64_t ttl = std::max(req.ttl(), kMinLeaseTtlSeconds);
  std::int64_t id = req.id();
  if (id == 0) {
    std::lock_guard lock(rng_mu_);
    id = static_cast<std::int64_t>(rng_() >> 1);  // positive, as etcd's ids
    id = id == 0 ? 1 : id;
  }
  std::int64_t revision = 0;
  grpc::Status s = kv_.run(
      [&](Transaction& t) -> grpc::Status {
        auto existing = read_lease(t, id);
        if (!existing.is_ok()) {
          return to_grpc(existing.status());
        }
        if (*existing) {
          if (!expired(**existing, now_ms_of(t))) {
            return err_lease_exists();
          }
          // Expired but not revoked yet: revoke it here (its keys go) so the new lease
          // does not inherit its attachments.
          bool revoked = false;
          if (grpc::Status r = revoke_in(t, id, true, &revoked); !r.ok()) {
            return r;
          }
        }
        etcdgw::LeaseRecord rec;
        rec.set_granted_ttl_s(ttl);
        rec.set_expires_ms(now_ms_of(t) + static_cast<std::uint64_t>(ttl) * 1000);
        return to_grpc(t.put(layout_.lease_key(id), rec.SerializeAsString()));
      },
      &revision);
  if (!s.ok()) {
    return s;
  }
  kv_.fill_header(resp->mutable_header(), revision);
  resp->set_id(id);
  resp->set_ttl(ttl);
  return grpc::Status::OK;
}

grpc::Status Leases::revoke_in(Transaction& t, std::int64_t id, bool only_if_expired, bool* revoked) {
  *revoked = false;
  auto lease = read_lease(t, id);
  if (!lease.is_ok()) {
    return to_grpc(lease.status());
  }
  if (!*lease) {
    return err_lease_not_found();
  }
  if (only_if_expired && !expired(**lease, now_ms_of(t))) {
    return grpc::Status::OK;  // kept alive meanwhile
  }
  auto [start, end] = layout_.attached_range(id);
  for (;;) {
    auto page = t.scan(start, end, 1000);
    if (!page.is_ok()) {
      return to_grpc(page.status());
    }
    for (const auto& kv : *page) {
      const std::string key = layout_.attached_etcd_key(kv.key);
      auto cur = kv_.read_key(t, key);
      if (!cur.is_ok()) {
        return to_grpc(cur.status());
      }
      if (*cur && (*cur)->record.lease() == id) {
        if (grpc::Status s = kv_.erase_in(t, **cur); !s.ok()) {
          return s;
        }
      } else if (Status s = t.erase(kv.key); !s.is_ok()) {  // a stale attachment: tidy it
        return to_grpc(s);
      }
    }
    if (page->size() < 1000) {
      break;
    }
    start = page->back().key + '\0';
  }
  if (Status s = t.erase(layout_.lease_key(id)); !s.is_ok()) {
    return to_grpc(s);
  }
  *revoked = true;
  return grpc::Status::OK;
}

grpc::Status Leases::revoke(const etcdserverpb::LeaseRevokeRequest& req, etcdserverpb::LeaseRevokeResponse* resp) {
  std::int64_t revision = 0;
  grpc::Status s = kv_.run(
      [&](Transaction& t) {
        bool revoked = false;
        return revoke_in(t, req.id(), false, &revoked);
      },
      &revision);
  if (!s.ok()) {
    return s;
  }
  kv_.fill_header(resp->mutable_header(), revision);
  return grpc::Status::OK;
}

grpc::Status Leases::keep_alive(std::int64_t id, etcdserverpb::LeaseKeepAliveResponse* resp) {
  std::int64_t revision = 0;
  std::int64_t ttl = 0;
  grpc::Status s = kv_.run(
      [&](Transaction& t) -> grpc::Status {
        ttl = 0;
        auto lease = read_lease(t, id);
        if (!lease.is_ok()) {
          return to_grpc(lease.status());
        }
        if (!*lease || expired(**lease, now_ms_of(t))) {
          return grpc::Status::OK;  // TTL 0: gone
        }
        etcdgw::LeaseRecord rec = **lease;
        rec.set_expires_ms(now_ms_of(t) + static_cast<std::uint64_t>(rec.granted_ttl_s()) * 1000);
        ttl = rec.granted_ttl_s();
        return to_grpc(t.put(layout_.lease_key(id), rec.SerializeAsString()));
      },
      &revision);
  if (!s.ok()) {
    return s;
  }
  kv_.fill_header(resp->mutable_header(), revision);
  resp->set_id(id);
  resp->set_ttl(ttl);
  return grpc::Status::OK;
}

grpc::Status Leases::time_to_live(const etcdserverpb::LeaseTimeToLiveRequest& req,
                                  etcdserverpb::LeaseTimeToLiveResponse* resp) {
  auto begun = client_.begin();
  if (!begun.is_ok()) {
    return to_grpc(begun.status());
  }
  Transaction& t = **begun;
  resp->set_id(req.id());
  kv_.fill_header(resp->mutable_header(), static_cast<std::int64_t>(t.start_ts()));
  auto lease = read_lease(t, req.id());
  if (!lease.is_ok()) {
    return to_grpc(lease.status());
  }
  const std::uint64_t now = now_ms_of(t);
  if (!*lease || expired(**lease, now)) {
    resp->set_ttl(-1);  // as etcd: gone (etcdctl prints "already expired")
    return grpc::Status::OK;
  }
  resp->set_grantedttl((*lease)->granted_ttl_s());
  resp->set_ttl(static_cast<std::int64_t>(((*lease)->expires_ms() - now + 999) / 1000));
  if (req.keys()) {
    auto [start, end] = layout_.attached_range(req.id());
    for (;;) {
      auto page = t.scan(start, end, 1000);
      if (!page.is_ok()) {
        return to_grpc(page.status());
      }
      for (const auto& kv : *page) {
        resp->add_keys(layout_.attached_etcd_key(kv.key));
      }
      if (page->size() < 1000 || static_cast<std::size_t>(resp->keys_size()) >= kMaxBatchKeys) {
        break;
      }
      start = page->back().key + '\0';
    }
  }
  return grpc::Status::OK;
}

grpc::Status Leases::list(etcdserverpb::LeaseLeasesResponse* resp) {
  auto begun = client_.begin();
  if (!begun.is_ok()) {
    return to_grpc(begun.status());
  }
  Transaction& t = **begun;
  kv_.fill_header(resp->mutable_header(), static_cast<std::int64_t>(t.start_ts()));
  const std::uint64_t now = now_ms_of(t);
  auto [start, end] = layout_.lease_range();
  for (;;) {
    auto page = t.scan(start, end, 1000);
    if (!page.is_ok()) {
      return to_grpc(page.status());
    }
    for (const auto& kv : *page) {
      etcdgw::LeaseRecord rec;
      if (rec.ParseFromString(kv.value) && !expired(rec, now)) {
        resp->add_leases()->set_id(layout_.lease_id(kv.key));
      }
    }
    if (page->size() < 1000) {
      return grpc::Status::OK;
    }
    start = page->back().key + '\0';
  }
}

Result<std::size_t> Leases::expire_once() {
  RDB_ASSIGN_OR_RETURN(bool keeper, members_.is_keeper());
  if (!keeper) {
    return std::size_t{0};
  }
  std::vector<std::int64_t> due;
  {
    RDB_ASSIGN_OR_RETURN(auto t, client_.begin());
    const std::uint64_t now = now_ms_of(*t);
    auto [start, end] = layout_.lease_range();
    for (;;) {
      RDB_ASSIGN_OR_RETURN(auto page, t->scan(start, end, 1000));
      for (const auto& kv : page) {
        etcdgw::LeaseRecord rec;
        if (rec.ParseFromString(kv.value) && expired(rec, now)) {
          due.push_back(layout_.lease_id(kv.key));
        }
      }
      if (page.size() < 1000) {
        break;
      }
      start = page.back().key + '\0';
    }
    (void)t->rollback();
  }
  std::size_t revoked_count = 0;
  for (std::int64_t id : due) {
    std::int64_t revision = 0;
    bool revoked = false;
    grpc::Status s = kv_.run([&](Transaction& t) { return revoke_in(t, id, true, &revoked); }, &revision);
    if (s.ok()) {
      revoked_count += revoked ? 1 : 0;
    } else if (s.error_code() != grpc::StatusCode::NOT_FOUND) {  // NOT_FOUND: revoked by someone else
      spdlog::warn("lease {:x}: expiry failed: {}", id, s.error_message());
    }
  }
  return revoked_count;
}

void Leases::start_expiry(std::chrono::milliseconds interval) {
  expiry_ = std::thread([this, interval] {
    std::unique_lock lock(mu_);
    while (!cv_.wait_for(lock, interval, [this] { return stopping_; })) {
      lock.unlock();
      if (auto n = expire_once(); !n.is_ok()) {
        spdlog::warn("lease expiry: {}", n.status().to_string());
      } else if (*n > 0) {
        spdlog::debug("lease expiry: {} lease(s) revoked", *n);
      }
      lock.lock();
    }
  });
}

void Leases::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (expiry_.joinable()) {
    expiry_.join();
  }
}

grpc::Status LeaseService::LeaseGrant(grpc::ServerContext*, const etcdserverpb::LeaseGrantRequest* req,
                                      etcdserverpb::LeaseGrantResponse* resp) {
  return leases_.grant(*req, resp);
}

grpc::Status LeaseService::LeaseRevoke(grpc::ServerContext*, const etcdserverpb::LeaseRevokeRequest* req,
                                       etcdserverpb::LeaseRevokeResponse* resp) {
  return leases_.revoke(*req, resp);
}

grpc::Status LeaseService::LeaseKeepAlive(
    grpc::ServerContext* ctx,
    grpc::ServerReaderWriter<etcdserverpb::LeaseKeepAliveResponse, etcdserverpb::LeaseKeepAliveRequest>* stream) {
  etcdserverpb::LeaseKeepAliveRequest req;
  while (stream->Read(&req)) {
    etcdserverpb::LeaseKeepAliveResponse resp;
    if (grpc::Status s = leases_.keep_alive(req.id(), &resp); !s.ok()) {
      return s;
    }
    if (!stream->Write(resp) || ctx->IsCancelled()) {
      break;
    }
  }
  return grpc::Status::OK;
}

grpc::Status LeaseService::LeaseTimeToLive(grpc::ServerContext*, const etcdserverpb::LeaseTimeToLiveRequest* req,
                                           etcdserverpb::LeaseTimeToLiveResponse* resp) {
  return leases_.time_to_live(*req, resp);
}

grpc::Status LeaseService::LeaseLeases(grpc::ServerContext*, const etcdserverpb::LeaseLeasesRequest*,
                                       etcdserverpb::LeaseLeasesResponse* resp) {
  return leases_.list(resp);
}

}  // namespace rdb::etcd
