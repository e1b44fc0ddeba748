#include "pd/pd_group.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <random>
#include <set>

#include "common/address.h"
#include "common/parse.h"

namespace rdb {
namespace {

// PD's engine holds one Raft group; its state lives under this group id.
constexpr std::uint64_t kGroupId = 1;
constexpr const char* kTsoBoundKey = "tso_bound_ms";  // the same keys a PD before groups used
constexpr const char* kIdBoundKey = "id_bound";
constexpr const char* kGcSafePointKey = "gc_safe_point";
constexpr const char* kMemberPrefix = "pd_member/";

std::string member_key(std::uint64_t id) {
  return fmt::format("{}{:020}", kMemberPrefix, id);
}

std::uint64_t fnv1a(std::string_view text, std::uint64_t hash = 14695981039346656037ull) {
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  return hash;
}

Status unavailable_not_leader() {
  return Status::unavailable("this PD member is not the leader");
}

// Names go into --initial-cluster lists and logs: letters, digits, '.', '_', '-'; 1-64 of them.
Status check_member_name(std::string_view name) {
  bool ok = !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '_' || c == '-';
  });
  return ok ? Status::ok()
            : Status::invalid_argument(
                  fmt::format("PD member name '{}' is not 1-64 letters, digits, '.', '_' or '-'", name.substr(0, 80)));
}

}  // namespace

std::uint64_t pd_member_id(std::string_view name) {
  std::uint64_t id = fnv1a(name);
  return id == 0 ? 1 : id;
}

Result<std::vector<pdpb::Member>> parse_initial_cluster(std::string_view text) {
  std::vector<pdpb::Member> out;
  std::set<std::string> names;
  std::set<std::string> addresses;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    std::size_t comma = text.find(',', pos);
    std::string_view item = text.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
    pos = comma == std::string_view::npos ? text.size() + 1 : comma + 1;
    std::size_t eq = item.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      return Status::invalid_argument(fmt::format("initial cluster entry '{}' is not NAME=HOST:PORT", item));
    }
    std::string name(item.substr(0, eq));
    RDB_RETURN_IF_ERROR(check_member_name(name));
    RDB_ASSIGN_OR_RETURN(HostPort hp, parse_host_port(item.substr(eq + 1)));
    std::string address = hp.to_string();
    if (!names.insert(name).second) {
      return Status::invalid_argument(fmt::format("initial cluster names member '{}' twice", name));
    }
    if (!addresses.insert(address).second) {
      return Status::invalid_argument(fmt::format("initial cluster gives address {} to two members", address));
    }
    pdpb::Member m;
    m.set_name(name);
    m.set_member_id(pd_member_id(name));
    m.set_address(address);
    out.push_back(std::move(m));
  }
  std::set<std::uint64_t> ids;
  for (const auto& m : out) {
    if (!ids.insert(m.member_id()).second) {
      return Status::invalid_argument(fmt::format("member name '{}' collides with another's id; rename it", m.name()));
    }
  }
  return out;
}

std::uint64_t cluster_id_of(const std::vector<pdpb::Member>& members) {
  std::vector<std::string> items;
  items.reserve(members.size());
  for (const auto& m : members) {
    items.push_back(m.name() + "=" + m.address());
  }
  std::sort(items.begin(), items.end());
  std::uint64_t hash = 14695981039346656037ull;
  for (const auto& item : items) {
    hash = fnv1a(item + ",", hash);
  }
  // Clear the top bit so that the id prints the same as a signed number in any tool.
  hash &= ~(std::uint64_t{1} << 63);
  return hash == 0 ? 1 : hash;
}

PdGroup::PdGroup(StorageEngine& engine, ClusterMeta& meta, PdTransport& transport, PdGroupOptions options)
    : engine_(engine),
      meta_(meta),
      transport_(transport),
      options_(std::move(options)),
      self_id_(pd_member_id(options_.name)),
      next_proposal_id_(std::random_device{}() | (std::uint64_t{std::random_device{}()} << 32)) {}

