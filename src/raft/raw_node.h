// RawNode: the application's handle on a Raft node — the API of the consensus core.
//
// Drive it from one thread:
//   tick()                   every tick interval (the only notion of time);
//   step(msg)                for every message received from a peer;
//   propose / propose_conf_change / read_index / transfer_leader / campaign
//                            for local requests (they fail fast, as a Status,
//                            when there is no leader);
//   while (has_ready()) { Ready rd = ready(); ...; advance(rd); }
//
// Handling a Ready — the contract (what must be persisted before what):
//   1. Persist rd.snapshot (if any), then rd.entries (appending, truncating any
//      conflicting suffix) and rd.hard_state (if set), durably (fsync when
//      rd.must_sync). Storage must reflect them before advance().
//   2. Only then send rd.messages. (A vote or an append acknowledgement sent
//      before the state it vouches for is durable could be lost in a crash and
//      break safety; this core asks for all messages to wait, leader's included.)
//   3. Apply rd.snapshot, then rd.committed_entries in order, to the state
//      machine; for ENTRY_CONF_CHANGE and ENTRY_CONF_CHANGE_V2 entries call
//      apply_conf_change() (an empty ConfChangeV2 leaves a joint configuration;
//      a leader proposes it by itself when the configuration says auto_leave).
//      rd.read_states: a read with request_ctx may be served once the state
//      machine has applied read_state.index.
//   4. Call advance(rd).
// A crash may happen anywhere: on restart, create the RawNode from the same
// Storage, with Config::applied set to the last applied index.
//
// Thread safety: none. Ownership: the RawNode borrows the Storage, which must
// outlive it.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "raft/raft.h"

namespace rdb::raft {

struct Ready {
  std::optional<SoftState> soft_state;  // set when leader or role changed
  std::optional<HardState> hard_state;  // set when it must be persisted
  std::vector<ReadState> read_states;
  std::vector<Entry> entries;  // to persist (the application may move them out)
  // The (index, term) of entries.back(), 0 when there are none: advance() reads these,
  // not `entries`, so the application may move the entries into its storage.
  std::uint64_t last_entry_index = 0;
  std::uint64_t last_entry_term = 0;
  std::optional<Snapshot> snapshot;      // to persist and apply
  std::vector<Entry> committed_entries;  // to apply
  std::vector<Message> messages;         // to send after persisting
  bool must_sync = false;                // entries or term/vote changed: fsync before sending
};

class RawNode {
 public:
  static Result<std::unique_ptr<RawNode>> create(const Config& config, const Storage& storage);

  void tick() { raft_->tick(); }
  // Starts an election now (ignored by leaders and non-voters).
  Status campaign();
  Status propose(std::string data);
  // Proposes several entries in one step: one append round for all of them.
  Status propose_batch(std::vector<std::string> data);
  Status propose_conf_change(const ConfChange& cc);
  // Applies a committed conf change; returns the new configuration.
  // Joint consensus: several changes in one step (see Configuration).
  Status propose_conf_change(const raftpb::ConfChangeV2& cc);
  ConfState apply_conf_change(const ConfChange& cc) { return raft_->apply_conf_change(cc); }
  Result<ConfState> apply_conf_change(const raftpb::ConfChangeV2& cc) { return raft_->apply_conf_change(cc); }
  // Validates a message from a peer (check_message_shape, then Raft::check_remote);
  // nullopt when it may be stepped.
  std::optional<Rejection> check(const Message& m) const;
  // A message from a peer. Anything check() rejects is refused with
  // INVALID_ARGUMENT naming the reason, and leaves the node untouched.
  Status step(Message m);
  // Asks for a linearizable read point; the answer comes as a ReadState with request_ctx.
  Status read_index(std::string request_ctx);
  Status transfer_leader(std::uint64_t transferee);
  void report_unreachable(std::uint64_t id);
  void report_snapshot(std::uint64_t id, bool succeeded);

  bool has_ready() const;
  Ready ready();
  void advance(const Ready& rd);

  const Raft& raft() const { return *raft_; }
  Raft& mutable_raft() { return *raft_; }

 private:
  explicit RawNode(std::unique_ptr<Raft> raft);

  std::unique_ptr<Raft> raft_;
  SoftState prev_soft_;
  HardState prev_hard_;
};

bool is_empty_hard_state(const HardState& hs);
bool hard_state_equal(const HardState& a, const HardState& b);

}  // namespace rdb::raft
