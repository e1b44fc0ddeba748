// etcd's leases on rdb's transactions: Grant, Revoke, KeepAlive, TimeToLive, Leases, and
// their expiry.
//
// A lease is a transactional record (its granted TTL and when it expires, in the TSO's
// physical milliseconds); each key attached to it is a separate record beside it (see
// keys.h), so attaching a key is a write of that key's records only. Revoking deletes the
// lease and every key attached to it in one transaction: one revision, as in etcd. A lease
// past its expiry is gone for every caller at once (keep-alive, put, time-to-live) even
// before it is revoked; the expiry of such leases is done by one gateway at a time, the
// live gateway with the lowest member id (MemberRegistry), so a crashed keeper is
// replaced when its member record runs out.
// Thread safety: every method may be called from any number of threads at once.
// Ownership: borrows the KV layer, client, layout and registry; they outlive it.
#pragma once

#include <condition_variable>
#include <mutex>
#include <random>
#include <thread>

#include "etcd/kv.h"
#include "etcd/members.h"
#include "etcd_rpc.grpc.pb.h"

namespace rdb::etcd {

inline constexpr std::int64_t kMinLeaseTtlSeconds = 2;              // what etcd grants at its defaults
inline constexpr std::int64_t kMaxLeaseTtlSeconds = 9'000'000'000;  // etcd's limit

class Leases {
 public:
  Leases(EtcdKv& kv, RdbClient& client, const KeyLayout& layout, MemberRegistry& members);
  ~Leases();

  grpc::Status grant(const etcdserverpb::LeaseGrantRequest& req, etcdserverpb::LeaseGrantResponse* resp);
  grpc::Status revoke(const etcdserverpb::LeaseRevokeRequest& req, etcdserverpb::LeaseRevokeResponse* resp);
  // TTL 0 in the answer: no such lease (or it expired), as etcd answers.
  grpc::Status keep_alive(std::int64_t id, etcdserverpb::LeaseKeepAliveResponse* resp);
  grpc::Status time_to_live(const etcdserverpb::LeaseTimeToLiveRequest& req,
                            etcdserverpb::LeaseTimeToLiveResponse* resp);
  grpc::Status list(etcdserverpb::LeaseLeasesResponse* resp);

  // Revokes every lease past its expiry (when this gateway is the keeper); returns how many.
  Result<std::size_t> expire_once();
  // Runs expire_once every `interval` until stop().
  void start_expiry(std::chrono::milliseconds interval);
  void stop();

 private:
  // Deletes the lease and its keys inside `t`; NOT_FOUND when there is no such lease.
  grpc::Status revoke_in(Transaction& t, std::int64_t id, bool only_if_expired, bool* revoked);
  Result<std::optional<etcdgw::LeaseRecord>> read_lease(Transaction& t, std::int64_t id);

  EtcdKv& kv_;
  RdbClient& client_;
  const KeyLayout& layout_;
  MemberRegistry& members_;
  std::mutex rng_mu_;
  std::mt19937_64 rng_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread expiry_;
};

class LeaseService final : public etcdserverpb::Lease::Service {
 public:
  explicit LeaseService(Leases& leases) : leases_(leases) {}
  grpc::Status LeaseGrant(grpc::ServerContext*, const etcdserverpb::LeaseGrantRequest* req,
                          etcdserverpb::LeaseGrantResponse* resp) override;
  grpc::Status LeaseRevoke(grpc::ServerContext*, const etcdserverpb::LeaseRevokeRequest* req,
                           etcdserverpb::LeaseRevokeResponse* resp) override;
  grpc::Status LeaseKeepAlive(grpc::ServerContext* ctx,
                              grpc::ServerReaderWriter<etcdserverpb::LeaseKeepAliveResponse,
                                                       etcdserverpb::LeaseKeepAliveRequest>* stream) override;
  grpc::Status LeaseTimeToLive(grpc::ServerContext*, const etcdserverpb::LeaseTimeToLiveRequest* req,
                               etcdserverpb::LeaseTimeToLiveResponse* resp) override;
  grpc::Status LeaseLeases(grpc::ServerContext*, const etcdserverpb::LeaseLeasesRequest* req,
                           etcdserverpb::LeaseLeasesResponse* resp) override;

 private:
  Leases& leases_;
};

}  // namespace rdb::etcd