Result<std::unique_ptr<PdGroup>> PdGroup::open(StorageEngine& engine, ClusterMeta& meta, PdTransport& transport,
                                               PdGroupOptions options) {
  RDB_RETURN_IF_ERROR(check_member_name(options.name));
  if (options.tick_ms == 0 || options.election_ticks <= options.heartbeat_ticks || options.heartbeat_ticks <= 0) {
    return Status::invalid_argument("PD raft timing: tick must be positive and election ticks above heartbeat ticks");
  }
  std::unique_ptr<PdGroup> group(new PdGroup(engine, meta, transport, std::move(options)));
  RDB_RETURN_IF_ERROR(group->load());
  group->thread_ = std::thread([g = group.get()] { g->run(); });
  return group;
}

Status PdGroup::load() {
  RDB_ASSIGN_OR_RETURN(storage_, PeerStorage::open(engine_, kGroupId));
  for (const char* key : {kTsoBoundKey, kIdBoundKey, kGcSafePointKey}) {
    RDB_ASSIGN_OR_RETURN(auto text, engine_.meta_get(key));
    std::uint64_t value = 0;
    if (text) {
      RDB_ASSIGN_OR_RETURN(value, parse_u64(*text, fmt::format("persisted '{}'", key)));
    }
    bound_for(key) = value;
  }
  RDB_ASSIGN_OR_RETURN(auto stored_members, engine_.meta_scan_prefix(kMemberPrefix));
  for (const auto& kv : stored_members) {
    pdpb::Member m;
    if (!m.ParseFromString(kv.value) || m.member_id() == 0) {
      return ServerStatus::corruption(fmt::format("persisted PD member record '{}' does not parse", kv.key));
    }
    members_[m.member_id()] = m;
  }
  bool fresh =
      storage_->hard_state().term() == 0 && storage_->conf_state().voters_size() == 0 && storage_->applied_index() == 0;
  if (members_.empty()) {
    // A new data directory (or one from before PD groups): the initial members, who
    // are also where a joining member finds the others.
    for (const auto& m : options_.initial_members) {
      members_[m.member_id()] = m;
      if (!options_.join_existing) {
        RDB_RETURN_IF_ERROR(engine_.meta_put(member_key(m.member_id()), m.SerializeAsString()));
      }
    }
  }
  if (fresh && !options_.join_existing) {
    if (members_.count(self_id_) == 0) {
      return Status::invalid_argument(fmt::format("member '{}' is not in the initial cluster", options_.name));
    }
    raft::ConfState cs;
    for (const auto& [id, m] : members_) {
      cs.add_voters(id);
    }
    // As a snapshot position, not an empty log: a member that joins later must be sent a
    // snapshot to learn the initial members (entries from index 1 would only name those
    // who joined since, and it would think itself a group of one).
    WriteBatch wb;
    storage_->bootstrap(cs, wb);
    RDB_RETURN_IF_ERROR(engine_.write(wb, true));
  }
  storage_->set_snapshot_builder([this] { return build_snapshot(); });

  raft::Config config;
  config.id = self_id_;
  config.election_tick = options_.election_ticks;
  config.heartbeat_tick = options_.heartbeat_ticks;
  config.applied = storage_->applied_index();
  config.check_quorum = true;
  config.pre_vote = true;
  config.seed = self_id_ ^ static_cast<std::uint64_t>(Clock::now().time_since_epoch().count());
  RDB_ASSIGN_OR_RETURN(node_, raft::RawNode::create(config, *storage_));
  applied_ = storage_->applied_index();
  if (node_->raft().configuration().only_voter_is(self_id_)) {
    (void)node_->campaign();  // a group of one need not wait out an election timeout
  }
  return Status::ok();
}

PdGroup::~PdGroup() {
  {
    std::lock_guard lock(inbox_mu_);
    stop_ = true;
  }
  inbox_cv_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
  fail_all_waiters(Status::unavailable("the PD member is shutting down"));
}

void PdGroup::set_self_address(std::string address) {
  std::lock_guard lock(state_mu_);
  self_address_ = std::move(address);
}

// ---- requests from other threads

Status PdGroup::submit(Inbound in, Clock::time_point deadline) {
  std::future<Status> done;
  {
    std::lock_guard lock(waiters_mu_);
    in.proposal_id = next_proposal_id_++;
    done = waiters_[in.proposal_id].get_future();
  }
  std::uint64_t id = in.proposal_id;
  {
    std::lock_guard lock(inbox_mu_);
    if (stop_) {
      finish(id, Status::unavailable("the PD member is shutting down"));
    } else {
      inbox_.push_back(std::move(in));
    }
  }
  inbox_cv_.notify_one();
  if (done.wait_until(deadline) != std::future_status::ready) {
    std::lock_guard lock(waiters_mu_);
    if (waiters_.erase(id) > 0) {
      return Status::deadline_exceeded("the PD group did not apply the change in time; it may still apply");
    }
  }
  return done.get();
}

