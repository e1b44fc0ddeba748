#include "raft_fuzz.h"

#include <fmt/format.h>

#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <random>
#include <stdexcept>
#include <vector>

#include "raft/raw_node.h"

namespace rdb::raft::sim {
namespace {

struct Broken : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct FuzzNode {
  std::uint64_t id = 0;
  MemoryStorage storage;
  std::unique_ptr<RawNode> node;
};

class Fuzz {
 public:
  explicit Fuzz(const FuzzOptions& o) : o_(o), rng_(o.seed) {}

  FuzzResult run() {
    try {
      bootstrap();
      for (step_ = 0; step_ < o_.steps; ++step_) {
        act();
        drain();
        check_invariants();
      }
    } catch (const Broken& b) {
      fail(b.what());
    } catch (const std::exception& e) {
      fail(fmt::format("the Raft core threw: {}", e.what()));
    }
    for (auto& [id, n] : nodes_) {
      result_.committed = std::max(result_.committed, n->node ? n->node->raft().log().committed() : 0);
    }
    return result_;
  }

 private:
  void fail(std::string why) {
    result_.ok = false;
    result_.violation = std::move(why);
    result_.step = step_;
  }

  double uniform() { return std::uniform_real_distribution<double>(0, 1)(rng_); }
  std::uint64_t pick(std::uint64_t n) { return std::uniform_int_distribution<std::uint64_t>(0, n - 1)(rng_); }
  FuzzNode& random_node() { return *nodes_[1 + pick(nodes_.size())]; }

  void bootstrap() {
    Snapshot snap;
    snap.mutable_metadata()->set_index(1);
    snap.mutable_metadata()->set_term(1);
    for (int i = 1; i <= o_.nodes; ++i) {
      snap.mutable_metadata()->mutable_conf_state()->add_voters(static_cast<std::uint64_t>(i));
    }
    for (int i = 1; i <= o_.nodes; ++i) {
      auto n = std::make_unique<FuzzNode>();
      n->id = static_cast<std::uint64_t>(i);
      (void)n->storage.apply_snapshot(snap);
      Config c;
      c.id = n->id;
      c.election_tick = 10;
      c.heartbeat_tick = 1;
      c.applied = 1;
      c.max_inflight_msgs = 16;
      c.seed = o_.seed * 7919 + n->id;
      auto node = RawNode::create(c, n->storage);
      if (!node.is_ok()) {
        throw Broken(fmt::format("node {} cannot start: {}", n->id, node.status().to_string()));
      }
      n->node = std::move(node).value();
      nodes_[n->id] = std::move(n);
    }
  }

  void act() {
    double r = uniform();
    if (r < o_.hostile) {
      inject();
    } else if (r < o_.hostile + 0.3) {
      for (auto& [id, n] : nodes_) {
        n->node->tick();
      }
    } else if (r < o_.hostile + 0.4) {
      (void)random_node().node->propose(fmt::format("p{}", step_));
    } else if (r < o_.hostile + 0.45) {
      (void)random_node().node->read_index(fmt::format("r{}", step_));
    } else {
      for (int i = 0; i < 4 && !network_.empty(); ++i) {
        std::size_t j = pick(network_.size());
        Message m = std::move(network_[j]);
        network_.erase(network_.begin() + static_cast<std::ptrdiff_t>(j));
        auto it = nodes_.find(m.to());
        if (it != nodes_.end()) {
          (void)it->second->node->step(std::move(m));
        }
      }
    }
  }

  // ---- the attacker

  std::uint64_t interesting(std::uint64_t near) {
    switch (pick(10)) {
      case 0:
        return 0;
      case 1:
        return 1;
      case 2:
        return near;
      case 3:
        return near + 1;
      case 4:
        return near > 0 ? near - 1 : 0;
      case 5:
        return near + 1 + pick(100);
      case 6:
        return kMaxTerm;
      case 7:
        return kMaxTerm + 1;
      case 8:
        return ~std::uint64_t{0};
      default:
        return rng_();
    }
  }

  Entry random_entry(std::uint64_t near_index, std::uint64_t near_term) {
    Entry e;
    e.set_index(interesting(near_index));
    e.set_term(interesting(near_term));
    e.set_type(static_cast<raftpb::EntryType>(pick(3)));
    if (e.type() == raftpb::ENTRY_CONF_CHANGE && uniform() < 0.5) {
      ConfChange cc;
      cc.set_type(static_cast<raftpb::ConfChangeType>(pick(4)));
      cc.set_node_id(1 + pick(6));
      e.set_data(cc.SerializeAsString());
    } else {
      e.set_data(fmt::format("x{}", rng_() % 1000));
    }
    return e;
  }

