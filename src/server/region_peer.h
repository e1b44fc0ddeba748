// RegionPeer: one region's replica on this store — its Raft node and log storage,
// its view of the region, and the requests waiting on it: proposals (by log index),
// reads (by request until Raft confirms their index, then by index until applied)
// and membership changes. It checks a request against the region (epoch, range,
// leadership) before anything is proposed.
//
// Thread safety: none. A RegionPeer is owned and driven by its store's loop thread;
// every callback it holds is invoked there.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "kvrpc.pb.h"
#include "metapb.pb.h"
#include "raft/raw_node.h"
#include "raft_serverpb.pb.h"
#include "raftdisk/peer_storage.h"

namespace rdb {

struct ProposeResult {
  std::optional<kvrpc::RegionError> region_error;  // certainly not applied
  raft_serverpb::KvCommandResult result;
  // The proposal was accepted but the store stops before knowing its fate: it may
  // still be committed and applied by the next leader.
  bool undetermined = false;
  std::string undetermined_why{};  // what stopped the store from knowing it, for the client
};
using ProposeCallback = std::function<void(ProposeResult)>;
// Called when the store may serve a linearizable read of the region (no region error),
// i.e. its state machine has applied everything committed before the read was asked.
using ReadCallback = std::function<void(std::optional<kvrpc::RegionError>)>;

// A retryable refusal: the write never entered the log.
kvrpc::RegionError server_is_busy(const std::string& why);
// KeyNotInRegion for `key` (`what` names it in the message: "a key", "the range's end").
kvrpc::RegionError key_not_in_region(const std::string& key, const metapb::Region& region, const char* what);
// The member of `region` with this peer id, if any.
std::optional<metapb::Peer> find_member(const metapb::Region& region, std::uint64_t peer_id);

class RegionPeer {
 public:
  RegionPeer(metapb::Region region, metapb::Peer self, std::unique_ptr<PeerStorage> storage)
      : region(std::move(region)), self(std::move(self)), storage(std::move(storage)) {}

  metapb::Region region;
  metapb::Peer self;
  std::unique_ptr<PeerStorage> storage;
  std::unique_ptr<raft::RawNode> node;
  // Removed from the region (by a conf change or a tombstone): it serves nothing more.
  bool removed = false;
  // The Raft core threw while handling this peer: its in-memory state is not to be
  // trusted. The store reloads it from what was persisted, as after a crash.
  bool broken = false;
  // Split checks (leaders only): what was written since the last check, whether one is
  // due regardless (a new leader checks once), and whether one is under way.
  std::uint64_t written_bytes = 0;
  std::uint64_t written_keys = 0;
  bool split_check_due = true;
  bool split_checking = false;
  // The region's size (keys + values as written) by the last complete check, plus
  // what was applied since; 0 until checked.
  std::uint64_t approximate_bytes = 0;
  std::uint64_t approximate_keys = 0;
  // Bytes of the entries appended to the log since it was last compacted (0 after a
  // restart or a snapshot: counted again from then on).
  std::uint64_t log_bytes = 0;
  // Followers: the highest log_gc_index a leader sent (see RaftStore::maybe_compact).
  std::uint64_t leader_log_gc_index = 0;
  // The regions this one's last split made: an EpochNotMatch carries them too, so a
  // client learns the new layout without asking PD.
  std::vector<metapb::Region> split_into;
  // Set while this region is a merge's prepared source: it serves no requests until the
  // target absorbs it (this replica is then destroyed) or the merge rolls back.
  std::optional<raft_serverpb::MergeState> merging;
  // Committed entries waiting behind a COMMIT_MERGE whose source replica on this store
  // has not applied its PREPARE_MERGE yet (applied in order once it has).
  std::vector<raft::Entry> blocked_entries;
  // Merge driving (source leader): when it last proposed a commit, rollback or transfer.
  std::uint64_t merge_step_at_ms = 0;
  // Hibernation (see server/hibernation.h): a sleeping peer is not ticked. A leader
  // counts its idle ticks, then asks its followers to sleep at (term, index) and
  // sleeps itself once every live one agreed.
  bool hibernating = false;
  int idle_ticks = 0;
  std::uint64_t hibernate_term = 0;
  std::uint64_t hibernate_index = 0;
  std::set<std::uint64_t> hibernate_acks;  // peer ids that agreed to (hibernate_term, hibernate_index)

  std::uint64_t id() const { return region.id(); }
  bool is_leader() const { return node->raft().role() == raft::StateRole::kLeader; }
  // NotLeader naming the leader this peer knows of.
  kvrpc::RegionError not_leader() const;
  // Epoch, keys in range, leadership: the first that fails, as a region error.
  std::optional<kvrpc::RegionError> check_request(const kvrpc::Context& ctx,
                                                  const std::vector<std::string>& keys) const;

