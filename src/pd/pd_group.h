// PdGroup: PD's replicated state machine. The members of a PD group run one Raft
// group (the core in src/raft) whose log holds every change to what PD persists —
// stores, regions, the bootstrap, the id allocator's bound and the TSO bound — and
// whose membership is the PD group's. Each member applies the committed log to its
// own ClusterMeta and bounds, in its own engine; a single rdb-pd is a group of one.
//
// Leadership and the lease. Only the leader proposes, allocates ids and serves TSO
// (PdService asks serving_term()). The leader renews a lease every tick with a
// ReadIndex round: when a quorum confirms a round sent at time t, the lease runs to
// t + lease_ms. A newly elected leader serves only lease_ms after its election (and
// once everything committed before its term is applied): by then any earlier
// leader's lease has run out, because the quorum that confirmed that leader's last
// round and the quorum that elected the new one share a member, which confirmed the
// old leader before it voted. So two leaders never serve at once, and a new leader's
// TSO, started above the committed bound, is above everything handed out before.
// (A group of one needs no wait: no one else can have led.)
//
// propose() waits until this member applied the command and returns the apply's
// answer; a lost leadership fails waiting proposals with UNAVAILABLE (the change
// may still apply later). A restart replays the log past the recorded applied
// index: applying is idempotent (ClusterMeta's contract; bounds only grow).
//
// Thread safety: every public method may be called from any thread. One internal
// thread drives Raft: it persists, sends through the PdTransport, applies.
// Ownership: the engine, the ClusterMeta and the transport are borrowed and must
// outlive the group.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/result.h"
#include "pd/cluster_meta.h"
#include "pdpb.pb.h"
#include "raft/raw_node.h"
#include "raftdisk/peer_storage.h"
#include "storage/storage_engine.h"

namespace rdb {

// A member's Raft id, derived from its (unique) name; never 0.
std::uint64_t pd_member_id(std::string_view name);
// Parses --initial-cluster: "NAME=HOST:PORT[,NAME=HOST:PORT...]" (names and addresses unique).
Result<std::vector<pdpb::Member>> parse_initial_cluster(std::string_view text);
// The cluster id a new PD group takes: derived from its initial members, so every
// member started with the same --initial-cluster agrees without talking.
std::uint64_t cluster_id_of(const std::vector<pdpb::Member>& members);

// How the group's Raft messages reach the other members.
class PdTransport {
 public:
  virtual ~PdTransport() = default;
  // Must not block for long; may drop (Raft resends what matters).
  virtual void send(const pdpb::Member& to, std::vector<raftpb::Message> messages) = 0;
};

struct PdGroupOptions {
  std::string name;
  // The group's members when this data directory is new (this member among them).
  std::vector<pdpb::Member> initial_members;
  // A member added to a running group: it starts with no configuration and learns
  // the group's state from the leader (initial_members only tell it where they are).
  bool join_existing = false;
  std::uint64_t tick_ms = 50;
  int election_ticks = 10;  // followers campaign after 10-20 ticks without a leader
  int heartbeat_ticks = 2;
  std::uint64_t lease_ms = 400;
  std::uint64_t compact_log_after = 10000;  // applied entries kept before the log is compacted
};

class PdGroup {
 public:
  using Clock = std::chrono::steady_clock;

  static Result<std::unique_ptr<PdGroup>> open(StorageEngine& engine, ClusterMeta& meta, PdTransport& transport,
                                               PdGroupOptions options);
  ~PdGroup();
  PdGroup(const PdGroup&) = delete;
  PdGroup& operator=(const PdGroup&) = delete;

  std::uint64_t member_id() const { return self_id_; }
  const std::string& name() const { return options_.name; }
  // This member's address as served (a group of one may bind port 0).
  void set_self_address(std::string address);

  // Proposes `command` and waits until this member applied it: the apply's answer.
  // UNAVAILABLE when this member is not the leader (or stops being it before the
  // command applied); DEADLINE_EXCEEDED when the deadline passed first (the command
  // may still apply).
  Status propose(pdpb::PdCommand command, Clock::time_point deadline);
  // Membership changes (one joint-free step each). Adding a member that exists, or
  // removing one that does not, is INVALID_ARGUMENT naming it.
  Status add_member(const pdpb::Member& member, Clock::time_point deadline);
  Status remove_member(const std::string& name, Clock::time_point deadline);
  // Hands leadership to another voter (the leader's own removal goes through this).
  Status transfer_leadership(Clock::time_point deadline);

