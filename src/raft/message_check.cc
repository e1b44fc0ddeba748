#include "raft/message_check.h"

#include <fmt/format.h>

namespace rdb::raft {
namespace {

Rejection reject(std::string_view reason, std::string detail) {
  return {reason, std::move(detail)};
}

bool is_read_index(raftpb::MessageType t) {
  return t == raftpb::MSG_READ_INDEX || t == raftpb::MSG_READ_INDEX_RESP;
}

// Forwarded requests travel with term 0: the receiver treats them as local.
bool may_have_zero_term(raftpb::MessageType t) {
  return t == raftpb::MSG_PROP || t == raftpb::MSG_READ_INDEX || t == raftpb::MSG_TRANSFER_LEADER;
}

std::optional<Rejection> check_entries(const raftpb::Message& m) {
  std::uint64_t prev_term = m.log_term();
  for (int i = 0; i < m.entries_size(); ++i) {
    const raftpb::Entry& e = m.entries(i);
    std::uint64_t want = m.index() + 1 + static_cast<std::uint64_t>(i);
    if (e.index() != want) {
      return reject("bad_entries", fmt::format("entry {} has index {}, expected {} (entries must follow index {})", i,
                                               e.index(), want, m.index()));
    }
    if (e.term() < prev_term || e.term() > m.term()) {
      return reject("bad_entries", fmt::format("entry {} has term {}: terms must not decrease from log term {} "
                                               "and not exceed the message term {}",
                                               e.index(), e.term(), m.log_term(), m.term()));
    }
    if (e.type() != raftpb::ENTRY_NORMAL && e.type() != raftpb::ENTRY_CONF_CHANGE &&
        e.type() != raftpb::ENTRY_CONF_CHANGE_V2) {
      return reject("bad_entries", fmt::format("entry {} has unknown type {}", e.index(), static_cast<int>(e.type())));
    }
    prev_term = e.term();
  }
  return std::nullopt;
}

std::optional<Rejection> check_snapshot(const raftpb::Message& m) {
  if (!m.has_snapshot()) {
    return reject("bad_snapshot", "MsgSnap without a snapshot");
  }
  const auto& meta = m.snapshot().metadata();
  if (meta.index() == 0 || meta.index() > kMaxIndex) {
    return reject("bad_snapshot", fmt::format("snapshot index {} is out of range [1, 2^62]", meta.index()));
  }
  if (meta.term() == 0 || meta.term() > m.term()) {
    return reject("bad_snapshot",
                  fmt::format("snapshot term {} is out of range [1, message term {}]", meta.term(), m.term()));
  }
  if (meta.conf_state().voters_size() == 0) {
    return reject("bad_snapshot", "snapshot configuration has no voters");
  }
  return std::nullopt;
}

}  // namespace

bool is_remote_message_type(raftpb::MessageType type) {
  switch (type) {
    case raftpb::MSG_PROP:  // forwarded by a follower to its leader
    case raftpb::MSG_APP:
    case raftpb::MSG_APP_RESP:
    case raftpb::MSG_VOTE:
    case raftpb::MSG_VOTE_RESP:
    case raftpb::MSG_SNAP:
    case raftpb::MSG_HEARTBEAT:
    case raftpb::MSG_HEARTBEAT_RESP:
    case raftpb::MSG_TRANSFER_LEADER:
    case raftpb::MSG_TIMEOUT_NOW:
    case raftpb::MSG_READ_INDEX:
    case raftpb::MSG_READ_INDEX_RESP:
    case raftpb::MSG_PRE_VOTE:
    case raftpb::MSG_PRE_VOTE_RESP:
      return true;
    default:
      return false;
  }
}

std::optional<Rejection> check_message_shape(const raftpb::Message& m) {
  const auto type = m.type();
  if (!is_remote_message_type(type)) {
    return reject("bad_type", fmt::format("message type {} is not accepted from a peer", static_cast<int>(type)));
  }
  // Forwarded requests keep their originator in `from`, which may be the receiver itself.
  if (m.from() == 0 || m.to() == 0 || (m.from() == m.to() && !may_have_zero_term(type))) {
    return reject("bad_peer", fmt::format("message from {} to {}: both must be set and differ", m.from(), m.to()));
  }
  if (m.term() > kMaxTerm || (m.term() == 0 && !may_have_zero_term(type))) {
    return reject("bad_term", fmt::format("term {} is out of range [1, 2^62]", m.term()));
  }
  if (m.log_term() > m.term() && type != raftpb::MSG_APP_RESP) {
    return reject("bad_term", fmt::format("log term {} is above the message term {}", m.log_term(), m.term()));
  }
  std::uint64_t room = kMaxIndex - static_cast<std::uint64_t>(m.entries_size());
  if (m.index() > room || m.commit() > kMaxIndex || m.reject_hint() > kMaxIndex) {
    return reject("bad_index",
                  fmt::format("index {} / commit {} / hint {} out of range", m.index(), m.commit(), m.reject_hint()));
  }
  if (type == raftpb::MSG_APP) {
    // Every entry has a term of at least 1, so only the empty log's position (0, 0)
    // has term 0; a term-0 probe elsewhere would "match" past the receiver's log.
    if ((m.index() == 0) != (m.log_term() == 0)) {
      return reject("bad_index", fmt::format("MsgApp after index {} with log term {}", m.index(), m.log_term()));
    }
    if (auto bad = check_entries(m)) {
      return bad;
    }
  } else if (type == raftpb::MSG_PROP) {
    if (m.entries_size() == 0) {
      return reject("bad_entries", "a forwarded proposal carries no entries");
    }
  } else if (is_read_index(type)) {
    if (m.entries_size() != 1) {
      return reject("bad_entries",
                    fmt::format("a ReadIndex message carries exactly one entry, this one {}", m.entries_size()));
    }
  } else if (m.entries_size() != 0) {
    return reject("bad_entries", fmt::format("message type {} carries no entries", static_cast<int>(type)));
  }
  if (type == raftpb::MSG_SNAP) {
    return check_snapshot(m);
  }
  if (m.has_snapshot()) {
    return reject("bad_snapshot", "only MsgSnap carries a snapshot");
  }
  return std::nullopt;
}

}  // namespace rdb::raft