  void mutate_field(Message& m, const FuzzNode& target) {
    const Raft& r = target.node->raft();
    std::uint64_t last = r.log().last_index();
    switch (pick(13)) {
      case 0:
        m.set_type(static_cast<raftpb::MessageType>(pick(21)));
        break;
      case 1:
        m.set_term(interesting(r.term()));
        break;
      case 2:
        m.set_log_term(interesting(r.term()));
        break;
      case 3:
        m.set_index(interesting(last));
        break;
      case 4:
        m.set_commit(interesting(last));
        break;
      case 5:
        m.set_from(interesting(1 + pick(3)) % 8);
        break;
      case 6:
        m.set_to(interesting(target.id) % 8);
        break;
      case 7:
        m.set_reject(!m.reject());
        m.set_reject_hint(interesting(last));
        break;
      case 8:
        m.clear_entries();
        break;
      case 9:
        *m.add_entries() = random_entry(last, r.term());
        break;
      case 10:
        if (m.entries_size() > 0) {
          Entry& e = *m.mutable_entries(static_cast<int>(pick(static_cast<std::uint64_t>(m.entries_size()))));
          e.set_index(interesting(e.index()));
          e.set_term(interesting(e.term()));
        }
        break;
      case 11: {
        auto* meta = m.mutable_snapshot()->mutable_metadata();
        meta->set_index(interesting(last));
        meta->set_term(interesting(r.term()));
        if (uniform() < 0.5) {
          meta->mutable_conf_state()->add_voters(interesting(target.id) % 8);
        }
        break;
      }
      default:
        m.set_context(std::string(pick(16), static_cast<char>('a' + pick(26))));
        break;
    }
  }

  void inject() {
    FuzzNode& target = random_node();
    Message m;
    double kind = uniform();
    if (kind < 0.25 && !history_.empty()) {
      m = history_[pick(history_.size())];  // stale or duplicate
    } else if (kind < 0.35 && !history_.empty()) {
      m = history_[pick(history_.size())];  // misaddressed: delivered to a node it is not for
    } else if (kind < 0.85 && !history_.empty()) {
      m = history_[pick(history_.size())];
      m.set_to(target.id);
      for (std::uint64_t i = 0, n = 1 + pick(3); i < n; ++i) {
        mutate_field(m, target);
      }
    } else {
      m.set_to(target.id);
      m.set_from(1 + pick(4));
      for (int i = 0; i < 6; ++i) {
        mutate_field(m, target);
      }
    }
    ++result_.injected;
    if (target.node->check(m)) {
      ++result_.rejected;
    } else if (std::getenv("RDB_FUZZ_TRACE") != nullptr) {
      fmt::print("step {} node {} (term {} last {} commit {}) accepts {}\n", step_, target.id,
                 target.node->raft().term(), target.node->raft().log().last_index(),
                 target.node->raft().log().committed(), m.ShortDebugString());
    }
    Status s = o_.bypass_validation ? target.node->mutable_raft().step(std::move(m)) : target.node->step(std::move(m));
    (void)s;
  }

  // ---- Ready handling

  void drain() {
    for (int round = 0; round < 50; ++round) {
      bool any = false;
      for (auto& [id, n] : nodes_) {
        if (!n->node->has_ready()) {
          continue;
        }
        any = true;
        handle_ready(*n);
      }
      if (!any) {
        return;
      }
    }
  }

  void handle_ready(FuzzNode& n) {
    Ready rd = n.node->ready();
    if (rd.soft_state && rd.soft_state->role == StateRole::kLeader) {
      ++result_.leaders;
    }
    if (rd.snapshot) {
      if (Status s = n.storage.apply_snapshot(*rd.snapshot); !s.is_ok()) {
        throw Broken(fmt::format("node {} was handed a snapshot it cannot persist: {}", n.id, s.to_string()));
      }
    }
    if (Status s = n.storage.append(rd.entries); !s.is_ok()) {
      throw Broken(fmt::format("node {} was handed entries it cannot persist: {}", n.id, s.to_string()));
    }
    if (rd.hard_state) {
      n.storage.set_hard_state(*rd.hard_state);
    }
    for (auto& m : rd.messages) {
      if (history_.size() >= 256) {
        history_.pop_front();
      }
      history_.push_back(m);
      network_.push_back(std::move(m));
    }
    for (const auto& e : rd.committed_entries) {
      if (e.type() == raftpb::ENTRY_CONF_CHANGE) {
        ConfChange cc;
        if (cc.ParseFromString(e.data())) {
          n.storage.set_conf_state(n.node->apply_conf_change(cc));
        }
      }
    }
    n.node->advance(rd);
  }

  void check_invariants() {
    for (auto& [id, n] : nodes_) {
      const Raft& r = n->node->raft();
      const RaftLog& log = r.log();
      if (log.committed() > log.last_index()) {
        throw Broken(fmt::format("node {}: commit {} beyond the last index {}", id, log.committed(), log.last_index()));
      }
      if (log.applied() > log.committed()) {
        throw Broken(fmt::format("node {}: applied {} beyond commit {}", id, log.applied(), log.committed()));
      }
      if (r.term() > kMaxTerm + static_cast<std::uint64_t>(o_.steps)) {
        throw Broken(fmt::format("node {}: term {} escaped the bound", id, r.term()));
      }
    }
  }

  FuzzOptions o_;
  std::mt19937_64 rng_;
  std::map<std::uint64_t, std::unique_ptr<FuzzNode>> nodes_;
  std::vector<Message> network_;
  std::deque<Message> history_;
  FuzzResult result_;
  int step_ = 0;
};

}  // namespace

FuzzResult run_message_fuzz(const FuzzOptions& options) {
  return Fuzz(options).run();
}

std::string fuzz_replay_command(const FuzzOptions& o) {
  return fmt::format("build/bin/rdb-raft-sim --fuzz --seed {} --seeds 1 --steps {}", o.seed, o.steps);
}

}  // namespace rdb::raft::sim
