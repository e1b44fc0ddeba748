// LocalReader: lets the thread that received a read serve it under the leader's lease,
// without a trip through the Raft thread (TiKV's local reader, in spirit).
//
// The Raft thread publishes a ReadLease for each region it leads with a valid lease
// (RegionPeer::lease_valid) once everything committed is applied: the region as it is
// then (epoch, range), the term, and the lease's end by the store's monotonic clock. A
// read whose context names that epoch (and that term, if it names one), whose keys are
// in that range and which arrives before the end may read the engine at once, because
// - no other leader of the region can be elected before the lease's end (see
//   RegionPeer::lease_ms), so nothing this store has not applied can have been
//   acknowledged anywhere;
// - this leader acknowledges a write only once it is applied to the engine, and when it
//   published it had applied an entry of its own term, hence every earlier term's.
// What ends a lease early is revoked on the Raft thread before it can take effect: a
// leadership transfer (before MsgTimeoutNow leaves), a split or merge (as it applies), a
// peer that broke or was removed. Anything else (a new term, a lost leadership) cannot
// happen inside the lease, for the first reason, and is caught when the Raft thread
// republishes after the round that saw it. A read that does not match goes the Raft
// thread's way (RaftStore::read_index), which answers with the right region error.
//
// Renewal: the first read in the last third of a published lease is told to ask for a
// read round (RaftStore posts one), so steady local reads keep the lease without ever
// waiting for a round.
//
// Thread safety: every method may be called from any thread (a shared mutex guards the
// map; readers only share it). Leases are published and revoked by the Raft thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <span>
#include <string>
#include <unordered_map>

#include "kvrpc.pb.h"
#include "metapb.pb.h"

namespace rdb {

struct ReadLease {
  metapb::Region region;
  std::uint64_t term = 0;
  std::uint64_t until_ms = 0;       // the lease ends (store clock): no local read from then on
  std::uint64_t renew_from_ms = 0;  // reads from then on ask for a renewal (once)
};

class LocalReader {
 public:
  enum class Verdict {
    kAskRaft,        // no lease here for this read: go through the Raft thread
    kServe,          // read the engine now
    kServeAndRenew,  // read the engine now, and ask the Raft thread to renew the lease
  };

  // Replaces the region's lease.
  void publish(ReadLease lease);
  void revoke(std::uint64_t region_id);
  // May a read of `keys` with context `ctx` be served locally at `now_ms`? When it may
  // and `region` is given, it receives the region the read was checked against.
  Verdict check(const kvrpc::Context& ctx, std::span<const std::string> keys, std::uint64_t now_ms,
                metapb::Region* region = nullptr) const;
  std::size_t size() const;

 private:
  struct Entry {
    explicit Entry(ReadLease l) : lease(std::move(l)) {}
    ReadLease lease;
    mutable std::atomic<bool> renew_asked{false};
  };
  mutable std::shared_mutex mu_;
  std::unordered_map<std::uint64_t, std::shared_ptr<const Entry>> leases_;  // by region id
};

}  // namespace rdb
