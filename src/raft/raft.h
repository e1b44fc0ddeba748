// Raft: the consensus state machine of one node in one Raft group.
//
// Pure and deterministic: no I/O, threads, clocks or global randomness. Time is
// tick(); input is step(message); output is what the node appends to `msgs_`,
// its log's unstable part, and `read_states_`, collected by RawNode into Ready.
// Randomized election timeouts come from a seeded generator in Config.
//
// Implemented: leader election with randomized timeouts, pre-vote and
// check-quorum; log replication with conflict resolution and fast back-off
// (term-based hints); flow control (in-flight window, bytes per message,
// probe/replicate/snapshot progress states); commitment by counting only
// current-term entries (§5.4.2); ReadIndex (safe, heartbeat-confirmed) and
// lease-based reads; snapshots (sending to lagging followers, installing);
// membership changes, single-step (one voter at a time) or by joint
// consensus (any set of changes in one safe step, Configuration); leadership transfer; proposals fail fast without a
// leader; a leader removed from the configuration steps down.
//
// Errors: step() returns a Status for a dropped proposal or read (the caller
// may retry). A violated internal invariant — a bug or corrupted storage —
// throws std::logic_error, the equivalent of etcd raft's panics.
// Thread safety: none; one thread drives a Raft.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "raft/configuration.h"
#include "raft/message_check.h"
#include "raft/progress.h"
#include "raft/raft_log.h"

namespace rdb::raft {

using raftpb::ConfChange;
using raftpb::Message;
using raftpb::MessageType;

inline constexpr std::uint64_t kNone = 0;

enum class StateRole { kFollower, kCandidate, kLeader, kPreCandidate };
const char* role_name(StateRole r);

enum class ReadOnlyOption {
  kSafe,        // confirm leadership with a heartbeat round per ReadIndex batch
  kLeaseBased,  // trust the leader lease (needs check_quorum and bounded clock drift)
};

// Test-only switches that break one Raft rule each, so tests can show that the
// simulation's invariant checks catch the bug. Never set outside tests.
struct TestBugs {
  bool grant_vote_without_log_check = false;      // §5.4.1 election restriction
  bool commit_previous_term_by_counting = false;  // §5.4.2 commitment rule
};

struct Config {
  std::uint64_t id = 0;
  int election_tick = 10;     // followers campaign after [election_tick, 2*election_tick) ticks of silence
  int heartbeat_tick = 1;     // leaders send heartbeats every heartbeat_tick ticks
  std::uint64_t applied = 0;  // last index the application applied (on restart)
  std::uint64_t max_size_per_msg = 1 << 20;
  std::size_t max_inflight_msgs = 256;
  std::uint64_t max_committed_size_per_ready = kNoLimit;
  bool check_quorum = true;
  bool pre_vote = true;
  // A leader whose commit index moved on an append response tells the followers
  // with its next append (a new proposal) or at its next tick, whichever comes
  // first, instead of at once with an append of its own that each follower must
  // answer. Halves the Raft messages of a lone write; followers learn a commit up
  // to one tick later when nothing else is proposed.
  bool lazy_commit_broadcast = false;
  // A node restarted with a persisted term behaves, for its first election timeout,
  // as if it had just heard from a leader: it refuses (pre-)votes until then (check_quorum's
  // rule). It forgot whom it last acknowledged, and a leader may hold a lease on that
  // acknowledgement (the stores' lease reads): without this, a restart would let a new
  // leader be elected inside the old one's lease. Costs a restarted cluster up to one
  // election timeout before its first election.
  bool lease_after_restart = false;
  ReadOnlyOption read_only_option = ReadOnlyOption::kSafe;
  std::uint64_t seed = 1;
  TestBugs bugs;

  Status validate() const;
};

struct SoftState {
  std::uint64_t leader_id = kNone;
  StateRole role = StateRole::kFollower;
  bool operator==(const SoftState&) const = default;
};

// A linearizable read may be served once the application has applied `index`.
struct ReadState {
  std::uint64_t index = 0;
  std::string request_ctx;
};

class Raft {
 public:
  static Result<std::unique_ptr<Raft>> create(const Config& config, const Storage& storage);

  void tick();
  Status step(Message m);
  // Checks a message from a peer against this node's log (after
  // check_message_shape()): a current heartbeat may not commit past our last
  // index, an acknowledgement may not claim entries this leader never had.
  std::optional<Rejection> check_remote(const Message& m) const;
  // Applies a committed membership change. The V1 form ignores a change that
  // cannot apply; the V2 form returns why (the configuration stays as it was).
  // Every replica reaches the same answer from the same log.
  ConfState apply_conf_change(const ConfChange& cc);
  Result<ConfState> apply_conf_change(const raftpb::ConfChangeV2& cc);
  ConfState conf_state() const;
  const Configuration& configuration() const { return conf_; }
  // Called once the application advanced its applied index: a leader in an
  // auto-leave joint configuration proposes leaving it.
  void maybe_leave_joint();

