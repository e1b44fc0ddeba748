#include "raft/raw_node.h"

#include <fmt/format.h>

namespace rdb::raft {

bool hard_state_equal(const HardState& a, const HardState& b) {
  return a.term() == b.term() && a.vote() == b.vote() && a.commit() == b.commit();
}

bool is_empty_hard_state(const HardState& hs) {
  return hard_state_equal(hs, HardState());
}

Result<std::unique_ptr<RawNode>> RawNode::create(const Config& config, const Storage& storage) {
  RDB_ASSIGN_OR_RETURN(auto raft, Raft::create(config, storage));
  return std::unique_ptr<RawNode>(new RawNode(std::move(raft)));
}

RawNode::RawNode(std::unique_ptr<Raft> raft) : raft_(std::move(raft)) {
  prev_soft_ = raft_->soft_state();
  prev_hard_ = raft_->hard_state();
}

Status RawNode::campaign() {
  Message m;
  m.set_type(raftpb::MSG_HUP);
  return raft_->step(std::move(m));
}

Status RawNode::propose(std::string data) {
  Message m;
  m.set_type(raftpb::MSG_PROP);
  m.set_from(raft_->id());
  m.add_entries()->set_data(std::move(data));
  return raft_->step(std::move(m));
}

Status RawNode::propose_batch(std::vector<std::string> data) {
  Message m;
  m.set_type(raftpb::MSG_PROP);
  m.set_from(raft_->id());
  m.mutable_entries()->Reserve(static_cast<int>(data.size()));
  for (auto& d : data) {
    m.add_entries()->set_data(std::move(d));
  }
  return raft_->step(std::move(m));
}

Status RawNode::propose_conf_change(const ConfChange& cc) {
  Message m;
  m.set_type(raftpb::MSG_PROP);
  m.set_from(raft_->id());
  Entry* e = m.add_entries();
  e->set_type(raftpb::ENTRY_CONF_CHANGE);
  e->set_data(cc.SerializeAsString());
  return raft_->step(std::move(m));
}

Status RawNode::propose_conf_change(const raftpb::ConfChangeV2& cc) {
  Message m;
  m.set_type(raftpb::MSG_PROP);
  m.set_from(raft_->id());
  Entry* e = m.add_entries();
  e->set_type(raftpb::ENTRY_CONF_CHANGE_V2);
  e->set_data(cc.SerializeAsString());
  return raft_->step(std::move(m));
}

std::optional<Rejection> RawNode::check(const Message& m) const {
  if (auto bad = check_message_shape(m)) {
    return bad;
  }
  return raft_->check_remote(m);
}

Status RawNode::step(Message m) {
  if (auto bad = check(m)) {
    return Status::invalid_argument(fmt::format("raft: message dropped ({}): {}", bad->reason, bad->detail));
  }
  // Responses from nodes not in the group are ignored (they may be stale).
  bool is_response = m.type() == raftpb::MSG_APP_RESP || m.type() == raftpb::MSG_HEARTBEAT_RESP ||
                     m.type() == raftpb::MSG_VOTE_RESP || m.type() == raftpb::MSG_PRE_VOTE_RESP ||
                     m.type() == raftpb::MSG_READ_INDEX_RESP;
  if (is_response && raft_->progress().count(m.from()) == 0 && m.type() != raftpb::MSG_READ_INDEX_RESP) {
    return Status::ok();
  }
  return raft_->step(std::move(m));
}

Status RawNode::read_index(std::string request_ctx) {
  Message m;
  m.set_type(raftpb::MSG_READ_INDEX);
  m.set_from(raft_->id());
  m.add_entries()->set_data(std::move(request_ctx));
  return raft_->step(std::move(m));
}

Status RawNode::transfer_leader(std::uint64_t transferee) {
  Message m;
  m.set_type(raftpb::MSG_TRANSFER_LEADER);
  m.set_from(transferee);
  return raft_->step(std::move(m));
}

void RawNode::report_unreachable(std::uint64_t id) {
  Message m;
  m.set_type(raftpb::MSG_UNREACHABLE);
  m.set_from(id);
  (void)raft_->step(m);
}

void RawNode::report_snapshot(std::uint64_t id, bool succeeded) {
  Message m;
  m.set_type(raftpb::MSG_SNAP_STATUS);
  m.set_from(id);
  m.set_reject(!succeeded);
  (void)raft_->step(m);
}

bool RawNode::has_ready() const {
  const Raft& r = *raft_;
  if (!(r.soft_state() == prev_soft_)) {
    return true;
  }
  HardState hs = r.hard_state();
  if (!is_empty_hard_state(hs) && !hard_state_equal(hs, prev_hard_)) {
    return true;
  }
  if (r.log().unstable_snapshot()) {
    return true;
  }
  return !r.msgs().empty() || !r.log().unstable_entries().empty() || r.log().has_next_committed_entries() ||
         !r.read_states().empty();
}

Ready RawNode::ready() {
  Raft& r = *raft_;
  Ready rd;
  rd.entries = r.log().unstable_entries();
  if (!rd.entries.empty()) {
    rd.last_entry_index = rd.entries.back().index();
    rd.last_entry_term = rd.entries.back().term();
  }
  rd.committed_entries = r.log().next_committed_entries();
  rd.messages = std::move(r.msgs());
  r.msgs().clear();
  SoftState ss = r.soft_state();
  if (!(ss == prev_soft_)) {
    rd.soft_state = ss;
  }
  HardState hs = r.hard_state();
  if (!hard_state_equal(hs, prev_hard_)) {
    rd.hard_state = hs;
  }
  if (r.log().unstable_snapshot()) {
    rd.snapshot = *r.log().unstable_snapshot();
  }
  rd.read_states = std::move(r.read_states());
  r.read_states().clear();
  rd.must_sync =
      !rd.entries.empty() ||
      (rd.hard_state && (rd.hard_state->term() != prev_hard_.term() || rd.hard_state->vote() != prev_hard_.vote()));
  return rd;
}

void RawNode::advance(const Ready& rd) {
  Raft& r = *raft_;
  if (rd.soft_state) {
    prev_soft_ = *rd.soft_state;
  }
  if (rd.hard_state) {
    prev_hard_ = *rd.hard_state;
  }
  if (rd.snapshot) {
    r.mutable_log().stable_snap_to(rd.snapshot->metadata().index());
    if (rd.snapshot->metadata().index() > r.log().applied()) {
      r.mutable_log().applied_to(rd.snapshot->metadata().index());
    }
  }
  if (!rd.committed_entries.empty()) {
    r.mutable_log().applied_to(rd.committed_entries.back().index());
    r.maybe_leave_joint();
  }
  if (rd.last_entry_index != 0) {
    r.mutable_log().stable_to(rd.last_entry_index, rd.last_entry_term);
  }
}

}  // namespace rdb::raft
