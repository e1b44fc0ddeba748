// Validation of Raft messages that arrive from other nodes.
//
// Nothing a peer sends is trusted: before a message reaches the Raft state
// machine it must pass check_message_shape() (fields consistent with the
// message type, whatever the receiver's state) and Raft::check_remote() (fields
// consistent with the receiver's log). A message that fails is dropped by the
// caller, never stepped; Rejection::reason is a short stable label for metrics
// (`rdb_raft_messages_dropped{reason=...}`), `detail` says what was wrong.
//
// What validation cannot do: tell a well-formed message from a legitimate one.
// A peer that forges plausible values (a commit index it has no right to) is
// Byzantine, which Raft does not tolerate; authentication (TLS) keeps such
// peers out.
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "raftpb.pb.h"

namespace rdb::raft {

// Terms and indexes above these bounds are refused. They leave room for 2^62
// more elections or entries before anything could wrap, so a peer that sends
// 2^64-1 cannot make the receiver's next campaign overflow.
inline constexpr std::uint64_t kMaxTerm = std::uint64_t{1} << 62;
inline constexpr std::uint64_t kMaxIndex = std::uint64_t{1} << 62;
// A message may lead the receiver's term by at most this much (Raft::check_remote).
// Honest terms grow by one per election, so no correct peer is 2^32 elections ahead;
// a forged term near the bound would otherwise strand the group there, unable to
// campaign once more.
inline constexpr std::uint64_t kMaxTermJump = std::uint64_t{1} << 32;

struct Rejection {
  std::string_view reason;  // static label: bad_type, bad_peer, bad_term, bad_index, bad_entries, ...
  std::string detail;
};

// True for the message types a peer may send (MsgApp, votes, heartbeats, ...);
// false for local-only types (MsgHup, MsgBeat, MsgUnreachable, ...) and unknown values.
// MsgProp counts as remote (a follower forwards proposals); a store refuses it.
bool is_remote_message_type(raftpb::MessageType type);

// Checks what can be checked without the receiver's state: the type comes from
// the network, sender and receiver are set and differ, terms and indexes are
// within bounds, a MsgApp's entries are contiguous after `index` with terms
// between `log_term` and the message's term, ReadIndex messages carry exactly
// one entry and other types none, and a snapshot's metadata is complete.
std::optional<Rejection> check_message_shape(const raftpb::Message& m);

}  // namespace rdb::raft