void PdGroup::finish(std::uint64_t proposal_id, Status status) {
  std::lock_guard lock(waiters_mu_);
  auto it = waiters_.find(proposal_id);
  if (it != waiters_.end()) {
    it->second.set_value(std::move(status));
    waiters_.erase(it);
  }
}

void PdGroup::fail_all_waiters(const Status& status) {
  std::lock_guard lock(waiters_mu_);
  for (auto& [id, promise] : waiters_) {
    promise.set_value(status);
  }
  waiters_.clear();
}

Status PdGroup::propose(pdpb::PdCommand command, Clock::time_point deadline) {
  if (!is_leader()) {
    return unavailable_not_leader();
  }
  command.set_proposer(self_id_);
  // submit() numbers the proposal; the driver writes the number into the command.
  Inbound in{Inbound::Kind::kProposal, {}, command.SerializeAsString(), {}, 0};
  return submit(std::move(in), deadline);
}

Status PdGroup::add_member(const pdpb::Member& member, Clock::time_point deadline) {
  RDB_RETURN_IF_ERROR(check_member_name(member.name()));
  RDB_ASSIGN_OR_RETURN(HostPort hp, parse_host_port(member.address()));
  pdpb::Member m = member;
  m.set_member_id(pd_member_id(member.name()));
  m.set_address(hp.to_string());
  {
    std::lock_guard lock(state_mu_);
    for (const auto& [id, known] : members_) {
      if (id == m.member_id()) {
        return Status::invalid_argument(fmt::format("PD member '{}' already exists", m.name()));
      }
      if (known.address() == m.address()) {
        return Status::invalid_argument(
            fmt::format("address {} already belongs to PD member '{}'", m.address(), known.name()));
      }
    }
  }
  if (!is_leader()) {
    return unavailable_not_leader();
  }
  Inbound in{Inbound::Kind::kConfChange, {}, {}, {}, 0};
  auto* change = in.conf_change.add_changes();
  change->set_type(raftpb::ADD_NODE);
  change->set_node_id(m.member_id());
  pdpb::PdMemberChange ctx;
  *ctx.mutable_member() = m;
  in.data = ctx.SerializeAsString();  // the context, completed with the proposal id in the driver
  return submit(std::move(in), deadline);
}

Status PdGroup::remove_member(const std::string& name, Clock::time_point deadline) {
  auto m = member_by_name(name);
  if (!m) {
    return Status::invalid_argument(fmt::format("there is no PD member named '{}'", name));
  }
  if (members().size() == 1) {
    return Status::invalid_argument(fmt::format("'{}' is the PD group's last member; it cannot be removed", name));
  }
  if (!is_leader()) {
    return unavailable_not_leader();
  }
  Inbound in{Inbound::Kind::kConfChange, {}, {}, {}, 0};
  auto* change = in.conf_change.add_changes();
  change->set_type(raftpb::REMOVE_NODE);
  change->set_node_id(m->member_id());
  pdpb::PdMemberChange ctx;
  *ctx.mutable_member() = *m;
  ctx.set_remove(true);
  in.data = ctx.SerializeAsString();
  return submit(std::move(in), deadline);
}

