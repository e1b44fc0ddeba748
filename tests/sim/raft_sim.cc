#include "raft_sim.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstdlib>
#include <deque>
#include <stdexcept>

namespace rdb::raft::sim {
namespace {

struct Violation : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::string encode_sm(const std::vector<std::string>& applied) {
  std::string out;
  for (const auto& s : applied) {
    out += fmt::format("{}:", s.size());
    out += s;
  }
  return out;
}

std::vector<std::string> decode_sm(const std::string& data) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos < data.size()) {
    auto colon = data.find(':', pos);
    std::size_t n = std::stoul(data.substr(pos, colon - pos));
    out.push_back(data.substr(colon + 1, n));
    pos = colon + 1 + n;
  }
  return out;
}

struct SimNode {
  std::uint64_t id = 0;
  MemoryStorage storage;                   // what survives a crash
  std::vector<std::string> state_machine;  // applied entries' data, index i at [i-1]; durable
  std::uint64_t applied = 0;               // durable, written with the state machine
  // The configuration from each applied index that changed it on; durable. A
  // snapshot at index i must carry the configuration in force at i, not a later one.
  std::map<std::uint64_t, ConfState> confs;
  std::unique_ptr<RawNode> node;  // null while crashed
  // PD's lease rule (volatile: lost in a crash).
  bool leading = false;
  int serve_from = 0;
  int lease_until = -1;
  std::map<std::string, int> lease_rounds;  // ReadIndex context -> step sent

  const ConfState& conf_at(std::uint64_t index) const { return std::prev(confs.upper_bound(index))->second; }
};

struct InFlight {
  int deliver_at = 0;
  Message msg;
};

class Simulation {
 public:
  explicit Simulation(const SimOptions& o) : o_(o), rng_(o.seed) {}

  SimResult run() {
    try {
      bootstrap();
      for (step_ = 0; step_ < o_.steps; ++step_) {
        random_action();
        drain_all();
        check_lease();
      }
      liveness();
    } catch (const Violation& v) {
      result_.ok = false;
      result_.violation = v.what();
      result_.step = step_;
    } catch (const std::exception& e) {
      // An internal invariant of the core fired (its equivalent of a panic).
      result_.ok = false;
      result_.violation = fmt::format("raft core threw: {}", e.what());
      result_.step = step_;
    }
    result_.committed = committed_.size();
    if (std::getenv("RDB_SIM_LEASE_TRACE") != nullptr) {
      fmt::print("lease rounds: started {} confirmed {} unknown {}\n", lease_started_, lease_confirmed_,
                 lease_unknown_);
    }
    return result_;
  }

 private:
  // ---- setup

  void bootstrap() {
    ConfState cs;
    for (int i = 1; i <= o_.voters; ++i) {
      cs.add_voters(static_cast<std::uint64_t>(i));
    }
    next_spare_ = static_cast<std::uint64_t>(o_.voters) + 1;
    // Every initial member starts from the same snapshot at index 1 holding the configuration.
    Snapshot snap;
    snap.mutable_metadata()->set_index(1);
    snap.mutable_metadata()->set_term(1);
    *snap.mutable_metadata()->mutable_conf_state() = cs;
    snap.set_data(encode_sm({""}));
    committed_[1] = {1, "", 1};
    for (int i = 1; i <= o_.voters; ++i) {
      auto n = std::make_unique<SimNode>();
      n->id = static_cast<std::uint64_t>(i);
      (void)n->storage.apply_snapshot(snap);
      n->state_machine = {""};
      n->applied = 1;
      n->confs = {{1, cs}};
      nodes_[n->id] = std::move(n);
      start(*nodes_[static_cast<std::uint64_t>(i)]);
    }
  }

  Config config_for(const SimNode& n) const {
    Config c;
    c.id = n.id;
    c.election_tick = 10;
    c.heartbeat_tick = 1;
    c.applied = n.applied;
    // Some seeds send one entry per append, which opens the windows where a leader
    // hears about old-term entries before its own (needed to expose commit-rule bugs).
    c.max_size_per_msg = o_.seed % 3 == 0 ? 1 : 4096;
    c.max_inflight_msgs = 16;
    c.check_quorum = true;
    c.pre_vote = o_.pre_vote;
    c.lazy_commit_broadcast = o_.seed % 2 == 0;  // as the stores run it, on half the seeds
    c.seed = o_.seed * 1000003 + n.id * 7919 + restarts_;
    c.bugs = o_.bugs;
    return c;
  }

