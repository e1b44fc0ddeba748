// Test helpers for the Raft core: an in-memory group whose messages are
// delivered synchronously until the group is quiet, with links that can be cut.
// Thread safety: none.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "raft/raw_node.h"

namespace rdb::raft::testing {

struct TestMember {
  std::unique_ptr<MemoryStorage> storage;
  std::unique_ptr<RawNode> node;
  std::vector<Entry> applied;  // committed entries applied, in order
  std::vector<ReadState> reads;
};

class TestGroup {
 public:
  // Voters `ids`, all starting from a snapshot at (index 1, term 1) holding that configuration.
  explicit TestGroup(const std::vector<std::uint64_t>& ids, Config base = default_config());
  static Config default_config();

  RawNode& node(std::uint64_t id) { return *members_.at(id).node; }
  const Raft& raft(std::uint64_t id) { return members_.at(id).node->raft(); }
  TestMember& member(std::uint64_t id) { return members_.at(id); }

  // Adds a node with empty storage (to be added by a conf change).
  void add_empty_member(std::uint64_t id);
  // Recreates a node's RawNode from its storage (a crash and restart).
  void restart(std::uint64_t id);

  // Handles Ready for every node and delivers messages until nothing moves.
  void settle();
  // Like settle(), but stops as soon as `done` holds (checked between steps).
  void settle_until(const std::function<bool()>& done);
  void campaign(std::uint64_t id);
  Status propose(std::uint64_t id, const std::string& data);
  void tick(std::uint64_t id, int n = 1);
  void tick_all(int n = 1);

  void isolate(std::uint64_t id);
  void cut(std::uint64_t from, std::uint64_t to) { cut_.insert({from, to}); }
  void heal() { cut_.clear(); }
  // Messages of this type are dropped (for scenarios that need a stuck step).
  void drop_type(raftpb::MessageType t) { dropped_types_.insert(t); }
  void clear_drops() { dropped_types_.clear(); }

  // Every message sent so far, for assertions on what went over the wire.
  const std::vector<Message>& sent() const { return sent_; }
  void clear_sent() { sent_.clear(); }
  std::uint64_t leader() const;

 private:
  void handle_ready(std::uint64_t id, TestMember& m);
  Config config_for(std::uint64_t id, std::uint64_t applied) const;

  Config base_;
  std::map<std::uint64_t, TestMember> members_;
  std::deque<Message> queue_;
  std::set<std::pair<std::uint64_t, std::uint64_t>> cut_;
  std::set<raftpb::MessageType> dropped_types_;
  std::vector<Message> sent_;
};

Entry make_entry(std::uint64_t index, std::uint64_t term, const std::string& data = "");

}  // namespace rdb::raft::testing
