// The gateways of one namespace, as etcd's Cluster.MemberList shows them.
//
// Gateways are stateless and do not know each other: each one keeps a record of
// itself (name, client URL, expiry) in rdb's transactional key space, renewed every
// `renew` and ending `ttl` after the last renewal; MemberList lists the unexpired ones.
// A gateway that stops cleanly erases its record; one that crashes drops off at its TTL.
// Thread safety: list() may be called from any thread; start/stop from one.
// Ownership: borrows the client and layout; both must outlive it.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "etcd/keys.h"
#include "etcd_rpc.pb.h"
#include "rdb/client.h"

namespace rdb::etcd {

// A stable id for a gateway: derived from its client URL (etcd's member ids are 64-bit).
std::uint64_t member_id_of(const std::string& client_url);

class MemberRegistry {
 public:
  MemberRegistry(RdbClient& client, const KeyLayout& layout, std::chrono::milliseconds renew = std::chrono::seconds(3),
                 std::chrono::milliseconds ttl = std::chrono::seconds(10));
  ~MemberRegistry();

  // Records this gateway (once its address is known) and keeps renewing the record.
  void start(std::string name, std::string client_url);
  // Erases this gateway's record (best effort) and stops renewing it.
  void stop();
  // Whether this gateway has the lowest member id among the live ones: the one that
  // does cluster-wide chores (lease expiry). False before start().
  Result<bool> is_keeper();
  // The live gateways (this one among them once started).
  Result<std::vector<etcdserverpb::Member>> list();

 private:
  Status renew_once();

  RdbClient& client_;
  const KeyLayout& layout_;
  std::string name_;        // set by start(), before the thread
  std::string client_url_;  // likewise
  std::atomic<std::uint64_t> self_id_{0};
  const std::chrono::milliseconds renew_;
  const std::chrono::milliseconds ttl_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace rdb::etcd