  // Appends the command to the log and takes `cb`, answered once the entry applies (or
  // is overwritten). On an error (e.g. a leader transferring away) `cb` stays with the
  // caller, unanswered.
  Status propose(const std::string& data, ProposeCallback& cb);
  // Asks Raft to confirm a read point; takes `cb`, answered once that point is applied.
  // Inside a valid leader lease (see below) the read point is the commit index, no round.
  // `now_ms`: the store's monotonic clock.
  Status read_index(ReadCallback& cb, std::uint64_t now_ms);

  // Leader lease (lease reads; off while lease_ms is 0). When a quorum confirmed this
  // leader in a read round that started at time t, every follower of that quorum heard
  // from it after t and refuses votes for one election timeout after that (check_quorum;
  // a restarted one too: raft::Config::lease_after_restart), so no other leader can be
  // elected before t + the election timeout, by a clock that kept running through any
  // pause of this process. Until t + lease_ms (a margin below that timeout) reads are
  // answered at the commit index without a round. The lease holds only in the term,
  // epoch (membership, range) it was won in, and never after this leader sent
  // MsgTimeoutNow in its term (the transferee campaigns past the followers' refusal).
  std::uint64_t lease_ms = 0;
  bool lease_valid(std::uint64_t now_ms) const;
  // When the lease won last ends (store clock); only meaningful while lease_valid().
  std::uint64_t lease_until_ms() const { return lease_.until_ms; }
  // Inside a valid lease's last third, starts a read round that renews it (one at a time;
  // one that got lost is given up after a lease's length).
  void renew_lease(std::uint64_t now_ms);
  // This leader handed its leadership on (sent MsgTimeoutNow): no lease for the rest of its term.
  void forbid_lease_this_term();
  // A Ready is being taken: reads from now on need a read index request of their own.
  void close_read_batch() { open_read_batch_.clear(); }
  Status propose_conf_change(const raftpb::ConfChangeV2& cc, std::function<void(Status)>& cb);

  struct PendingProposal {
    std::uint64_t term = 0;
    ProposeCallback cb;
  };
  // The proposal this peer made at `index`, if any (taken: it is answered by the caller).
  std::optional<PendingProposal> take_proposal(std::uint64_t index);
  std::function<void(Status)> take_conf_change(std::uint64_t index);

  // A deposed leader's unconfirmed reads can never be confirmed: they are told NotLeader.
  void on_role_change(const raft::SoftState& ss);
  // Proposals (and membership changes) whose log entries are no longer in the log — cut off
  // its end when a deposed leader's log was replaced by a shorter one — are answered now:
  // UNDETERMINED (they may still commit elsewhere) and UNAVAILABLE; so are proposals a
  // snapshot skipped (at or below the applied index, never applied one by one). Called
  // after each ready, once its entries applied.
  void answer_truncated_proposals();
  // Reads Raft confirmed wait for their index to apply; those already applied are answered.
  void on_read_states(const std::vector<raft::ReadState>& states);
  void answer_applied_reads();
  // Answers everything waiting: proposals UNDETERMINED, reads ServerIsBusy(why).
  void fail_pending(const std::string& why);
  // Proposals, reads or membership changes are waiting on this peer.
  bool has_pending_requests() const {
    return !proposals_.empty() || !reads_waiting_index_.empty() || !reads_waiting_apply_.empty() ||
           !conf_changes_.empty();
  }

 private:
  std::map<std::uint64_t, PendingProposal> proposals_;                    // by log index
  std::map<std::string, std::vector<ReadCallback>> reads_waiting_index_;  // by request ctx
  std::string open_read_batch_;  // the request later reads may join until the next Ready
  std::multimap<std::uint64_t, ReadCallback> reads_waiting_apply_;     // by read index
  std::map<std::uint64_t, std::function<void(Status)>> conf_changes_;  // by log index
  std::uint64_t read_seq_ = 0;
  // Leader lease: until when, and the term and epoch it was won in.
  struct Lease {
    std::uint64_t until_ms = 0;
    std::uint64_t term = 0;
    std::uint64_t conf_ver = 0;
    std::uint64_t version = 0;
  };
  Lease lease_;
  std::uint64_t lease_forbidden_term_ = 0;
  // When each read round of this peer started (by request ctx), in which term and
  // epoch: a round confirmed in the same term and epoch renews the lease from then.
  std::map<std::string, Lease> read_rounds_;
  std::uint64_t renewal_started_ms_ = 0;  // a round started only to renew the lease; 0: none
  // Starts a read round; `cb` (if any) waits on it.
  Status start_read_round(std::uint64_t now_ms, ReadCallback* cb);
};

}  // namespace rdb