  void start(SimNode& n) {
    ++restarts_;
    // A crash after persisting a snapshot but before applying it: apply it now.
    auto snap = n.storage.snapshot();
    if (snap.is_ok() && snap->metadata().index() > n.applied) {
      n.state_machine = decode_sm(snap->data());
      n.applied = snap->metadata().index();
      n.confs = {{n.applied, snap->metadata().conf_state()}};
    }
    auto node = RawNode::create(config_for(n), n.storage);
    if (!node.is_ok()) {
      throw Violation(fmt::format("node {} cannot restart: {}", n.id, node.status().to_string()));
    }
    n.node = std::move(node).value();
  }

  void crash(SimNode& n) {
    n.node.reset();
    n.leading = false;
    n.lease_until = -1;
    n.lease_rounds.clear();
    ++result_.crashes;
  }

  // ---- actions

  double uniform() { return std::uniform_real_distribution<double>(0, 1)(rng_); }
  std::uint64_t pick(std::uint64_t n) { return std::uniform_int_distribution<std::uint64_t>(0, n - 1)(rng_); }

  std::vector<SimNode*> up_nodes() {
    std::vector<SimNode*> out;
    for (auto& [id, n] : nodes_) {
      if (n->node) {
        out.push_back(n.get());
      }
    }
    return out;
  }

  SimNode* random_up() {
    auto up = up_nodes();
    return up.empty() ? nullptr : up[pick(up.size())];
  }

  SimNode* leader() {
    SimNode* best = nullptr;
    for (auto* n : up_nodes()) {
      if (n->node->raft().role() == StateRole::kLeader &&
          (best == nullptr || n->node->raft().term() > best->node->raft().term())) {
        best = n;
      }
    }
    return best;
  }

  void random_action() {
    double r = uniform();
    if (r < 0.35) {
      deliver_some();
    } else if (r < 0.65) {
      tick_all(0.1);
    } else if (r < 0.77) {
      if (auto* n = random_up()) {
        (void)n->node->propose(fmt::format("s{}-p{}", o_.seed, proposals_++));
        ++result_.proposals;
      }
    } else if (r < 0.82) {
      if (o_.reads) {
        read_index();
      }
    } else if (r < 0.86) {
      if (o_.crashes) {
        crash_or_restart();
      }
    } else if (r < 0.90) {
      if (o_.partitions) {
        partition_or_heal();
      }
    } else if (r < 0.93) {
      if (o_.compaction) {
        compact();
      }
    } else if (r < 0.95) {
      if (o_.membership) {
        change_membership();
      }
    } else if (r < 0.96) {
      if (auto* l = leader()) {
        auto voters = l->node->raft().conf_state().voters();
        if (!voters.empty()) {
          (void)l->node->transfer_leader(voters[static_cast<int>(pick(static_cast<std::uint64_t>(voters.size())))]);
        }
      }
    } else {
      deliver_some();
    }
  }

  void tick_all(double skip) {
    for (auto* n : up_nodes()) {
      if (uniform() >= skip) {
        n->node->tick();
        if (o_.lease_steps > 0 && n->node->raft().role() == StateRole::kLeader) {
          std::string ctx = fmt::format("lease{}", lease_rounds_++);
          if (n->node->read_index(ctx).is_ok()) {
            n->lease_rounds[ctx] = step_;
            ++lease_started_;
          }
        }
      }
    }
  }

  void deliver_some() {
    std::size_t count = 1 + pick(4);
    for (std::size_t i = 0; i < count && !network_.empty(); ++i) {
      // Any message whose delay has passed may go next: that is the reordering.
      std::vector<std::size_t> ready;
      for (std::size_t j = 0; j < network_.size(); ++j) {
        if (network_[j].deliver_at <= step_) {
          ready.push_back(j);
        }
      }
      if (ready.empty()) {
        return;
      }
      std::size_t j = ready[pick(ready.size())];
      Message m = std::move(network_[j].msg);
      network_.erase(network_.begin() + static_cast<std::ptrdiff_t>(j));
      deliver(m);
    }
  }

