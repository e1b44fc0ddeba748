#include "server/raft_message_check.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace rdb {
namespace {

raft::Rejection reject(std::string_view reason, std::string detail) {
  return {reason, std::move(detail)};
}

bool holds(const metapb::Region& region, const metapb::Peer& peer) {
  for (const auto& p : region.peers()) {
    if (p.id() == peer.id() && p.store_id() == peer.store_id()) {
      return true;
    }
  }
  return false;
}

}  // namespace

std::optional<raft::Rejection> check_envelope(const raftsvc::RaftMessage& msg, std::uint64_t store_id) {
  if (msg.region_id() == 0) {
    return reject("bad_region", "message without a region id");
  }
  if (msg.to_peer().store_id() != store_id) {
    return reject("misaddressed",
                  fmt::format("message for store {} arrived at store {}", msg.to_peer().store_id(), store_id));
  }
  const auto& m = msg.message();
  if (m.type() == raftpb::MSG_PROP) {
    // Stores propose only on the leader; a proposal from the network would let any
    // sender write (or change membership) without going through a client's checks.
    return reject("bad_type", "stores do not forward proposals");
  }
  if (msg.to_peer().id() == 0 || msg.to_peer().id() != m.to() || msg.from_peer().id() != m.from()) {
    return reject("bad_peer", fmt::format("envelope peers {} -> {} differ from the Raft message's {} -> {}",
                                          msg.from_peer().id(), msg.to_peer().id(), m.from(), m.to()));
  }
  if (msg.from_peer().store_id() == 0 || msg.from_peer().store_id() == store_id) {
    return reject("bad_peer", fmt::format("message from store {}: a peer of another store must send it",
                                          msg.from_peer().store_id()));
  }
  if (msg.has_region() && msg.region().id() != msg.region_id()) {
    return reject("bad_region",
                  fmt::format("message for region {} carries region {}", msg.region_id(), msg.region().id()));
  }
  return std::nullopt;
}

std::optional<raft::Rejection> check_signal(const raftsvc::RaftMessage& msg, std::uint64_t store_id) {
  if (msg.has_message()) {
    return reject("bad_signal", "a tombstone, hibernation signal or store heartbeat carries no Raft message");
  }
  if (msg.to_peer().store_id() != store_id) {
    return reject("misaddressed",
                  fmt::format("signal for store {} arrived at store {}", msg.to_peer().store_id(), store_id));
  }
  if (msg.from_peer().store_id() == 0 || msg.from_peer().store_id() == store_id) {
    return reject("bad_peer",
                  fmt::format("signal from store {}: another store must send it", msg.from_peer().store_id()));
  }
  int kinds = int{msg.is_tombstone()} + int{msg.has_hibernate()} + int{msg.store_heartbeat()};
  if (kinds != 1) {
    return reject("bad_signal", "a signal is exactly one of tombstone, hibernation or store heartbeat");
  }
  if (msg.store_heartbeat()) {
    if (msg.region_id() != 0 || msg.has_region()) {
      return reject("bad_signal", "a store heartbeat names no region");
    }
    return std::nullopt;
  }
  if (msg.region_id() == 0) {
    return reject("bad_region", "signal without a region id");
  }
  if (msg.to_peer().id() == 0 || msg.from_peer().id() == 0) {
    return reject("bad_peer", "a region signal names both peers");
  }
  if (msg.is_tombstone() && (!msg.has_region() || msg.region().id() != msg.region_id())) {
    return reject("bad_tombstone", "a tombstone must carry its region");
  }
  if (msg.has_region() && msg.region().id() != msg.region_id()) {
    return reject("bad_region",
                  fmt::format("signal for region {} carries region {}", msg.region_id(), msg.region().id()));
  }
  if (msg.has_hibernate() && msg.hibernate().term() == 0) {
    return reject("bad_signal", "a hibernation signal names the leader's term");
  }
  return std::nullopt;
}

std::optional<raft::Rejection> check_new_peer(const raftsvc::RaftMessage& msg) {
  auto t = msg.message().type();
  if (t != raftpb::MSG_APP && t != raftpb::MSG_HEARTBEAT && t != raftpb::MSG_SNAP) {
    return reject("unknown_region", fmt::format("region {} is not on this store", msg.region_id()));
  }
  if (!msg.has_region()) {
    return reject("unknown_region",
                  fmt::format("region {} is not on this store and the message carries no metadata", msg.region_id()));
  }
  const metapb::Region& r = msg.region();
  if (!holds(r, msg.to_peer()) || !holds(r, msg.from_peer())) {
    return reject("bad_region", fmt::format("region {} does not contain peers {} and {}", r.id(), msg.from_peer().id(),
                                            msg.to_peer().id()));
  }
  if (!r.end_key().empty() && r.start_key() >= r.end_key()) {
    return reject("bad_region", fmt::format("region {} has an empty range", r.id()));
  }
  return std::nullopt;
}

DroppedMessages::DroppedMessages(MetricsRegistry& metrics, int log_per_second)
    : metrics_(metrics), log_per_second_(log_per_second) {}

Counter& DroppedMessages::counter(std::string_view reason) const {
  return metrics_.counter("rdb_raft_messages_dropped", "Raft messages from peers refused as invalid, by reason",
                          fmt::format("reason=\"{}\"", reason));
}

void DroppedMessages::drop(std::uint64_t region_id, const raft::Rejection& why) {
  counter(why.reason).inc();
  std::uint64_t suppressed = 0;
  {
    std::lock_guard lock(mu_);
    ++total_;
    auto now = std::chrono::steady_clock::now();
    if (now - window_start_ >= std::chrono::seconds(1)) {
      window_start_ = now;
      logged_in_window_ = 0;
    }
    if (logged_in_window_ >= log_per_second_) {
      ++suppressed_;
      return;
    }
    ++logged_in_window_;
    suppressed = suppressed_;
    suppressed_ = 0;
  }
  if (suppressed > 0) {
    spdlog::warn("region {}: dropped a Raft message ({}): {} ({} more dropped without a log line)", region_id,
                 why.reason, why.detail, suppressed);
  } else {
    spdlog::warn("region {}: dropped a Raft message ({}): {}", region_id, why.reason, why.detail);
  }
}

std::uint64_t DroppedMessages::total() const {
  std::lock_guard lock(mu_);
  return total_;
}

std::uint64_t DroppedMessages::count(std::string_view reason) const {
  return counter(reason).value();
}

}  // namespace rdb