  // The term in which this member serves as leader now (lease held, term started,
  // everything before it applied); 0 when it does not.
  std::uint64_t serving_term() const;
  bool is_leader() const;
  // The current leader as this member knows it.
  std::optional<pdpb::Member> leader() const;
  // In name order.
  std::vector<pdpb::Member> members() const;
  std::optional<pdpb::Member> member_by_name(std::string_view name) const;
  // The applied bounds (0 when never set).
  std::uint64_t tso_bound_ms() const;
  std::uint64_t id_bound() const;
  std::uint64_t gc_safe_point() const;  // a TSO timestamp; only grows
  std::uint64_t applied_index() const;

  // Raft messages from another member (the caller checked the cluster id). Messages
  // not addressed to this member or from no known member are dropped; the Raft core
  // validates the rest before they touch state. Returns how many were queued.
  std::size_t receive(std::vector<raftpb::Message> messages);

 private:
  struct Inbound {
    enum class Kind { kMessage, kProposal, kConfChange, kTransfer } kind;
    raftpb::Message message;
    std::string data;
    raftpb::ConfChangeV2 conf_change;
    std::uint64_t proposal_id = 0;
  };

  PdGroup(StorageEngine& engine, ClusterMeta& meta, PdTransport& transport, PdGroupOptions options);
  Status load();
  void run();
  void handle(Inbound& in);
  void handle_ready();
  void on_soft_state(const raft::SoftState& ss);
  Status restore_snapshot(const raft::Snapshot& snap);
  void apply_entry(const raftpb::Entry& e, WriteBatch& wb);
  Status apply_command(const pdpb::PdCommand& cmd);
  Status apply_member_change(const raftpb::ConfChangeV2& cc, const pdpb::PdMemberChange& change, WriteBatch& wb);
  Status persist_bound(const char* key, std::uint64_t value);
  std::uint64_t& bound_for(std::string_view key);  // the member holding a persisted bound
  void renew_lease();
  void maybe_compact();
  Result<raft::Snapshot> build_snapshot() const;
  // Registers a waiter and queues `in`; waits for the answer until the deadline.
  Status submit(Inbound in, Clock::time_point deadline);
  void finish(std::uint64_t proposal_id, Status status);
  void fail_all_waiters(const Status& status);
  std::vector<pdpb::Member> members_locked() const;

  StorageEngine& engine_;
  ClusterMeta& meta_;
  PdTransport& transport_;
  const PdGroupOptions options_;
  const std::uint64_t self_id_;
  std::unique_ptr<PeerStorage> storage_;
  std::unique_ptr<raft::RawNode> node_;  // driver thread only

  // Inbound work for the driver thread.
  std::mutex inbox_mu_;
  std::condition_variable inbox_cv_;
  std::vector<Inbound> inbox_;
  bool stop_ = false;
  static constexpr std::size_t kMaxInbox = 16384;

  // Proposals waiting to be applied, by proposal id.
  std::mutex waiters_mu_;
  std::map<std::uint64_t, std::promise<Status>> waiters_;
  std::uint64_t next_proposal_id_;

  // What other threads read: leadership, lease, membership, bounds.
  mutable std::mutex state_mu_;
  std::uint64_t leader_id_ = 0;
  std::uint64_t term_ = 0;
  bool leader_ = false;
  bool transferring_ = false;
  std::uint64_t term_start_index_ = 0;  // the leader's first entry of its term
  std::uint64_t applied_ = 0;
  Clock::time_point serve_from_{};
  Clock::time_point lease_until_{};
  std::map<std::uint64_t, pdpb::Member> members_;  // by member id
  std::string self_address_;
  std::uint64_t tso_bound_ms_ = 0;
  std::uint64_t id_bound_ = 0;
  std::uint64_t gc_safe_point_ = 0;

  // Lease rounds in flight (driver thread only): ReadIndex context -> when sent.
  std::map<std::uint64_t, Clock::time_point> lease_rounds_;
  std::uint64_t next_lease_round_ = 1;

  std::thread thread_;
};

}  // namespace rdb