  void deliver(const Message& m) {
    auto it = nodes_.find(m.to());
    bool up = it != nodes_.end() && it->second->node;
    if (up) {
      // Every message here comes from a correct node: validation must never refuse one.
      if (auto bad = it->second->node->check(m)) {
        throw Violation(fmt::format("a correct node's message was rejected ({}: {}): {}", bad->reason, bad->detail,
                                    m.ShortDebugString()));
      }
      (void)it->second->node->step(m);
    }
    if (m.type() == raftpb::MSG_SNAP) {
      snapshot_reports_.push_back({m.from(), m.to(), up});
    }
  }

  void read_index() {
    auto* n = random_up();
    if (n == nullptr) {
      return;
    }
    std::string ctx = fmt::format("r{}", reads_++);
    // A read asked now must observe every write committed before now.
    read_floor_[ctx] = max_committed_;
    (void)n->node->read_index(ctx);
  }

  void crash_or_restart() {
    std::vector<SimNode*> down;
    for (auto& [id, n] : nodes_) {
      if (!n->node) {
        down.push_back(n.get());
      }
    }
    if (!down.empty() && uniform() < 0.6) {
      start(*down[pick(down.size())]);
      return;
    }
    SimNode* victim = uniform() < 0.5 ? leader() : random_up();
    if (victim != nullptr) {
      crash(*victim);
    }
  }

  void partition_or_heal() {
    if (!cut_.empty() && uniform() < 0.5) {
      cut_.clear();
      return;
    }
    std::vector<std::uint64_t> ids;
    for (auto& [id, n] : nodes_) {
      ids.push_back(id);
    }
    double kind = uniform();
    if (kind < 0.4) {
      // Isolate one node (the leader, half the time) both ways.
      SimNode* l = leader();
      std::uint64_t victim = (l != nullptr && uniform() < 0.5) ? l->id : ids[pick(ids.size())];
      for (auto other : ids) {
        if (other != victim) {
          cut_.insert({victim, other});
          cut_.insert({other, victim});
        }
      }
    } else if (kind < 0.7) {
      // Split into a majority and a minority.
      std::shuffle(ids.begin(), ids.end(), rng_);
      std::size_t minority = ids.size() / 2;
      for (std::size_t i = 0; i < minority; ++i) {
        for (std::size_t j = minority; j < ids.size(); ++j) {
          cut_.insert({ids[i], ids[j]});
          cut_.insert({ids[j], ids[i]});
        }
      }
    } else {
      // One-way loss: a sends to b, but b's messages to a are lost.
      std::uint64_t a = ids[pick(ids.size())];
      std::uint64_t b = ids[pick(ids.size())];
      if (a != b) {
        cut_.insert({b, a});
      }
    }
  }

  void compact() { compact(random_up(), true); }

  // Snapshots `n` at (or, when `lag`, a little below) its applied index and compacts its log.
  void compact(SimNode* n, bool lag) {
    if (n == nullptr || n->applied < 2) {
      return;
    }
    std::uint64_t at = lag ? n->applied - pick(std::min<std::uint64_t>(n->applied - 1, 3)) : n->applied;
    auto last = n->storage.last_index();
    if (!last.is_ok() || at > *last) {
      return;
    }
    std::vector<std::string> prefix(n->state_machine.begin(),
                                    n->state_machine.begin() + static_cast<std::ptrdiff_t>(at));
    ConfState cs = n->conf_at(at);
    if (n->storage.create_snapshot(at, &cs, encode_sm(prefix)).is_ok()) {
      (void)n->storage.compact(at);
    }
  }