  // ---- observation (RawNode, tests, status)
  std::uint64_t id() const { return id_; }
  std::uint64_t term() const { return term_; }
  std::uint64_t vote() const { return vote_; }
  std::uint64_t leader() const { return lead_; }
  StateRole role() const { return state_; }
  std::uint64_t lead_transferee() const { return lead_transferee_; }
  // A leader's commit index the followers have not been sent yet (lazy_commit_broadcast).
  bool commit_unannounced() const { return commit_unannounced_; }
  const RaftLog& log() const { return log_; }
  RaftLog& mutable_log() { return log_; }
  const ProgressMap& progress() const { return prs_; }
  SoftState soft_state() const { return {lead_, state_}; }
  HardState hard_state() const;
  bool promotable() const;

  std::vector<Message>& msgs() { return msgs_; }
  const std::vector<Message>& msgs() const { return msgs_; }
  std::vector<ReadState>& read_states() { return read_states_; }
  const std::vector<ReadState>& read_states() const { return read_states_; }

 private:
  enum class CampaignKind { kPreElection, kElection, kTransfer };
  enum class VoteResult { kPending, kWon, kLost };
  struct ReadIndexStatus {
    Message request;
    std::uint64_t index = 0;
    std::set<std::uint64_t> acks;
  };

  Raft(const Config& config, RaftLog log);

  // roles
  void become_follower(std::uint64_t term, std::uint64_t lead);
  void become_candidate();
  void become_pre_candidate();
  void become_leader();
  void reset(std::uint64_t term);
  void reset_randomized_election_timeout();

  // elections
  void hup(CampaignKind kind);
  void campaign(CampaignKind kind);
  VoteResult poll(std::uint64_t from, MessageType type, bool granted);
  bool past_election_timeout() const { return election_elapsed_ >= randomized_election_timeout_; }
  bool has_unapplied_conf_change() const;

  // per-role message handling
  Status step_leader(Message& m);
  Status step_candidate(Message& m);
  Status step_follower(Message& m);
  void handle_append_entries(Message& m);
  void handle_heartbeat(const Message& m);
  void handle_snapshot(const Message& m);
  bool restore(const Snapshot& snap);

  // replication
  void send(Message m);
  bool maybe_send_append(std::uint64_t to, bool send_if_empty);
  void send_append(std::uint64_t to) { maybe_send_append(to, true); }
  void bcast_append();
  void bcast_heartbeat(const std::string& ctx);
  void send_timeout_now(std::uint64_t to);
  bool append_entries(std::vector<Entry> es);
  bool maybe_commit();
  bool committed_entry_in_current_term() const;
  bool quorum_active();
  std::vector<std::uint64_t> voters() const;  // of either side of a joint configuration
  void abort_leader_transfer() { lead_transferee_ = kNone; }
  void tick_election();
  void tick_heartbeat();
  void reset_progress(const Configuration& conf);
  void switch_configuration(const Configuration& conf);
  Status check_proposed_conf_change(const Entry& e) const;
  void respond_to_read_index(const Message& req, std::uint64_t index);
  Progress new_progress(bool learner) const;

  std::uint64_t id_;
  std::uint64_t term_ = 0;
  std::uint64_t vote_ = kNone;
  RaftLog log_;
  Configuration conf_;
  ProgressMap prs_;  // one per member of conf_; is_learner: votes on neither side
  StateRole state_ = StateRole::kFollower;
  std::map<std::uint64_t, bool> votes_;
  std::vector<Message> msgs_;
  std::uint64_t lead_ = kNone;
  std::uint64_t lead_transferee_ = kNone;
  std::uint64_t pending_conf_index_ = 0;
  std::vector<ReadState> read_states_;
  std::map<std::string, ReadIndexStatus> pending_reads_;
  std::deque<std::string> read_queue_;

  int election_elapsed_ = 0;
  // Config::lease_after_restart: refusing votes until election_elapsed_ reaches the
  // election timeout, though no leader is known yet.
  bool startup_lease_ = false;
  int heartbeat_elapsed_ = 0;
  int election_timeout_;
  int heartbeat_timeout_;
  int randomized_election_timeout_ = 0;
  bool check_quorum_;
  bool pre_vote_;
  bool lazy_commit_broadcast_;
  bool commit_unannounced_ = false;
  ReadOnlyOption read_only_option_;
  std::uint64_t max_msg_size_;
  std::size_t max_inflight_;
  TestBugs bugs_;
  std::mt19937_64 rng_;
};

}  // namespace rdb::raft
