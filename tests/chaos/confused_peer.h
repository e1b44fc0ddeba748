// The "confused peer" fault: a process that speaks the stores' Raft protocol
// and sends what a buggy, lagging or misconfigured peer would — stale terms,
// duplicates, misaddressed messages (wrong store, peer or region), malformed
// ones (local-only types, ReadIndex without entries, gapped entries, terms and
// commits out of range) and snapshot streams that do not parse or announce more
// than they carry. None of it is a plausible forgery at the current term (that
// is Byzantine input, kept out by TLS), so the cluster's history must stay
// linearizable while it runs; each store must drop and count it.
// Thread safety: start() and stop() from one thread; stop() joins the sender.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "rdb/client.h"

namespace rdb::chaos {

class ConfusedPeer {
 public:
  struct Target {
    std::uint64_t store_id = 0;
    std::string address;
  };
  ConfusedPeer() = default;
  ~ConfusedPeer() { stop(); }
  ConfusedPeer(const ConfusedPeer&) = delete;
  ConfusedPeer& operator=(const ConfusedPeer&) = delete;

  // Sends to every target until stop(); `region` is the region the stores hold,
  // `cluster_id` the stores' cluster.
  void start(std::vector<Target> targets, RegionInfo region, std::uint64_t cluster_id, std::uint64_t seed);
  void stop();
  std::uint64_t sent() const { return sent_.load(); }

 private:
  void run(std::vector<Target> targets, RegionInfo region, std::uint64_t seed);

  std::atomic<bool> stopping_{false};
  std::uint64_t cluster_id_ = 0;
  std::atomic<std::uint64_t> sent_{0};
  std::thread thread_;
};

}  // namespace rdb::chaos