  void change_membership() {
    SimNode* l = leader();
    if (l == nullptr) {
      return;
    }
    ConfState cs = l->node->raft().conf_state();
    if (cs.voters_outgoing_size() > 0) {
      if (!cs.auto_leave()) {
        // An explicit joint configuration is left by an empty change.
        (void)l->node->propose_conf_change(raftpb::ConfChangeV2());
      }
      return;
    }
    if (!cs.learners().empty() && cs.voters_size() >= 3 && uniform() < 0.4) {
      // Joint consensus: swap a learner in for a voter (removed or demoted) in one step.
      raftpb::ConfChangeV2 v2;
      static constexpr raftpb::ConfChangeTransition kTransitions[] = {
          raftpb::TRANSITION_AUTO, raftpb::TRANSITION_JOINT_IMPLICIT, raftpb::TRANSITION_JOINT_EXPLICIT};
      v2.set_transition(kTransitions[pick(3)]);
      auto* promote = v2.add_changes();
      promote->set_type(raftpb::ADD_NODE);
      promote->set_node_id(cs.learners(0));
      auto* out = v2.add_changes();
      out->set_type(uniform() < 0.5 ? raftpb::REMOVE_NODE : raftpb::ADD_LEARNER_NODE);
      out->set_node_id(cs.voters(static_cast<int>(pick(static_cast<std::uint64_t>(cs.voters_size())))));
      (void)l->node->propose_conf_change(v2);
      return;
    }
    ConfChange cc;
    if (!cs.learners().empty() && uniform() < 0.6) {
      cc.set_type(raftpb::ADD_NODE);  // promote
      cc.set_node_id(cs.learners(0));
    } else if (cs.voters_size() > 3 && uniform() < 0.5) {
      cc.set_type(raftpb::REMOVE_NODE);
      cc.set_node_id(cs.voters(static_cast<int>(pick(static_cast<std::uint64_t>(cs.voters_size())))));
    } else if (cs.voters_size() + cs.learners_size() < 5 && next_spare_ <= 9) {
      std::uint64_t id = next_spare_++;
      auto n = std::make_unique<SimNode>();
      n->id = id;
      nodes_[id] = std::move(n);
      start(*nodes_[id]);
      cc.set_type(raftpb::ADD_LEARNER_NODE);
      cc.set_node_id(id);
    } else {
      return;
    }
    (void)l->node->propose_conf_change(cc);
  }

  // ---- Ready handling and checks

  void send(const Message& m) {
    if (cut_.count({m.from(), m.to()}) != 0 || uniform() < drop_) {
      if (m.type() == raftpb::MSG_SNAP) {
        // The transport tells the sender that a snapshot did not get through.
        snapshot_reports_.push_back({m.from(), m.to(), false});
      }
      return;
    }
    int copies = uniform() < duplicate_ ? 2 : 1;
    for (int c = 0; c < copies; ++c) {
      network_.push_back({step_ + static_cast<int>(pick(static_cast<std::uint64_t>(max_delay_) + 1)), m});
    }
  }

  void drain_all() {
    for (int round = 0; round < 100; ++round) {
      for (const auto& r : snapshot_reports_) {
        auto from = nodes_.find(r.from);
        if (from != nodes_.end() && from->second->node) {
          from->second->node->report_snapshot(r.to, r.delivered);
        }
      }
      snapshot_reports_.clear();
      bool any = false;
      for (auto* n : up_nodes()) {
        if (n->node->has_ready()) {
          any = true;
          handle_ready(*n);
        }
      }
      update_max_committed();
      if (!any) {
        return;
      }
    }
  }

  void update_max_committed() {
    for (auto* n : up_nodes()) {
      max_committed_ = std::max(max_committed_, n->node->raft().log().committed());
    }
  }

  void check_leader(const SimNode& n, const SoftState& ss) {
    if (ss.role != StateRole::kLeader) {
      return;
    }
    std::uint64_t term = n.node->raft().term();
    auto [it, inserted] = leaders_.emplace(term, n.id);
    if (!inserted && it->second != n.id) {
      throw Violation(
          fmt::format("election safety: nodes {} and {} are both leader of term {}", it->second, n.id, term));
    }
    if (inserted) {
      ++result_.leaders_elected;
    }
    // Leader completeness (§5.4): a leader holds every entry committed in an earlier term.
    // `seen_term` bounds the commit term from above, so only entries with seen_term < term
    // are certainly owed to this leader.
    const RaftLog& log = n.node->raft().log();
    for (const auto& [index, entry] : committed_) {
      if (index < log.first_index() || entry.seen_term >= term) {
        continue;
      }
      auto t = log.term(index);
      if (!t.is_ok() || *t != entry.term || index > log.last_index()) {
        throw Violation(fmt::format("leader completeness: leader {} of term {} lacks committed entry {} (term {})",
                                    n.id, term, index, entry.term));
      }
    }
  }

