#include "raft/raft.h"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

#include "common/test_switches.h"

namespace rdb::raft {
namespace {

constexpr const char* kCampaignTransfer = "CampaignTransfer";

MessageType vote_resp_type(MessageType t) {
  return t == raftpb::MSG_VOTE ? raftpb::MSG_VOTE_RESP : raftpb::MSG_PRE_VOTE_RESP;
}

}  // namespace

const char* role_name(StateRole r) {
  switch (r) {
    case StateRole::kFollower:
      return "Follower";
    case StateRole::kCandidate:
      return "Candidate";
    case StateRole::kLeader:
      return "Leader";
    case StateRole::kPreCandidate:
      return "PreCandidate";
  }
  return "?";
}

Status Config::validate() const {
  if (id == kNone) {
    return Status::invalid_argument("raft config: id must not be 0");
  }
  if (!kTestSwitches && (bugs.grant_vote_without_log_check || bugs.commit_previous_term_by_counting)) {
    return Status::invalid_argument("raft config: test bugs are compiled out of this build (RDB_TEST_SWITCHES=OFF)");
  }
  if (heartbeat_tick <= 0) {
    return Status::invalid_argument("raft config: heartbeat_tick must be positive");
  }
  if (election_tick <= heartbeat_tick) {
    return Status::invalid_argument("raft config: election_tick must be greater than heartbeat_tick");
  }
  if (max_inflight_msgs == 0) {
    return Status::invalid_argument("raft config: max_inflight_msgs must be positive");
  }
  if (read_only_option == ReadOnlyOption::kLeaseBased && !check_quorum) {
    return Status::invalid_argument("raft config: lease-based reads need check_quorum");
  }
  return Status::ok();
}

Result<std::unique_ptr<Raft>> Raft::create(const Config& c, const Storage& storage) {
  RDB_RETURN_IF_ERROR(c.validate());
  RDB_ASSIGN_OR_RETURN(RaftLog log, RaftLog::create(storage, c.max_committed_size_per_ready));
  RDB_ASSIGN_OR_RETURN(InitialState init, storage.initial_state());
  std::unique_ptr<Raft> r(new Raft(c, std::move(log)));
  auto conf = Configuration::from_conf_state(init.conf_state);
  if (!conf.is_ok() && (init.conf_state.voters_size() > 0 || init.conf_state.learners_size() > 0)) {
    return ServerStatus::corruption("raft: stored " + conf.status().message());
  }
  if (conf.is_ok()) {
    r->reset_progress(*conf);
  }
  const HardState& hs = init.hard_state;
  if (hs.term() != 0 || hs.vote() != 0 || hs.commit() != 0) {
    if (hs.commit() < r->log_.committed() || hs.commit() > r->log_.last_index()) {
      return ServerStatus::corruption(fmt::format("raft: hard state commit {} is out of range [{}, {}]", hs.commit(),
                                                  r->log_.committed(), r->log_.last_index()));
    }
    r->log_.commit_to(hs.commit());
    r->term_ = hs.term();
    r->vote_ = hs.vote();
  }
  if (c.applied > 0) {
    if (c.applied < r->log_.applied()) {
      return Status::invalid_argument(
          fmt::format("raft config: applied {} is below the storage snapshot at {}: apply the snapshot first",
                      c.applied, r->log_.applied()));
    }
    if (c.applied > r->log_.committed()) {
      return Status::invalid_argument(
          fmt::format("raft config: applied {} is past the committed index {}", c.applied, r->log_.committed()));
    }
    r->log_.applied_to(c.applied);
  }
  r->become_follower(r->term_, kNone);
  r->startup_lease_ = c.lease_after_restart && c.check_quorum && hs.term() != 0;
  return r;
}

Raft::Raft(const Config& c, RaftLog log)
    : id_(c.id),
      log_(std::move(log)),
      election_timeout_(c.election_tick),
      heartbeat_timeout_(c.heartbeat_tick),
      check_quorum_(c.check_quorum),
      pre_vote_(c.pre_vote),
      lazy_commit_broadcast_(c.lazy_commit_broadcast),
      read_only_option_(c.read_only_option),
      max_msg_size_(c.max_size_per_msg),
      max_inflight_(c.max_inflight_msgs),
      bugs_(c.bugs),
      rng_(c.seed ^ (c.id * 0x9E3779B97F4A7C15ULL)) {}

Progress Raft::new_progress(bool learner) const {
  Progress p(max_inflight_);
  p.is_learner = learner;
  p.next = log_.last_index() + 1;
  return p;
}

void Raft::reset_progress(const Configuration& conf) {
  conf_ = conf;
  prs_.clear();
  for (auto id : conf_.members()) {
    prs_.emplace(id, new_progress(!conf_.is_voter(id)));
  }
}

void Raft::switch_configuration(const Configuration& conf) {
  conf_ = conf;
  const std::set<std::uint64_t> members = conf_.members();
  for (auto it = prs_.begin(); it != prs_.end();) {
    it = members.count(it->first) == 0 ? prs_.erase(it) : std::next(it);
  }
  for (auto id : members) {
    auto it = prs_.find(id);
    if (it == prs_.end()) {
      Progress p = new_progress(!conf_.is_voter(id));
      p.recent_active = true;  // give it a chance before check-quorum counts it out
      it = prs_.emplace(id, std::move(p)).first;
    }
    it->second.is_learner = !conf_.is_voter(id);
  }
}

ConfState Raft::conf_state() const {
  return conf_.to_conf_state();
}

HardState Raft::hard_state() const {
  HardState hs;
  hs.set_term(term_);
  hs.set_vote(vote_);
  hs.set_commit(log_.committed());
  return hs;
}

bool Raft::promotable() const {
  return conf_.is_voter(id_) && !log_.unstable_snapshot().has_value();
}

std::vector<std::uint64_t> Raft::voters() const {
  std::set<std::uint64_t> all = conf_.voters;
  all.insert(conf_.voters_outgoing.begin(), conf_.voters_outgoing.end());
  return {all.begin(), all.end()};
}

// ---- roles

void Raft::reset(std::uint64_t term) {
  if (term_ != term) {
    term_ = term;
    vote_ = kNone;
  }
  lead_ = kNone;
  election_elapsed_ = 0;
  heartbeat_elapsed_ = 0;
  reset_randomized_election_timeout();
  abort_leader_transfer();
  votes_.clear();
  for (auto& [id, pr] : prs_) {
    bool learner = pr.is_learner;
    pr = new_progress(learner);
    if (id == id_) {
      pr.match = log_.last_index();
    }
  }
  pending_conf_index_ = 0;
  pending_reads_.clear();
  read_queue_.clear();
  commit_unannounced_ = false;
}

void Raft::reset_randomized_election_timeout() {
  std::uniform_int_distribution<int> dist(election_timeout_, 2 * election_timeout_ - 1);
  randomized_election_timeout_ = dist(rng_);
}

void Raft::become_follower(std::uint64_t term, std::uint64_t lead) {
  reset(term);
  lead_ = lead;
  state_ = StateRole::kFollower;
}

void Raft::become_candidate() {
  if (state_ == StateRole::kLeader) {
    throw std::logic_error("raft: invalid transition [leader -> candidate]");
  }
  reset(term_ + 1);
  vote_ = id_;
  state_ = StateRole::kCandidate;
  startup_lease_ = false;
}

void Raft::become_pre_candidate() {
  if (state_ == StateRole::kLeader) {
    throw std::logic_error("raft: invalid transition [leader -> pre-candidate]");
  }
  // Pre-vote changes neither term nor vote: a partitioned node cannot inflate terms.
  votes_.clear();
  lead_ = kNone;
  state_ = StateRole::kPreCandidate;
  startup_lease_ = false;
}

void Raft::become_leader() {
  if (state_ == StateRole::kFollower) {
    throw std::logic_error("raft: invalid transition [follower -> leader]");
  }
  reset(term_);
  lead_ = id_;
  state_ = StateRole::kLeader;
  if (auto it = prs_.find(id_); it != prs_.end()) {
    it->second.become_replicate();
  }
  // Conservatively assume the log tail may hold an unapplied conf change.
  pending_conf_index_ = log_.last_index();
  // An empty entry of this term lets earlier-term entries commit (§5.4.2, §8).
  Entry empty;
  if (!append_entries({empty})) {
    throw std::logic_error("raft: cannot append the leader's empty entry");
  }
}

// ---- ticks

void Raft::tick() {
  if (state_ == StateRole::kLeader) {
    tick_heartbeat();
  } else {
    tick_election();
  }
}

void Raft::tick_election() {
  ++election_elapsed_;
  if (election_elapsed_ >= election_timeout_) {
    startup_lease_ = false;
  }
  if (promotable() && past_election_timeout()) {
    election_elapsed_ = 0;
    Message m;
    m.set_type(raftpb::MSG_HUP);
    m.set_from(id_);
    (void)step(m);
  }
}

void Raft::tick_heartbeat() {
  ++heartbeat_elapsed_;
  ++election_elapsed_;
  if (election_elapsed_ >= election_timeout_) {
    election_elapsed_ = 0;
    if (check_quorum_) {
      Message m;
      m.set_type(raftpb::MSG_CHECK_QUORUM);
      m.set_from(id_);
      (void)step(m);
    }
    // A transfer that did not finish within an election timeout is abandoned.
    if (state_ == StateRole::kLeader && lead_transferee_ != kNone) {
      abort_leader_transfer();
    }
  }
  if (state_ != StateRole::kLeader) {
    return;
  }
  if (commit_unannounced_) {
    bcast_append();
  }
  if (heartbeat_elapsed_ >= heartbeat_timeout_) {
    heartbeat_elapsed_ = 0;
    Message m;
    m.set_type(raftpb::MSG_BEAT);
    m.set_from(id_);
    (void)step(m);
  }
}

// ---- elections

bool Raft::has_unapplied_conf_change() const {
  if (log_.applied() >= log_.committed()) {
    return false;
  }
  auto ents = log_.slice(std::max(log_.applied() + 1, log_.first_index()), log_.committed() + 1, kNoLimit);
  if (!ents.is_ok()) {
    return false;
  }
  return std::any_of(ents->begin(), ents->end(), [](const Entry& e) {
    return e.type() == raftpb::ENTRY_CONF_CHANGE || e.type() == raftpb::ENTRY_CONF_CHANGE_V2;
  });
}

void Raft::hup(CampaignKind kind) {
  if (state_ == StateRole::kLeader) {
    return;
  }
  if (!promotable()) {
    return;
  }
  // Campaigning with an unapplied membership change could use the wrong configuration.
  if (has_unapplied_conf_change()) {
    return;
  }
  if (kind == CampaignKind::kPreElection && !pre_vote_) {
    kind = CampaignKind::kElection;
  }
  campaign(kind);
}

void Raft::campaign(CampaignKind kind) {
  std::uint64_t term;
  MessageType vote_type;
  if (kind == CampaignKind::kPreElection) {
    become_pre_candidate();
    vote_type = raftpb::MSG_PRE_VOTE;
    term = term_ + 1;  // the term this node would campaign in
  } else {
    become_candidate();
    vote_type = raftpb::MSG_VOTE;
    term = term_;
  }
  if (poll(id_, vote_resp_type(vote_type), true) == VoteResult::kWon) {
    // A single-voter group wins at once.
    if (kind == CampaignKind::kPreElection) {
      campaign(CampaignKind::kElection);
    } else {
      become_leader();
    }
    return;
  }
  for (auto v : voters()) {
    if (v == id_) {
      continue;
    }
    Message m;
    m.set_type(vote_type);
    m.set_to(v);
    m.set_term(term);
    m.set_index(log_.last_index());
    m.set_log_term(log_.last_term());
    if (kind == CampaignKind::kTransfer) {
      m.set_context(kCampaignTransfer);
    }
    send(std::move(m));
  }
}

Raft::VoteResult Raft::poll(std::uint64_t from, MessageType, bool granted) {
  votes_.emplace(from, granted);  // the first answer from a node counts
  switch (conf_.vote(votes_)) {
    case VoteOutcome::kWon:
      return VoteResult::kWon;
    case VoteOutcome::kLost:
      return VoteResult::kLost;
    case VoteOutcome::kPending:
      break;
  }
  return VoteResult::kPending;
}

// ---- step

std::optional<Rejection> Raft::check_remote(const Message& m) const {
  if (m.to() != id_) {
    return Rejection{"misaddressed", fmt::format("message for node {} arrived at node {}", m.to(), id_)};
  }
  if (m.term() > term_ + kMaxTermJump) {
    return Rejection{"bad_term", fmt::format("term {} leads ours ({}) by more than 2^32", m.term(), term_)};
  }
  if (m.term() < term_) {
    return std::nullopt;  // stale: step() answers or ignores it without touching the log
  }
  if (m.type() == raftpb::MSG_HEARTBEAT && m.commit() > log_.last_index()) {
    return Rejection{"bad_commit", fmt::format("heartbeat commits {} but the log ends at {}: a leader only "
                                               "commits what the follower acknowledged",
                                               m.commit(), log_.last_index())};
  }
  if (m.type() == raftpb::MSG_APP_RESP && !m.reject() && m.term() == term_ && state_ == StateRole::kLeader &&
      m.index() > log_.last_index()) {
    return Rejection{"bad_index",
                     fmt::format("acknowledges index {} beyond the leader's last {}", m.index(), log_.last_index())};
  }
  return std::nullopt;
}

Status Raft::step(Message m) {
  // Term handling first (§5.1): newer terms win, older ones are answered or ignored.
  if (m.term() == 0) {
    // local message
  } else if (m.term() > term_) {
    if (m.type() == raftpb::MSG_VOTE || m.type() == raftpb::MSG_PRE_VOTE) {
      bool force = m.context() == kCampaignTransfer;
      bool in_lease = check_quorum_ && (lead_ != kNone || startup_lease_) && election_elapsed_ < election_timeout_;
      if (!force && in_lease) {
        // We heard from a live leader within the minimum election timeout: do not let
        // a removed or partitioned node disrupt it (§6).
        return Status::ok();
      }
    }
    bool pre_vote_traffic = m.type() == raftpb::MSG_PRE_VOTE || (m.type() == raftpb::MSG_PRE_VOTE_RESP && !m.reject());
    if (pre_vote_traffic) {
      // Never change term for a pre-vote; a granted pre-vote carries the future term we
      // asked for, which we take ourselves when the pre-vote wins.
    } else if (m.type() == raftpb::MSG_APP || m.type() == raftpb::MSG_HEARTBEAT || m.type() == raftpb::MSG_SNAP) {
      become_follower(m.term(), m.from());
    } else {
      become_follower(m.term(), kNone);
    }
  } else if (m.term() < term_) {
    if ((check_quorum_ || pre_vote_) && (m.type() == raftpb::MSG_HEARTBEAT || m.type() == raftpb::MSG_APP)) {
      // A stale leader (e.g. after a partition healed) learns our term and steps down;
      // without this it could never rejoin when pre-vote stops us from bumping its term.
      Message resp;
      resp.set_to(m.from());
      resp.set_type(raftpb::MSG_APP_RESP);
      send(std::move(resp));
    } else if (m.type() == raftpb::MSG_PRE_VOTE) {
      Message resp;
      resp.set_to(m.from());
      resp.set_term(term_);
      resp.set_type(raftpb::MSG_PRE_VOTE_RESP);
      resp.set_reject(true);
      send(std::move(resp));
    }
    return Status::ok();
  }

  switch (m.type()) {
    case raftpb::MSG_HUP:
      hup(pre_vote_ ? CampaignKind::kPreElection : CampaignKind::kElection);
      return Status::ok();
    case raftpb::MSG_VOTE:
    case raftpb::MSG_PRE_VOTE: {
      // We can vote for the same node again (duplicate), for anyone if we have not voted
      // and know no leader, or (pre-vote) for a future term.
      bool can_vote = vote_ == m.from() || (vote_ == kNone && lead_ == kNone) ||
                      (m.type() == raftpb::MSG_PRE_VOTE && m.term() > term_);
      bool log_ok =
          (kTestSwitches && bugs_.grant_vote_without_log_check) || log_.is_up_to_date(m.index(), m.log_term());
      Message resp;
      resp.set_to(m.from());
      resp.set_type(vote_resp_type(m.type()));
      if (can_vote && log_ok) {
        resp.set_term(m.term());
        send(std::move(resp));
        if (m.type() == raftpb::MSG_VOTE) {
          election_elapsed_ = 0;
          vote_ = m.from();
        }
      } else if (term_ != 0) {  // a node at term 0 has nothing to tell the candidate
        resp.set_term(term_);
        resp.set_reject(true);
        send(std::move(resp));
      }
      return Status::ok();
    }
    default:
      break;
  }
  switch (state_) {
    case StateRole::kLeader:
      return step_leader(m);
    case StateRole::kCandidate:
    case StateRole::kPreCandidate:
      return step_candidate(m);
    case StateRole::kFollower:
      return step_follower(m);
  }
  return Status::ok();
}

Status Raft::step_leader(Message& m) {
  switch (m.type()) {
    case raftpb::MSG_BEAT:
      bcast_heartbeat("");
      return Status::ok();
    case raftpb::MSG_CHECK_QUORUM:
      if (!quorum_active()) {
        // We cannot hear from a quorum: another leader may exist. Step down.
        become_follower(term_, kNone);
      }
      return Status::ok();
    case raftpb::MSG_PROP: {
      if (m.entries_size() == 0) {
        return Status::invalid_argument("raft: empty proposal");
      }
      if (prs_.find(id_) == prs_.end()) {
        return Status::unavailable("raft: proposal dropped: this node was removed from the group");
      }
      if (lead_transferee_ != kNone) {
        return Status::unavailable(
            fmt::format("raft: proposal dropped: leadership is being transferred to {}", lead_transferee_));
      }
      std::vector<Entry> ents;
      ents.reserve(static_cast<std::size_t>(m.entries_size()));
      for (auto& e : *m.mutable_entries()) {
        ents.push_back(std::move(e));
      }
      for (std::size_t i = 0; i < ents.size(); ++i) {
        if (ents[i].type() != raftpb::ENTRY_CONF_CHANGE && ents[i].type() != raftpb::ENTRY_CONF_CHANGE_V2) {
          continue;
        }
        if (pending_conf_index_ > log_.applied()) {
          // One membership change at a time: refuse this one.
          return Status::unavailable("raft: conf change dropped: another one is still pending");
        }
        if (Status s = check_proposed_conf_change(ents[i]); !s.is_ok()) {
          return s;
        }
        pending_conf_index_ = log_.last_index() + i + 1;
      }
      if (!append_entries(std::move(ents))) {
        return Status::unavailable("raft: proposal dropped");
      }
      bcast_append();
      return Status::ok();
    }
    case raftpb::MSG_READ_INDEX: {
      if (m.entries_size() != 1) {
        return Status::invalid_argument("raft: a read index request carries exactly one entry");
      }
      if (conf_.only_voter_is(id_)) {
        respond_to_read_index(m, log_.committed());
        return Status::ok();
      }
      // Until this leader commits an entry of its term it does not know the commit index (§6.4).
      if (!committed_entry_in_current_term()) {
        return Status::unavailable("raft: read index dropped: the leader has not committed in its term yet");
      }
      if (read_only_option_ == ReadOnlyOption::kLeaseBased) {
        respond_to_read_index(m, log_.committed());
        return Status::ok();
      }
      const std::string& ctx = m.entries(0).data();
      if (pending_reads_.count(ctx) == 0) {
        ReadIndexStatus st;
        st.request = m;
        st.index = log_.committed();
        st.acks.insert(id_);
        pending_reads_.emplace(ctx, std::move(st));
        read_queue_.push_back(ctx);
      }
      bcast_heartbeat(ctx);
      return Status::ok();
    }
    default:
      break;
  }

  auto it = prs_.find(m.from());
  if (it == prs_.end()) {
    return Status::ok();  // a node no longer (or not yet) in the group
  }
  Progress& pr = it->second;
  switch (m.type()) {
    case raftpb::MSG_APP_RESP: {
      pr.recent_active = true;
      if (m.reject()) {
        std::uint64_t next_probe = m.reject_hint();
        if (m.log_term() > 0) {
          // Fast back-off: skip every entry of ours whose term is above the follower's hint term.
          next_probe = log_.find_conflict_by_term(m.reject_hint(), m.log_term());
        }
        if (pr.maybe_decr_to(m.index(), next_probe)) {
          if (pr.state == ProgressState::kReplicate) {
            pr.become_probe();
          }
          send_append(m.from());
        }
        return Status::ok();
      }
      bool was_paused = pr.is_paused();
      if (!pr.maybe_update(m.index())) {
        return Status::ok();
      }
      if (pr.state == ProgressState::kProbe) {
        pr.become_replicate();
      } else if (pr.state == ProgressState::kSnapshot && pr.match >= pr.pending_snapshot) {
        pr.become_probe();
        pr.become_replicate();
      } else if (pr.state == ProgressState::kReplicate) {
        pr.inflights.free_le(m.index());
      }
      const std::uint64_t committed_before = log_.committed();
      if (maybe_commit()) {
        // A membership change's commit goes out at once: once applied, a member it removed
        // hears nothing more from this leader — and a removed learner, which never
        // campaigns, would never find out (it kept its replica, and its store never drained).
        const bool membership_committed =
            pending_conf_index_ > committed_before && pending_conf_index_ <= log_.committed();
        if (lazy_commit_broadcast_ && !membership_committed) {
          commit_unannounced_ = true;  // the next append or tick carries it
          if (was_paused) {
            send_append(m.from());
          }
        } else {
          bcast_append();
        }
      } else if (was_paused) {
        send_append(m.from());
      }
      while (maybe_send_append(m.from(), false)) {
      }
      if (m.from() == lead_transferee_ && pr.match == log_.last_index()) {
        send_timeout_now(m.from());
      }
      return Status::ok();
    }
    case raftpb::MSG_HEARTBEAT_RESP: {
      pr.recent_active = true;
      pr.probe_sent = false;
      // The follower is alive: if a full window of appends was lost on the way, no answer
      // will ever free it. Free one slot so that the next append goes out; the follower
      // rejects it (a gap) and the leader probes back to where it matches.
      if (pr.state == ProgressState::kReplicate && pr.inflights.full()) {
        pr.inflights.free_first_one();
      }
      if (pr.match < log_.last_index()) {
        send_append(m.from());
      }
      if (read_only_option_ != ReadOnlyOption::kSafe || m.context().empty()) {
        return Status::ok();
      }
      auto pending = pending_reads_.find(m.context());
      if (pending == pending_reads_.end()) {
        return Status::ok();
      }
      if (conf_.is_voter(m.from())) {
        pending->second.acks.insert(m.from());
      }
      if (!conf_.has_quorum(pending->second.acks)) {
        return Status::ok();
      }
      // This read and every earlier one are confirmed by the same quorum round.
      while (!read_queue_.empty()) {
        std::string ctx = read_queue_.front();
        read_queue_.pop_front();
        auto node = pending_reads_.extract(ctx);
        respond_to_read_index(node.mapped().request, node.mapped().index);
        if (ctx == m.context()) {
          break;
        }
      }
      return Status::ok();
    }
    case raftpb::MSG_SNAP_STATUS:
      if (pr.state != ProgressState::kSnapshot) {
        return Status::ok();
      }
      if (m.reject()) {
        pr.pending_snapshot = 0;
      }
      pr.become_probe();
      // Wait for the next heartbeat response before probing again.
      pr.probe_sent = true;
      return Status::ok();
    case raftpb::MSG_UNREACHABLE:
      if (pr.state == ProgressState::kReplicate) {
        pr.become_probe();
      }
      return Status::ok();
    case raftpb::MSG_TRANSFER_LEADER: {
      if (pr.is_learner) {
        return Status::invalid_argument("raft: cannot transfer leadership to a learner");
      }
      std::uint64_t transferee = m.from();
      if (lead_transferee_ != kNone) {
        if (lead_transferee_ == transferee) {
          return Status::ok();  // already in progress
        }
        abort_leader_transfer();
      }
      if (transferee == id_) {
        return Status::ok();
      }
      election_elapsed_ = 0;  // the transfer must finish within an election timeout
      lead_transferee_ = transferee;
      if (pr.match == log_.last_index()) {
        send_timeout_now(transferee);
      } else {
        send_append(transferee);
      }
      return Status::ok();
    }
    default:
      return Status::ok();
  }
}

Status Raft::step_candidate(Message& m) {
  MessageType my_resp = state_ == StateRole::kPreCandidate ? raftpb::MSG_PRE_VOTE_RESP : raftpb::MSG_VOTE_RESP;
  switch (m.type()) {
    case raftpb::MSG_PROP:
      return Status::unavailable("raft: proposal dropped: no leader (election in progress)");
    case raftpb::MSG_READ_INDEX:
      return Status::unavailable("raft: read index dropped: no leader (election in progress)");
    case raftpb::MSG_APP:
      become_follower(m.term(), m.from());
      handle_append_entries(m);
      return Status::ok();
    case raftpb::MSG_HEARTBEAT:
      become_follower(m.term(), m.from());
      handle_heartbeat(m);
      return Status::ok();
    case raftpb::MSG_SNAP:
      become_follower(m.term(), m.from());
      handle_snapshot(m);
      return Status::ok();
    default:
      break;
  }
  if (m.type() == my_resp) {
    switch (poll(m.from(), m.type(), !m.reject())) {
      case VoteResult::kWon:
        if (state_ == StateRole::kPreCandidate) {
          campaign(CampaignKind::kElection);
        } else {
          become_leader();
          bcast_append();
        }
        break;
      case VoteResult::kLost:
        // Either way (pre-vote or vote) we fall back to follower; a rejection with a
        // higher term already made us one above.
        become_follower(term_, kNone);
        break;
      case VoteResult::kPending:
        break;
    }
  }
  return Status::ok();
}

Status Raft::step_follower(Message& m) {
  switch (m.type()) {
    case raftpb::MSG_PROP:
      if (lead_ == kNone) {
        return Status::unavailable("raft: proposal dropped: no leader");
      }
      m.set_to(lead_);
      send(m);
      return Status::ok();
    case raftpb::MSG_APP:
      election_elapsed_ = 0;
      lead_ = m.from();
      handle_append_entries(m);
      return Status::ok();
    case raftpb::MSG_HEARTBEAT:
      election_elapsed_ = 0;
      lead_ = m.from();
      handle_heartbeat(m);
      return Status::ok();
    case raftpb::MSG_SNAP:
      election_elapsed_ = 0;
      lead_ = m.from();
      handle_snapshot(m);
      return Status::ok();
    case raftpb::MSG_TRANSFER_LEADER:
      if (lead_ == kNone) {
        return Status::unavailable("raft: leadership transfer dropped: no leader");
      }
      m.set_to(lead_);
      send(m);
      return Status::ok();
    case raftpb::MSG_TIMEOUT_NOW:
      // The leader asked us to take over: campaign at once, skipping pre-vote.
      hup(CampaignKind::kTransfer);
      return Status::ok();
    case raftpb::MSG_READ_INDEX:
      if (lead_ == kNone) {
        return Status::unavailable("raft: read index dropped: no leader");
      }
      m.set_to(lead_);
      send(m);
      return Status::ok();
    case raftpb::MSG_READ_INDEX_RESP:
      if (m.entries_size() != 1) {
        return Status::ok();  // malformed
      }
      read_states_.push_back({m.index(), m.entries(0).data()});
      return Status::ok();
    default:
      return Status::ok();
  }
}

void Raft::respond_to_read_index(const Message& req, std::uint64_t index) {
  if (req.from() == kNone || req.from() == id_) {
    read_states_.push_back({index, req.entries(0).data()});
    return;
  }
  Message resp;
  resp.set_type(raftpb::MSG_READ_INDEX_RESP);
  resp.set_to(req.from());
  resp.set_index(index);
  *resp.mutable_entries() = req.entries();
  send(std::move(resp));
}

void Raft::handle_append_entries(Message& m) {
  Message resp;
  resp.set_to(m.from());
  resp.set_type(raftpb::MSG_APP_RESP);
  if (m.index() < log_.committed()) {
    resp.set_index(log_.committed());
    send(std::move(resp));
    return;
  }
  std::vector<Entry> ents;
  ents.reserve(static_cast<std::size_t>(m.entries_size()));
  for (auto& e : *m.mutable_entries()) {
    ents.push_back(std::move(e));
  }
  if (auto last = log_.maybe_append(m.index(), m.log_term(), m.commit(), std::move(ents))) {
    resp.set_index(*last);
    send(std::move(resp));
    return;
  }
  // Reject with a hint: the largest index <= m.index() whose term is <= m.log_term(),
  // so the leader can skip a whole conflicting term in one round trip.
  std::uint64_t hint = std::min(m.index(), log_.last_index());
  hint = log_.find_conflict_by_term(hint, m.log_term());
  resp.set_index(m.index());
  resp.set_reject(true);
  resp.set_reject_hint(hint);
  resp.set_log_term(log_.term_or_zero(hint));
  send(std::move(resp));
}

void Raft::handle_heartbeat(const Message& m) {
  log_.commit_to(m.commit());
  Message resp;
  resp.set_to(m.from());
  resp.set_type(raftpb::MSG_HEARTBEAT_RESP);
  resp.set_context(m.context());
  send(std::move(resp));
}

void Raft::handle_snapshot(const Message& m) {
  Message resp;
  resp.set_to(m.from());
  resp.set_type(raftpb::MSG_APP_RESP);
  if (restore(m.snapshot())) {
    resp.set_index(log_.last_index());
  } else {
    resp.set_index(log_.committed());
  }
  send(std::move(resp));
}

bool Raft::restore(const Snapshot& snap) {
  const auto& meta = snap.metadata();
  if (meta.index() <= log_.committed()) {
    return false;
  }
  if (state_ != StateRole::kFollower) {
    become_follower(term_ + 1, kNone);
    return false;
  }
  auto conf = Configuration::from_conf_state(meta.conf_state());
  if (!conf.is_ok() || !conf->contains(id_)) {
    return false;  // a malformed configuration, or one we are not in
  }
  if (log_.match_term(meta.index(), meta.term())) {
    // We already have the entries: just move the commit index forward.
    log_.commit_to(meta.index());
    return false;
  }
  log_.restore(snap);
  reset_progress(*conf);
  for (auto& [id, pr] : prs_) {
    if (id == id_) {
      pr.match = log_.last_index();
    }
  }
  return true;
}

// ---- replication

void Raft::send(Message m) {
  if (m.from() == kNone) {
    m.set_from(id_);  // forwarded proposals and transfers keep their origin
  }
  MessageType t = m.type();
  if (t == raftpb::MSG_VOTE || t == raftpb::MSG_VOTE_RESP || t == raftpb::MSG_PRE_VOTE ||
      t == raftpb::MSG_PRE_VOTE_RESP) {
    if (m.term() == 0) {
      throw std::logic_error("raft: vote message without a term");
    }
  } else if (t != raftpb::MSG_PROP && t != raftpb::MSG_READ_INDEX && t != raftpb::MSG_TRANSFER_LEADER) {
    // Forwarded proposals, reads and transfers keep term 0 (local to the receiver).
    m.set_term(term_);
  }
  msgs_.push_back(std::move(m));
}

bool Raft::maybe_send_append(std::uint64_t to, bool send_if_empty) {
  auto it = prs_.find(to);
  if (it == prs_.end()) {
    return false;
  }
  Progress& pr = it->second;
  if (pr.is_paused()) {
    return false;
  }
  Message m;
  m.set_to(to);
  auto prev_term = log_.term(pr.next - 1);
  auto ents = log_.entries(pr.next, max_msg_size_);
  if (prev_term.is_ok() && ents.is_ok() && ents->empty() && !send_if_empty) {
    return false;
  }
  if (!prev_term.is_ok() || !ents.is_ok()) {
    // The entries the follower needs are compacted: send a snapshot.
    if (!pr.recent_active) {
      return false;
    }
    auto snap = log_.snapshot();
    if (!snap.is_ok()) {
      if (is_snapshot_temporarily_unavailable(snap.status())) {
        return false;
      }
      throw std::runtime_error("raft: cannot get a snapshot: " + snap.status().to_string());
    }
    if (snap->metadata().index() == 0) {
      throw std::logic_error("raft: need a non-empty snapshot");
    }
    // A snapshot older than the change that added `to` does not name it: the follower
    // would ignore it (see restore) and be probed again from the same place for ever.
    // Wait for the storage to offer a newer one.
    auto snap_conf = Configuration::from_conf_state(snap->metadata().conf_state());
    if (!snap_conf.is_ok() || !snap_conf->contains(to)) {
      return false;
    }
    m.set_type(raftpb::MSG_SNAP);
    *m.mutable_snapshot() = *snap;
    pr.become_snapshot(snap->metadata().index());
  } else {
    m.set_type(raftpb::MSG_APP);
    m.set_index(pr.next - 1);
    m.set_log_term(*prev_term);
    for (auto& e : *ents) {
      *m.add_entries() = std::move(e);
    }
    m.set_commit(log_.committed());
    std::uint64_t last = m.entries_size() > 0 ? m.entries(m.entries_size() - 1).index() : 0;
    pr.sent_entries(static_cast<std::size_t>(m.entries_size()), last);
  }
  send(std::move(m));
  return true;
}

void Raft::bcast_append() {
  commit_unannounced_ = false;
  for (const auto& [id, pr] : prs_) {
    if (id != id_) {
      send_append(id);
    }
  }
}

void Raft::bcast_heartbeat(const std::string& ctx) {
  for (const auto& [id, pr] : prs_) {
    if (id == id_) {
      continue;
    }
    Message m;
    m.set_to(id);
    m.set_type(raftpb::MSG_HEARTBEAT);
    // Never tell a follower to commit past what it is known to have.
    m.set_commit(std::min(pr.match, log_.committed()));
    m.set_context(ctx);
    send(std::move(m));
  }
}

void Raft::send_timeout_now(std::uint64_t to) {
  Message m;
  m.set_to(to);
  m.set_type(raftpb::MSG_TIMEOUT_NOW);
  send(std::move(m));
}

bool Raft::append_entries(std::vector<Entry> es) {
  std::uint64_t li = log_.last_index();
  for (std::size_t i = 0; i < es.size(); ++i) {
    es[i].set_term(term_);
    es[i].set_index(li + 1 + i);
  }
  li = log_.append(std::move(es));
  // The leader counts its own log towards the quorum; the application persists these
  // entries before sending this Ready's messages or applying them.
  if (auto it = prs_.find(id_); it != prs_.end()) {
    it->second.maybe_update(li);
  }
  maybe_commit();
  return true;
}

bool Raft::maybe_commit() {
  if (conf_.voters.empty()) {
    return false;
  }
  std::uint64_t mci = conf_.committed([this](std::uint64_t id) {
    auto it = prs_.find(id);
    return it == prs_.end() ? std::uint64_t{0} : it->second.match;
  });
  if (kTestSwitches && bugs_.commit_previous_term_by_counting) {
    // BUG (test only): commits an entry of an earlier term by counting replicas.
    if (mci > log_.committed()) {
      log_.commit_to(mci);
      return true;
    }
    return false;
  }
  return log_.maybe_commit(mci, term_);
}

bool Raft::committed_entry_in_current_term() const {
  return log_.term_or_zero(log_.committed()) == term_;
}

bool Raft::quorum_active() {
  std::set<std::uint64_t> active;
  for (auto& [id, pr] : prs_) {
    if (id == id_) {
      active.insert(id);
      continue;
    }
    if (pr.recent_active) {
      active.insert(id);
    }
    pr.recent_active = false;
  }
  return conf_.has_quorum(active);
}

// ---- membership

ConfState Raft::apply_conf_change(const ConfChange& cc) {
  auto applied = apply_conf_change(to_v2(cc));
  return applied.is_ok() ? *applied : conf_state();
}

Result<ConfState> Raft::apply_conf_change(const raftpb::ConfChangeV2& cc) {
  RDB_ASSIGN_OR_RETURN(Configuration next, apply_change(conf_, cc));
  switch_configuration(next);
  if (lead_transferee_ != kNone && !conf_.is_voter(lead_transferee_)) {
    abort_leader_transfer();
  }
  if (state_ == StateRole::kLeader) {
    if (!conf_.is_voter(id_)) {
      // A leader that is no voter any more (removed, or demoted when the joint
      // configuration it led out of ended) steps down.
      become_follower(term_, kNone);
    } else if (maybe_commit()) {
      // A different quorum may commit what was waiting.
      bcast_append();
    }
  }
  return conf_state();
}

void Raft::maybe_leave_joint() {
  // The leader leaves an auto-leave joint configuration once the change that
  // entered it is applied; a new leader does so once it applied its log.
  if (state_ != StateRole::kLeader || !conf_.joint() || !conf_.auto_leave || pending_conf_index_ > log_.applied() ||
      lead_transferee_ != kNone) {
    return;
  }
  Entry e;
  e.set_type(raftpb::ENTRY_CONF_CHANGE_V2);
  e.set_data(raftpb::ConfChangeV2().SerializeAsString());
  pending_conf_index_ = log_.last_index() + 1;
  if (append_entries({std::move(e)})) {
    bcast_append();
  }
}

Status Raft::check_proposed_conf_change(const Entry& e) const {
  raftpb::ConfChangeV2 cc;
  if (e.type() == raftpb::ENTRY_CONF_CHANGE) {
    ConfChange v1;
    if (!v1.ParseFromString(e.data())) {
      return Status::invalid_argument("raft: conf change dropped: it does not parse");
    }
    cc = to_v2(v1);
  } else if (!cc.ParseFromString(e.data())) {
    return Status::invalid_argument("raft: conf change dropped: it does not parse");
  }
  // Checked against the configuration it will apply to: no other change is pending.
  auto next = apply_change(conf_, cc);
  if (!next.is_ok()) {
    return Status::invalid_argument("raft: " + next.status().message());
  }
  return Status::ok();
}

}  // namespace rdb::raft
