#include "raft/raft_test_util.h"

#include <stdexcept>

namespace rdb::raft::testing {

Entry make_entry(std::uint64_t index, std::uint64_t term, const std::string& data) {
  Entry e;
  e.set_index(index);
  e.set_term(term);
  e.set_data(data);
  return e;
}

Config TestGroup::default_config() {
  Config c;
  c.election_tick = 10;
  c.heartbeat_tick = 1;
  c.pre_vote = false;
  c.check_quorum = false;
  c.seed = 42;
  return c;
}

Config TestGroup::config_for(std::uint64_t id, std::uint64_t applied) const {
  Config c = base_;
  c.id = id;
  c.applied = applied;
  return c;
}

TestGroup::TestGroup(const std::vector<std::uint64_t>& ids, Config base) : base_(base) {
  Snapshot snap;
  snap.mutable_metadata()->set_index(1);
  snap.mutable_metadata()->set_term(1);
  for (auto id : ids) {
    snap.mutable_metadata()->mutable_conf_state()->add_voters(id);
  }
  for (auto id : ids) {
    TestMember m;
    m.storage = std::make_unique<MemoryStorage>();
    (void)m.storage->apply_snapshot(snap);
    auto node = RawNode::create(config_for(id, 1), *m.storage);
    if (!node.is_ok()) {
      throw std::runtime_error(node.status().to_string());
    }
    m.node = std::move(node).value();
    members_.emplace(id, std::move(m));
  }
}

void TestGroup::add_empty_member(std::uint64_t id) {
  TestMember m;
  m.storage = std::make_unique<MemoryStorage>();
  m.node = RawNode::create(config_for(id, 0), *m.storage).value();
  members_.emplace(id, std::move(m));
}

void TestGroup::restart(std::uint64_t id) {
  TestMember& m = members_.at(id);
  std::uint64_t applied = m.applied.empty() ? 1 : m.applied.back().index();
  m.node.reset();
  m.node = RawNode::create(config_for(id, applied), *m.storage).value();
}

void TestGroup::handle_ready(std::uint64_t id, TestMember& m) {
  Ready rd = m.node->ready();
  if (rd.snapshot) {
    (void)m.storage->apply_snapshot(*rd.snapshot);
  }
  (void)m.storage->append(std::move(rd.entries));
  if (rd.hard_state) {
    m.storage->set_hard_state(*rd.hard_state);
  }
  for (auto& msg : rd.messages) {
    sent_.push_back(msg);
    queue_.push_back(std::move(msg));
  }
  for (const auto& e : rd.committed_entries) {
    m.applied.push_back(e);
    if (e.type() == raftpb::ENTRY_CONF_CHANGE) {
      ConfChange cc;
      cc.ParseFromString(e.data());
      m.storage->set_conf_state(m.node->apply_conf_change(cc));
    } else if (e.type() == raftpb::ENTRY_CONF_CHANGE_V2) {
      raftpb::ConfChangeV2 cc;
      cc.ParseFromString(e.data());
      if (auto cs = m.node->apply_conf_change(cc); cs.is_ok()) {
        m.storage->set_conf_state(*cs);
      }
    }
  }
  m.reads.insert(m.reads.end(), rd.read_states.begin(), rd.read_states.end());
  m.node->advance(rd);
  (void)id;
}

void TestGroup::settle() {
  settle_until(nullptr);
}

void TestGroup::settle_until(const std::function<bool()>& done) {
  for (int guard = 0; guard < 100000; ++guard) {
    if (done && done()) {
      return;
    }
    bool any = false;
    for (auto& [id, m] : members_) {
      if (m.node && m.node->has_ready()) {
        handle_ready(id, m);
        any = true;
      }
    }
    if (queue_.empty()) {
      if (!any) {
        return;
      }
      continue;
    }
    Message msg = std::move(queue_.front());
    queue_.pop_front();
    if (cut_.count({msg.from(), msg.to()}) != 0 || dropped_types_.count(msg.type()) != 0) {
      continue;
    }
    auto it = members_.find(msg.to());
    if (it == members_.end() || !it->second.node) {
      continue;
    }
    (void)it->second.node->step(msg);
    if (msg.type() == raftpb::MSG_SNAP) {
      auto from = members_.find(msg.from());
      if (from != members_.end()) {
        from->second.node->report_snapshot(msg.to(), true);
      }
    }
  }
  throw std::runtime_error("TestGroup::settle did not converge");
}

void TestGroup::campaign(std::uint64_t id) {
  (void)node(id).campaign();
  settle();
}

Status TestGroup::propose(std::uint64_t id, const std::string& data) {
  Status s = node(id).propose(data);
  settle();
  return s;
}

void TestGroup::tick(std::uint64_t id, int n) {
  for (int i = 0; i < n; ++i) {
    node(id).tick();
  }
  settle();
}

void TestGroup::tick_all(int n) {
  for (int i = 0; i < n; ++i) {
    for (auto& [id, m] : members_) {
      m.node->tick();
    }
    settle();
  }
}

void TestGroup::isolate(std::uint64_t id) {
  for (auto& [other, m] : members_) {
    if (other != id) {
      cut(id, other);
      cut(other, id);
    }
  }
}

std::uint64_t TestGroup::leader() const {
  std::uint64_t best = kNone;
  std::uint64_t best_term = 0;
  for (const auto& [id, m] : members_) {
    if (m.node->raft().role() == StateRole::kLeader && m.node->raft().term() >= best_term) {
      best = id;
      best_term = m.node->raft().term();
    }
  }
  return best;
}

}  // namespace rdb::raft::testing