  // A committed entry never disappears: a node that holds it must never overwrite it.
  // (A stale leader may still write other entries at a committed index into its own
  // log, where they will be replaced; that is legal.)
  void check_not_overwriting_committed(const SimNode& n, const Entry& e) {
    auto it = committed_.find(e.index());
    if (it == committed_.end() || it->second.term == e.term()) {
      return;
    }
    auto first = n.storage.first_index();
    auto last = n.storage.last_index();
    if (!first.is_ok() || !last.is_ok() || e.index() < *first || e.index() > *last) {
      return;
    }
    auto held = n.storage.term(e.index());
    if (held.is_ok() && *held == it->second.term) {
      throw Violation(fmt::format("log matching: node {} overwrites committed entry {} (term {}) with term {}", n.id,
                                  e.index(), it->second.term, e.term()));
    }
  }

  void apply_entry(SimNode& n, const Entry& e) {
    if (e.index() != n.applied + 1) {
      throw Violation(
          fmt::format("state machine safety: node {} applies index {} after {}", n.id, e.index(), n.applied));
    }
    auto [it, inserted] = committed_.emplace(e.index(), Committed{e.term(), e.data(), n.node->raft().term()});
    if (!inserted && (it->second.term != e.term() || it->second.data != e.data())) {
      throw Violation(fmt::format(
          "state machine safety: node {} applies (index {}, term {}) but another node applied term {} there", n.id,
          e.index(), e.term(), it->second.term));
    }
    n.state_machine.push_back(e.data());
    n.applied = e.index();
    if (e.type() == raftpb::ENTRY_CONF_CHANGE) {
      ConfChange cc;
      cc.ParseFromString(e.data());
      ConfState cs = n.node->apply_conf_change(cc);
      n.storage.set_conf_state(cs);
      n.confs[e.index()] = cs;
      ++result_.conf_changes;
    } else if (e.type() == raftpb::ENTRY_CONF_CHANGE_V2) {
      raftpb::ConfChangeV2 cc;
      cc.ParseFromString(e.data());
      auto cs = n.node->apply_conf_change(cc);
      if (!cs.is_ok()) {
        // The leader checked it against the same configuration: every replica must accept it.
        throw Violation(fmt::format("node {} cannot apply the committed conf change at {}: {}", n.id, e.index(),
                                    cs.status().to_string()));
      }
      n.storage.set_conf_state(*cs);
      n.confs[e.index()] = *cs;
      ++result_.conf_changes;
      result_.joint_changes += raft::enters_joint(cc) ? 1 : 0;
    }
  }