Status PdGroup::transfer_leadership(Clock::time_point deadline) {
  if (!is_leader()) {
    return unavailable_not_leader();
  }
  {
    std::lock_guard lock(inbox_mu_);
    inbox_.push_back(Inbound{Inbound::Kind::kTransfer, {}, {}, {}, 0});
  }
  inbox_cv_.notify_one();
  while (Clock::now() < deadline) {
    if (!is_leader()) {
      return Status::ok();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return Status::deadline_exceeded("no other PD member took the leadership in time");
}

std::size_t PdGroup::receive(std::vector<raftpb::Message> messages) {
  std::size_t queued = 0;
  {
    std::lock_guard known(state_mu_);
    std::lock_guard lock(inbox_mu_);
    for (auto& m : messages) {
      // Only messages for this member, from a member it knows (a snapshot teaches a new
      // member the rest), and only while the queue has room: Raft resends.
      if (m.to() != self_id_ || m.from() == self_id_ || members_.count(m.from()) == 0 || inbox_.size() >= kMaxInbox ||
          stop_) {
        continue;
      }
      inbox_.push_back(Inbound{Inbound::Kind::kMessage, std::move(m), {}, {}, 0});
      ++queued;
    }
  }
  if (queued > 0) {
    inbox_cv_.notify_one();
  }
  return queued;
}

// ---- what other threads read

std::uint64_t PdGroup::serving_term() const {
  std::lock_guard lock(state_mu_);
  auto now = Clock::now();
  if (!leader_ || transferring_ || applied_ < term_start_index_ || now < serve_from_ || now >= lease_until_) {
    return 0;
  }
  return term_;
}

bool PdGroup::is_leader() const {
  std::lock_guard lock(state_mu_);
  return leader_;
}

std::vector<pdpb::Member> PdGroup::members_locked() const {
  std::vector<pdpb::Member> out;
  for (const auto& [id, m] : members_) {
    out.push_back(m);
    if (id == self_id_ && !self_address_.empty()) {
      out.back().set_address(self_address_);
    }
  }
  std::sort(out.begin(), out.end(), [](const pdpb::Member& a, const pdpb::Member& b) { return a.name() < b.name(); });
  return out;
}

std::vector<pdpb::Member> PdGroup::members() const {
  std::lock_guard lock(state_mu_);
  return members_locked();
}

std::optional<pdpb::Member> PdGroup::member_by_name(std::string_view name) const {
  for (auto& m : members()) {
    if (m.name() == name) {
      return m;
    }
  }
  return std::nullopt;
}

std::optional<pdpb::Member> PdGroup::leader() const {
  std::lock_guard lock(state_mu_);
  for (auto& m : members_locked()) {
    if (m.member_id() == leader_id_ && leader_id_ != 0) {
      return m;
    }
  }
  return std::nullopt;
}

std::uint64_t PdGroup::tso_bound_ms() const {
  std::lock_guard lock(state_mu_);
  return tso_bound_ms_;
}

std::uint64_t PdGroup::gc_safe_point() const {
  std::lock_guard lock(state_mu_);
  return gc_safe_point_;
}

std::uint64_t PdGroup::id_bound() const {
  std::lock_guard lock(state_mu_);
  return id_bound_;
}

std::uint64_t PdGroup::applied_index() const {
  std::lock_guard lock(state_mu_);
  return applied_;
}

// ---- the driver thread

void PdGroup::run() {
  const auto tick = std::chrono::milliseconds(options_.tick_ms);
  auto next_tick = Clock::now() + tick;
  while (true) {
    std::vector<Inbound> work;
    {
      std::unique_lock lock(inbox_mu_);
      inbox_cv_.wait_until(lock, next_tick, [&] { return stop_ || !inbox_.empty(); });
      if (stop_) {
        return;
      }
      work.swap(inbox_);
    }
    for (auto& in : work) {
      handle(in);
    }
    auto now = Clock::now();
    if (now >= next_tick) {
      node_->tick();
      renew_lease();
      next_tick += tick;
      if (next_tick < now) {
        next_tick = now + tick;  // a stall: do not tick in a burst
      }
    }
    while (node_->has_ready()) {
      handle_ready();
    }
  }
}

void PdGroup::handle(Inbound& in) {
  switch (in.kind) {
    case Inbound::Kind::kMessage: {
      spdlog::trace("PD group: {} from {} term {} index {} log_term {} commit {} reject {}",
                    raftpb::MessageType_Name(in.message.type()), in.message.from(), in.message.term(),
                    in.message.index(), in.message.log_term(), in.message.commit(), in.message.reject());
      if (auto s = node_->step(std::move(in.message)); !s.is_ok()) {
        spdlog::debug("PD group: dropped a message: {}", s.message());
      }
      return;
    }
    case Inbound::Kind::kProposal: {
      pdpb::PdCommand cmd;
      cmd.ParseFromString(in.data);
      cmd.set_proposal_id(in.proposal_id);
      if (auto s = node_->propose(cmd.SerializeAsString()); !s.is_ok()) {
        finish(in.proposal_id, node_->raft().role() == raft::StateRole::kLeader ? s : unavailable_not_leader());
      }
      return;
    }
    case Inbound::Kind::kConfChange: {
      pdpb::PdMemberChange ctx;
      ctx.ParseFromString(in.data);
      ctx.set_proposer(self_id_);
      ctx.set_proposal_id(in.proposal_id);
      in.conf_change.set_context(ctx.SerializeAsString());
      if (auto s = node_->propose_conf_change(in.conf_change); !s.is_ok()) {
        finish(in.proposal_id, s);
      }
      return;
    }
    case Inbound::Kind::kTransfer: {
      // To the voter whose log matches best.
      std::uint64_t best = 0;
      std::uint64_t best_match = 0;
      for (const auto& [id, pr] : node_->raft().progress()) {
        if (id != self_id_ && node_->raft().configuration().is_voter(id) && (best == 0 || pr.match > best_match)) {
          best = id;
          best_match = pr.match;
        }
      }
      if (best != 0) {
        {
          std::lock_guard lock(state_mu_);
          transferring_ = true;  // stop serving now: the transferee may lead before our lease ends
        }
        (void)node_->transfer_leader(best);
      }
      return;
    }
  }
}

void PdGroup::on_soft_state(const raft::SoftState& ss) {
  bool was_leader;
  {
    std::lock_guard lock(state_mu_);
    was_leader = leader_;
    leader_id_ = ss.leader_id;
    leader_ = ss.role == raft::StateRole::kLeader;
    term_ = node_->raft().term();
    transferring_ = false;
    if (leader_ && !was_leader) {
      auto now = Clock::now();
      term_start_index_ = node_->raft().log().last_index();
      bool alone = node_->raft().configuration().only_voter_is(self_id_);
      serve_from_ = alone ? now : now + std::chrono::milliseconds(options_.lease_ms);
      lease_until_ = Clock::time_point{};  // the first lease round (next tick) starts it
      spdlog::info("PD member '{}' leads the PD group (term {})", options_.name, term_);
    }
    if (!leader_) {
      lease_until_ = Clock::time_point{};
    }
  }
  if (was_leader && ss.role != raft::StateRole::kLeader) {
    lease_rounds_.clear();
    spdlog::info("PD member '{}' no longer leads the PD group", options_.name);
    fail_all_waiters(Status::unavailable("the PD leader changed before the change applied; it may still apply"));
  }
}

void PdGroup::renew_lease() {
  if (node_->raft().role() != raft::StateRole::kLeader) {
    return;
  }
  {
    // A transfer the core gave up on: serve again (the lease rounds decide).
    std::lock_guard lock(state_mu_);
    transferring_ = node_->raft().lead_transferee() != 0;
  }
  auto now = Clock::now();
  // Forget rounds that can no longer extend the lease.
  for (auto it = lease_rounds_.begin(); it != lease_rounds_.end();) {
    it = now - it->second > std::chrono::milliseconds(options_.lease_ms) ? lease_rounds_.erase(it) : std::next(it);
  }
  std::uint64_t round = next_lease_round_++;
  std::string ctx(8, '\0');
  for (int i = 0; i < 8; ++i) {
    ctx[i] = static_cast<char>((round >> (8 * i)) & 0xff);
  }
  ctx = "lease:" + ctx;
  if (node_->read_index(ctx).is_ok()) {
    lease_rounds_[round] = now;
  }
}

void PdGroup::handle_ready() {
  raft::Ready rd = node_->ready();
  if (rd.soft_state) {
    on_soft_state(*rd.soft_state);
  }
  WriteBatch wb;
  if (rd.snapshot) {
    if (auto s = restore_snapshot(*rd.snapshot); !s.is_ok()) {
      spdlog::critical("PD group: cannot apply a snapshot: {}", s.message());
      std::abort();
    }
    storage_->apply_snapshot_meta(rd.snapshot->metadata(), wb);
  }
  storage_->save_ready(std::move(rd.entries), rd.hard_state, wb);
  if (!wb.empty()) {
    if (auto s = engine_.write(wb, rd.must_sync || rd.snapshot.has_value()); !s.is_ok()) {
      // Raft's promises (votes, acknowledged entries) rest on this write.
      spdlog::critical("PD group: cannot persist the Raft log: {}", s.message());
      std::abort();
    }
  }
  if (!rd.messages.empty()) {
    std::map<std::uint64_t, std::vector<raftpb::Message>> by_member;
    for (auto& m : rd.messages) {
      by_member[m.to()].push_back(std::move(m));
    }
    auto known = members();
    for (auto& entry : by_member) {
      const std::uint64_t to = entry.first;
      auto it = std::find_if(known.begin(), known.end(), [to](const pdpb::Member& m) { return m.member_id() == to; });
      if (it != known.end()) {
        transport_.send(*it, std::move(entry.second));
      }
    }
  }
  if (!rd.committed_entries.empty()) {
    WriteBatch applied;
    for (const auto& e : rd.committed_entries) {
      apply_entry(e, applied);
    }
    storage_->set_applied(rd.committed_entries.back().index(), applied);
    if (auto s = engine_.write(applied, false); !s.is_ok()) {
      spdlog::critical("PD group: cannot record the applied index: {}", s.message());
      std::abort();
    }
    std::lock_guard lock(state_mu_);
    applied_ = rd.committed_entries.back().index();
  } else if (rd.snapshot) {
    std::lock_guard lock(state_mu_);
    applied_ = rd.snapshot->metadata().index();
  }
  for (const auto& rs : rd.read_states) {
    if (rs.request_ctx.size() != 14 || rs.request_ctx.rfind("lease:", 0) != 0) {
      continue;
    }
    std::uint64_t round = 0;
    for (int i = 0; i < 8; ++i) {
      round |= std::uint64_t{static_cast<unsigned char>(rs.request_ctx[6 + i])} << (8 * i);
    }
    auto it = lease_rounds_.find(round);
    if (it != lease_rounds_.end()) {
      std::lock_guard lock(state_mu_);
      lease_until_ = std::max(lease_until_, it->second + std::chrono::milliseconds(options_.lease_ms));
      lease_rounds_.erase(lease_rounds_.begin(), std::next(it));
    }
  }
  node_->advance(rd);
  maybe_compact();
}

void PdGroup::apply_entry(const raftpb::Entry& e, WriteBatch& wb) {
  if (e.type() == raftpb::ENTRY_CONF_CHANGE_V2) {
    raftpb::ConfChangeV2 cc;
    pdpb::PdMemberChange change;
    if (!cc.ParseFromString(e.data()) || (!cc.context().empty() && !change.ParseFromString(cc.context()))) {
      spdlog::error("PD group: entry {} holds a membership change that does not parse; skipped", e.index());
      return;
    }
    Status s = apply_member_change(cc, change, wb);
    if (change.proposer() == self_id_) {
      finish(change.proposal_id(), s);
    }
    return;
  }
  if (e.type() != raftpb::ENTRY_NORMAL || e.data().empty()) {
    return;  // a new leader's empty entry (V1 changes are never proposed here)
  }
  pdpb::PdCommand cmd;
  if (!cmd.ParseFromString(e.data())) {
    spdlog::error("PD group: entry {} does not parse as a PD command; skipped", e.index());
    return;
  }
  Status s = apply_command(cmd);
  if (cmd.proposer() == self_id_) {
    finish(cmd.proposal_id(), std::move(s));
  }
}

std::uint64_t& PdGroup::bound_for(std::string_view key) {
  if (key == kTsoBoundKey) {
    return tso_bound_ms_;
  }
  return key == kIdBoundKey ? id_bound_ : gc_safe_point_;
}

Status PdGroup::persist_bound(const char* key, std::uint64_t value) {
  std::uint64_t& bound = bound_for(key);
  {
    std::lock_guard lock(state_mu_);
    if (value <= bound) {
      return Status::ok();  // bounds only grow (a replayed entry is older than the state)
    }
  }
  RDB_RETURN_IF_ERROR(engine_.meta_put(key, std::to_string(value)));
  std::lock_guard lock(state_mu_);
  bound = value;
  return Status::ok();
}

Status PdGroup::apply_command(const pdpb::PdCommand& cmd) {
  switch (cmd.command_case()) {
    case pdpb::PdCommand::kPutStore:
      return meta_.put_store(cmd.put_store());
    case pdpb::PdCommand::kBootstrap:
      return meta_.bootstrap(cmd.bootstrap().store(), cmd.bootstrap().region());
    case pdpb::PdCommand::kRegion:
      return meta_.put_region(cmd.region());
    case pdpb::PdCommand::kTsoBoundMs:
      return persist_bound(kTsoBoundKey, cmd.tso_bound_ms());
    case pdpb::PdCommand::kIdBound:
      return persist_bound(kIdBoundKey, cmd.id_bound());
    case pdpb::PdCommand::kGcSafePoint:
      return persist_bound(kGcSafePointKey, cmd.gc_safe_point());
    case pdpb::PdCommand::COMMAND_NOT_SET:
      break;
  }
  return Status::invalid_argument("a PD command with nothing in it");
}

Status PdGroup::apply_member_change(const raftpb::ConfChangeV2& cc, const pdpb::PdMemberChange& change,
                                    WriteBatch& wb) {
  RDB_ASSIGN_OR_RETURN(raft::ConfState cs, node_->apply_conf_change(cc));
  storage_->set_conf_state(cs, wb);
  if (!change.has_member() || change.member().member_id() == 0) {
    return Status::ok();  // leaving a joint configuration: no member record changes
  }
  const pdpb::Member& m = change.member();
  std::lock_guard lock(state_mu_);
  if (change.remove()) {
    wb.del(ColumnFamily::kMeta, member_key(m.member_id()));
    members_.erase(m.member_id());
    spdlog::info("PD group: member '{}' removed", m.name());
    if (m.member_id() == self_id_) {
      spdlog::warn("this member ('{}') was removed from the PD group: it serves nothing now; stop it", m.name());
    }
  } else {
    wb.put(ColumnFamily::kMeta, member_key(m.member_id()), m.SerializeAsString());
    members_[m.member_id()] = m;
    spdlog::info("PD group: member '{}' ({}) added", m.name(), m.address());
  }
  return Status::ok();
}

Result<raft::Snapshot> PdGroup::build_snapshot() const {
  RDB_ASSIGN_OR_RETURN(raft::SnapshotMetadata md, storage_->snapshot_metadata());
  pdpb::PdSnapshot data;
  meta_.fill_snapshot(&data);
  {
    std::lock_guard lock(state_mu_);
    data.set_tso_bound_ms(tso_bound_ms_);
    data.set_id_bound(id_bound_);
    data.set_gc_safe_point(gc_safe_point_);
    for (auto& m : members_locked()) {
      *data.add_members() = std::move(m);
    }
  }
  raft::Snapshot snap;
  *snap.mutable_metadata() = md;
  snap.set_data(data.SerializeAsString());
  return snap;
}

Status PdGroup::restore_snapshot(const raft::Snapshot& snap) {
  pdpb::PdSnapshot data;
  if (!data.ParseFromString(snap.data())) {
    return Status::invalid_argument("a PD snapshot does not parse");
  }
  RDB_RETURN_IF_ERROR(meta_.restore(data));
  RDB_RETURN_IF_ERROR(persist_bound(kTsoBoundKey, data.tso_bound_ms()));
  RDB_RETURN_IF_ERROR(persist_bound(kIdBoundKey, data.id_bound()));
  RDB_RETURN_IF_ERROR(persist_bound(kGcSafePointKey, data.gc_safe_point()));
  WriteBatch wb;
  std::lock_guard lock(state_mu_);
  for (const auto& [id, m] : members_) {
    wb.del(ColumnFamily::kMeta, member_key(id));
  }
  std::map<std::uint64_t, pdpb::Member> members;
  for (const auto& m : data.members()) {
    members[m.member_id()] = m;
    wb.put(ColumnFamily::kMeta, member_key(m.member_id()), m.SerializeAsString());
  }
  RDB_RETURN_IF_ERROR(engine_.write(wb, true));
  members_ = std::move(members);
  return Status::ok();
}

void PdGroup::maybe_compact() {
  std::uint64_t applied = storage_->applied_index();
  std::uint64_t keep = options_.compact_log_after;
  if (applied <= storage_->truncated_index() + keep + keep / 2) {
    return;
  }
  WriteBatch wb;
  if (storage_->compact_to(applied - keep / 2, wb).is_ok()) {
    if (auto s = engine_.write(wb, false); !s.is_ok()) {
      spdlog::warn("PD group: log compaction failed: {}", s.message());
    }
  }
}

}  // namespace rdb