  void handle_ready(SimNode& n) {
    Ready rd = n.node->ready();
    if (std::getenv("RDB_SIM_TRACE") != nullptr) {
      fmt::print("step {} node {} ready: term {} applied {} snap {} ents {} committed [{}..{}] msgs {}\n", step_, n.id,
                 n.node->raft().term(), n.node->raft().log().applied(),
                 rd.snapshot ? rd.snapshot->metadata().index() : 0, rd.entries.size(),
                 rd.committed_entries.empty() ? 0 : rd.committed_entries.front().index(),
                 rd.committed_entries.empty() ? 0 : rd.committed_entries.back().index(), rd.messages.size());
    }
    if (rd.soft_state) {
      check_leader(n, *rd.soft_state);
      bool leading = rd.soft_state->role == StateRole::kLeader;
      if (leading && !n.leading) {
        n.serve_from = step_ + (o_.lease_skip_wait ? 0 : o_.lease_steps);
      }
      if (leading && !n.leading) {
        n.lease_until = -1;  // a new term's lease starts from its own rounds
      }
      if (!leading) {
        // Pessimistic: a deposed leader is taken to serve until its lease runs out, as
        // one that has not heard of its deposition yet would.
        n.lease_rounds.clear();
      }
      n.leading = leading;
    }
    // 1. persist
    if (rd.snapshot) {
      if (!n.storage.apply_snapshot(*rd.snapshot).is_ok()) {
        throw Violation(fmt::format("node {} was handed an out-of-date snapshot", n.id));
      }
    }
    for (const auto& e : rd.entries) {
      check_not_overwriting_committed(n, e);
    }
    if (!n.storage.append(rd.entries).is_ok()) {
      throw Violation(fmt::format("node {} cannot append its Ready entries", n.id));
    }
    if (rd.hard_state) {
      n.storage.set_hard_state(*rd.hard_state);
    }
    if (o_.crashes && !healed_ && uniform() < 0.005) {
      crash(n);  // between persisting and sending: messages and applying are lost
      return;
    }
    // 2. send
    for (const auto& m : rd.messages) {
      send(m);
    }
    // 3. apply
    if (rd.snapshot) {
      const auto& meta = rd.snapshot->metadata();
      auto sm = decode_sm(rd.snapshot->data());
      if (sm.size() != meta.index()) {
        throw Violation(fmt::format("snapshot at {} holds {} entries", meta.index(), sm.size()));
      }
      for (std::uint64_t i = 1; i <= meta.index(); ++i) {
        auto it = committed_.find(i);
        if (it != committed_.end() && it->second.data != sm[i - 1]) {
          throw Violation(fmt::format("snapshot at {} disagrees with committed entry {}", meta.index(), i));
        }
      }
      n.state_machine = std::move(sm);
      n.applied = meta.index();
      n.confs = {{meta.index(), meta.conf_state()}};
      ++result_.snapshots_installed;
    }
    for (const auto& e : rd.committed_entries) {
      apply_entry(n, e);
    }
    for (const auto& rs : rd.read_states) {
      if (auto round = n.lease_rounds.find(rs.request_ctx); round != n.lease_rounds.end()) {
        n.lease_until = std::max(n.lease_until, round->second + o_.lease_steps);
        ++lease_confirmed_;
      } else if (rs.request_ctx.rfind("lease", 0) == 0) {
        ++lease_unknown_;
      }
      auto floor = read_floor_.find(rs.request_ctx);
      if (floor != read_floor_.end()) {
        if (rs.index < floor->second) {
          throw Violation(fmt::format("linearizability: read {} got index {}, but {} was committed before it was asked",
                                      rs.request_ctx, rs.index, floor->second));
        }
        ++result_.reads_checked;
      }
    }
    n.node->advance(rd);
  }

  // PD's lease rule: at most one node serves at any step.
  void check_lease() {
    if (o_.lease_steps <= 0) {
      return;
    }
    std::vector<const SimNode*> serving;
    for (auto* n : up_nodes()) {
      const Raft& r = n->node->raft();
      bool handing_over = n->leading && r.lead_transferee() != 0;
      if (!handing_over && step_ >= n->serve_from && step_ < n->lease_until) {
        serving.push_back(n);
      }
    }
    if (serving.size() > 1) {
      throw Violation(fmt::format("lease: nodes {} (term {}) and {} (term {}) both serve at step {}", serving[0]->id,
                                  serving[0]->node->raft().term(), serving[1]->id, serving[1]->node->raft().term(),
                                  step_));
    }
    result_.lease_serving_steps += serving.size();
    if (std::getenv("RDB_SIM_LEASE_TRACE") != nullptr && !serving.empty()) {
      fmt::print("step {} serving {} term {} leading {} until {} from {}\n", step_, serving[0]->id,
                 serving[0]->node->raft().term(), serving[0]->leading, serving[0]->lease_until, serving[0]->serve_from);
    }
  }

  // ---- liveness

  void liveness() {
    healed_ = true;
    cut_.clear();
    drop_ = 0;
    duplicate_ = 0;
    max_delay_ = 1;
    for (auto& [id, n] : nodes_) {
      if (!n->node) {
        start(*n);
      }
    }
    drain_all();
    std::string marker = fmt::format("liveness-{}", o_.seed);
    bool proposed = false;
    for (int t = 0; t < o_.liveness_ticks; ++t, ++step_) {
      if (o_.compaction && t % 20 == 10) {
        // Applications take snapshots as they go (the stores build one when it is asked
        // for): a leader waiting for one newer than its last is not stuck for ever.
        compact(leader(), false);
      }
      tick_all(0);
      for (int d = 0; d < 50 && !network_.empty(); ++d) {
        std::deque<InFlight> batch(network_.begin(), network_.end());
        network_.clear();
        for (auto& f : batch) {
          deliver(f.msg);
        }
        drain_all();
      }
      drain_all();
      if (SimNode* l = leader(); l != nullptr && t % 5 == 0) {
        (void)l->node->propose(marker);
        proposed = true;
      }
      if (proposed) {
        for (const auto& [index, entry] : committed_) {
          if (entry.data == marker) {
            return;
          }
        }
      }
    }
    throw Violation(fmt::format("liveness: no leader committed a proposal within {} ticks after the faults healed{}",
                                o_.liveness_ticks, describe_nodes()));
  }

  std::string describe_nodes() {
    std::string out;
    for (auto& [id, n] : nodes_) {
      if (!n->node) {
        out += fmt::format("\n  node {}: down", id);
        continue;
      }
      const Raft& r = n->node->raft();
      ConfState cs = r.conf_state();
      out += fmt::format("\n  node {}: {} term {} vote {} lead {} {} applied {} voters [{}] learners [{}]", id,
                         role_name(r.role()), r.term(), r.vote(), r.leader(), r.log().describe(), n->applied,
                         fmt::join(cs.voters(), ","), fmt::join(cs.learners(), ","));
      if (r.role() == StateRole::kLeader) {
        for (const auto& [pid, pr] : r.progress()) {
          out += fmt::format("\n    -> {}: {}", pid, pr.describe());
        }
      }
    }
    return out;
  }

  SimOptions o_;
  std::mt19937_64 rng_;
  std::map<std::uint64_t, std::unique_ptr<SimNode>> nodes_;
  std::vector<InFlight> network_;
  struct SnapshotReport {
    std::uint64_t from;
    std::uint64_t to;
    bool delivered;
  };
  std::vector<SnapshotReport> snapshot_reports_;
  std::set<std::pair<std::uint64_t, std::uint64_t>> cut_;  // (from, to) links that lose everything
  std::map<std::uint64_t, std::uint64_t> leaders_;         // term -> leader
  struct Committed {
    std::uint64_t term;
    std::string data;
    std::uint64_t seen_term;  // term of the first node seen applying it: >= the term it was committed in
  };
  std::map<std::uint64_t, Committed> committed_;  // every index known committed
  std::map<std::string, std::uint64_t> read_floor_;
  std::uint64_t max_committed_ = 1;
  std::uint64_t next_spare_ = 0;
  std::uint64_t proposals_ = 0;
  std::uint64_t reads_ = 0;
  std::uint64_t lease_rounds_ = 0;
  std::uint64_t lease_started_ = 0, lease_confirmed_ = 0, lease_unknown_ = 0;
  std::uint64_t restarts_ = 0;
  double drop_ = o_.drop;
  double duplicate_ = o_.duplicate;
  int max_delay_ = o_.max_delay;
  int step_ = 0;
  bool healed_ = false;  // liveness phase: no more faults
  SimResult result_;
};

}  // namespace

SimResult run_simulation(const SimOptions& options) {
  return Simulation(options).run();
}

std::string replay_command(const SimOptions& o) {
  std::string cmd =
      fmt::format("build/bin/rdb-raft-sim --seed {} --seeds 1 --voters {} --steps {}", o.seed, o.voters, o.steps);
  if (o.bugs.grant_vote_without_log_check) {
    cmd += " --bug vote-without-log-check";
  }
  if (o.bugs.commit_previous_term_by_counting) {
    cmd += " --bug commit-previous-term";
  }
  if (!o.pre_vote) {
    cmd += " --no-pre-vote";
  }
  if (o.lease_steps > 0) {
    cmd += fmt::format(" --lease-steps {}", o.lease_steps);
  }
  if (!o.crashes) {
    cmd += " --no-crashes";
  }
  if (!o.membership) {
    cmd += " --no-membership";
  }
  if (o.lease_skip_wait) {
    cmd += " --bug lease-skip-wait";
  }
  return cmd;
}

}  // namespace rdb::raft::sim
