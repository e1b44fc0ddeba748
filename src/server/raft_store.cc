#include "server/raft_store.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>

namespace rdb {
namespace {

// Regions start at this log index and term, so any peer added later needs a snapshot.
constexpr std::uint64_t kInitLogIndex = 5;
constexpr std::uint64_t kInitLogTerm = 5;

// Above every valid key (keys are at most 8 KiB): the end of an unbounded range.
const std::string& max_key() {
  static const std::string k(8 * 1024 + 1, '\xff');
  return k;
}

std::string range_end(const metapb::Region& r) {
  return r.end_key().empty() ? max_key() : r.end_key();
}

bool key_in_region(const std::string& key, const metapb::Region& r) {
  return key >= r.start_key() && (r.end_key().empty() || key < r.end_key());
}

std::uint64_t checksum_add(std::uint64_t h, const std::string& s) {
  for (unsigned char c : s) {  // FNV-1a
    h = (h ^ c) * 1099511628211ULL;
  }
  return (h ^ 0xff) * 1099511628211ULL;
}

kvrpc::RegionError busy(const std::string& why) {
  kvrpc::RegionError e;
  e.set_message(why);
  e.mutable_server_is_busy()->set_reason(why);
  e.mutable_server_is_busy()->set_backoff_ms(50);
  return e;
}

raft::ConfState conf_state_of(const metapb::Region& r) {
  raft::ConfState cs;
  for (const auto& p : r.peers()) {
    if (p.is_learner()) {
      cs.add_learners(p.id());
    } else {
      cs.add_voters(p.id());
    }
  }
  return cs;
}

// Wraps a callback so that it is answered exactly once: if the task holding it is
// dropped without running (the store is stopping), `if_dropped` is passed to it.
// Callers on gRPC's callback API rely on that to finish their calls.
template <typename Callback, typename Value>
std::shared_ptr<Callback> answered_once(Callback cb, Value if_dropped) {
  return std::shared_ptr<Callback>(new Callback(std::move(cb)), [v = std::move(if_dropped)](Callback* c) mutable {
    if (*c) {
      (*c)(std::move(v));
    }
    delete c;
  });
}

// Takes the callback out of an answered_once wrapper, which then answers nothing.
template <typename Callback>
Callback take(Callback& held) {
  Callback cb = std::move(held);
  held = nullptr;
  return cb;
}

}  // namespace

RaftStore::Metrics::Metrics(MetricsRegistry& r)
    : proposals(r.counter("rdb_raft_proposals_total", "Writes proposed to Raft by this store's leaders")),
      proposals_refused(r.counter("rdb_raft_proposals_refused_total",
                                  "Proposals refused before entering the log (not leader, busy, bad epoch)")),
      applied_entries(
          r.counter("rdb_raft_applied_entries_total", "Committed log entries applied to the state machine")),
      messages_sent(r.counter("rdb_raft_messages_sent_total", "Raft messages handed to the transport")),
      persists(r.counter("rdb_raft_persist_total", "Writes of Raft state (log, hard state) for a batch of Readies")),
      synced_persists(r.counter("rdb_raft_fsync_total", "Raft state writes that were fsync'd")),
      persist_seconds(r.histogram("rdb_raft_persist_duration_seconds",
                                  "Time to write (and fsync, when required) one batch of Raft state")),
      persist_entries(
          r.histogram("rdb_raft_persist_batch_entries", "Log entries per Raft state write (group commit)", "", 1.0)),
      persist_regions(r.histogram("rdb_raft_persist_batch_regions", "Regions per Raft state write", "", 1.0)),
      apply_seconds(r.histogram("rdb_raft_apply_duration_seconds", "Time to apply one batch of committed entries")),
      apply_entries(r.histogram("rdb_raft_apply_batch_entries", "Committed entries applied per batch", "", 1.0)),
      snapshots_applied(r.counter("rdb_raft_snapshots_applied_total", "Snapshots installed on this store")) {}

RaftStore::RaftStore(StorageEngine& engine, const RaftStoreConfig& config, RaftTransport& transport,
                     MetricsRegistry* metrics)
    : engine_(engine),
      own_metrics_(metrics == nullptr ? std::make_unique<MetricsRegistry>() : nullptr),
      metrics_(metrics != nullptr ? *metrics : *own_metrics_),
      config_(config),
      transport_(transport),
      applier_(engine) {
  register_gauges(metrics != nullptr ? *metrics : *own_metrics_);
}

void RaftStore::register_gauges(MetricsRegistry& registry) {
  auto sum = [this](auto field) {
    double total = 0;
    for (const auto& r : regions()) {
      total += field(r);
    }
    return total;
  };
  registry.gauge("rdb_raft_regions", "Region replicas on this store",
                 [sum] { return sum([](const RegionStatus&) { return 1.0; }); });
  registry.gauge("rdb_raft_leaders", "Regions this store leads",
                 [sum] { return sum([](const RegionStatus& r) { return r.is_leader ? 1.0 : 0.0; }); });
  registry.gauge("rdb_raft_apply_lag_entries", "Committed but not yet applied entries, summed over regions", [sum] {
    return sum([](const RegionStatus& r) {
      return r.commit_index > r.applied_index ? static_cast<double>(r.commit_index - r.applied_index) : 0.0;
    });
  });
}

RaftStore::~RaftStore() {
  stop();
}

Status RaftStore::create_peer(const metapb::Region& region, const metapb::Peer& self, bool fresh) {
  auto peer = std::make_unique<Peer>();
  peer->region = region;
  peer->self = self;
  RDB_ASSIGN_OR_RETURN(peer->storage, PeerStorage::open(engine_, region.id()));
  if (fresh) {
    // Bootstrap: the initial configuration is a snapshot position at index 5.
    WriteBatch wb;
    raft::SnapshotMetadata meta;
    meta.set_index(kInitLogIndex);
    meta.set_term(kInitLogTerm);
    *meta.mutable_conf_state() = conf_state_of(region);
    peer->storage->apply_snapshot_meta(meta, wb);
    raft::HardState hs;
    hs.set_term(kInitLogTerm);
    hs.set_commit(kInitLogIndex);
    peer->storage->set_hard_state(hs, wb);
    wb.put(ColumnFamily::kRaft, PeerStorage::region_state_key(region.id()), region.SerializeAsString());
    RDB_RETURN_IF_ERROR(engine_.write(wb, true));
  }
  Peer* raw = peer.get();
  peer->storage->set_snapshot_builder([this, raw] { return build_snapshot(*raw); });
  raft::Config c;
  c.id = self.id();
  c.election_tick = config_.election_ticks;
  c.heartbeat_tick = config_.heartbeat_ticks;
  c.applied = peer->storage->applied_index();
  c.pre_vote = true;
  c.check_quorum = true;
  c.max_size_per_msg = 1 << 20;
  c.max_inflight_msgs = 256;
  c.seed = config_.seed ^ (region.id() * 31 + self.id());
  c.read_only_option = config_.lease_reads ? raft::ReadOnlyOption::kLeaseBased : raft::ReadOnlyOption::kSafe;
  RDB_ASSIGN_OR_RETURN(peer->node, raft::RawNode::create(c, *peer->storage));
  bool sole_voter = region.peers_size() == 1 && region.peers(0).id() == self.id();
  if (sole_voter && peer->storage->applied_index() >= kInitLogIndex) {
    (void)peer->node->campaign();  // nobody else can be leader: do not wait a timeout
  }
  peers_[region.id()] = std::move(peer);
  return Status::ok();
}

Status RaftStore::start(const std::optional<metapb::Region>& bootstrap) {
  auto [start, end] = PeerStorage::region_state_range();
  RDB_ASSIGN_OR_RETURN(auto states, engine_.scan_cf(ColumnFamily::kRaft, start, end, 0));
  for (const auto& kv : states) {
    // Only region-state keys: 0x01 + 8 bytes id + 0x04.
    if (kv.key.size() != 10 || kv.key[9] != 0x04) {
      continue;
    }
    metapb::Region region;
    if (!region.ParseFromString(kv.value)) {
      return Status::corruption(
          fmt::format("region state {} does not parse", PeerStorage::region_id_of_state_key(kv.key)));
    }
    std::optional<metapb::Peer> self;
    for (const auto& p : region.peers()) {
      if (p.store_id() == config_.store_id) {
        self = p;
      }
    }
    if (!self) {
      continue;  // this store's peer was removed from the region
    }
    RDB_RETURN_IF_ERROR(create_peer(region, *self, false));
  }
  if (peers_.empty() && bootstrap) {
    std::optional<metapb::Peer> self;
    for (const auto& p : bootstrap->peers()) {
      if (p.store_id() == config_.store_id) {
        self = p;
      }
    }
    if (!self) {
      return Status::invalid_argument(
          fmt::format("bootstrap region {} has no peer on store {}", bootstrap->id(), config_.store_id));
    }
    RDB_RETURN_IF_ERROR(create_peer(*bootstrap, *self, true));
  }
  refresh_status();
  thread_ = std::thread([this] { run(); });
  return Status::ok();
}

void RaftStore::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) {
      return;
    }
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
}

void RaftStore::post(std::function<void()> task) {
  {
    std::lock_guard lock(mu_);
    if (!stopping_) {
      tasks_.push_back(std::move(task));
      task = nullptr;
    }
  }
  if (task) {
    return;  // stopping: the task is dropped here, outside the lock (see propose())
  }
  cv_.notify_one();
}

RaftStore::Peer* RaftStore::find_peer(std::uint64_t region_id) {
  auto it = peers_.find(region_id);
  return it == peers_.end() || it->second->removed ? nullptr : it->second.get();
}

std::optional<metapb::Peer> RaftStore::peer_by_id(const metapb::Region& region, std::uint64_t peer_id) const {
  for (const auto& p : region.peers()) {
    if (p.id() == peer_id) {
      return p;
    }
  }
  return std::nullopt;
}

kvrpc::RegionError RaftStore::not_leader(const Peer& peer) const {
  kvrpc::RegionError e;
  e.set_message(fmt::format("peer {} of region {} is not the leader", peer.self.id(), peer.region.id()));
  e.mutable_not_leader()->set_region_id(peer.region.id());
  if (auto leader = peer_by_id(peer.region, peer.node->raft().leader())) {
    *e.mutable_not_leader()->mutable_leader() = *leader;
  }
  return e;
}

std::optional<kvrpc::RegionError> RaftStore::check_context(Peer* peer, std::uint64_t region_id,
                                                           const kvrpc::Context& ctx,
                                                           const std::vector<std::string>& keys) const {
  kvrpc::RegionError e;
  if (peer == nullptr) {
    e.set_message(fmt::format("region {} is not on store {}", region_id, config_.store_id));
    e.mutable_region_not_found()->set_region_id(region_id);
    return e;
  }
  const auto& have = peer->region.region_epoch();
  const auto& want = ctx.region_epoch();
  if (have.conf_ver() != want.conf_ver() || have.version() != want.version()) {
    e.set_message(fmt::format("region {} epoch is ({}, {}), request has ({}, {})", region_id, have.conf_ver(),
                              have.version(), want.conf_ver(), want.version()));
    *e.mutable_epoch_not_match()->add_current_regions() = peer->region;
    return e;
  }
  for (const auto& k : keys) {
    if (!key_in_region(k, peer->region)) {
      e.set_message(fmt::format("key is outside region {}", region_id));
      auto* kn = e.mutable_key_not_in_region();
      kn->set_key(k);
      kn->set_region_id(region_id);
      kn->set_start_key(peer->region.start_key());
      kn->set_end_key(peer->region.end_key());
      return e;
    }
  }
  if (peer->node->raft().role() != raft::StateRole::kLeader) {
    return not_leader(*peer);
  }
  return std::nullopt;
}

void RaftStore::propose(const kvrpc::Context& ctx, std::vector<std::string> keys, raft_serverpb::KvCommand cmd,
                        ProposeCallback callback) {
  // A dropped task answers "busy": the write never entered the log.
  auto once = answered_once(std::move(callback), ProposeResult{busy("the store is shutting down"), {}});
  post([this, ctx, keys = std::move(keys), cmd = std::move(cmd), once]() mutable {
    ProposeCallback cb = take(*once);
    Peer* peer = find_peer(ctx.region_id());
    if (auto err = check_context(peer, ctx.region_id(), ctx, keys)) {
      metrics_.proposals_refused.inc();
      cb({std::move(err), {}});
      return;
    }
    cmd.set_region_id(peer->region.id());
    cmd.set_epoch_version(peer->region.region_epoch().version());
    cmd.set_epoch_conf_ver(peer->region.region_epoch().conf_ver());
    Status s = peer->node->propose(cmd.SerializeAsString());
    if (!s.is_ok()) {
      metrics_.proposals_refused.inc();
      cb({busy(s.message()), {}});
      return;
    }
    metrics_.proposals.inc();
    std::uint64_t index = peer->node->raft().log().last_index();
    if (config_.ack_before_commit && cmd.type() != raft_serverpb::KvCommand::CAS) {
      cb({});  // TEST ONLY: acknowledged before it is replicated
      return;
    }
    peer->proposals[index] = {peer->node->raft().term(), std::move(cb)};
  });
}

void RaftStore::read_index(const kvrpc::Context& ctx, std::vector<std::string> keys, ReadCallback callback) {
  auto once = answered_once(std::move(callback), std::optional<kvrpc::RegionError>(busy("the store is shutting down")));
  post([this, ctx, keys = std::move(keys), once]() mutable {
    ReadCallback cb = take(*once);
    Peer* peer = find_peer(ctx.region_id());
    if (config_.unsafe_local_reads && peer != nullptr) {
      cb(std::nullopt);  // TEST ONLY: whatever this replica has applied, leader or not
      return;
    }
    if (auto err = check_context(peer, ctx.region_id(), ctx, keys)) {
      cb(std::move(err));
      return;
    }
    std::string request = fmt::format("{}:{}", peer->region.id(), ++peer->read_seq);
    Status s = peer->node->read_index(request);
    if (!s.is_ok()) {
      // E.g. a new leader that has not committed in its term yet: retry shortly.
      cb(busy(s.message()));
      return;
    }
    peer->reads_waiting_index.emplace(std::move(request), std::move(cb));
  });
}

void RaftStore::deliver(raftsvc::RaftMessage msg) {
  post([this, msg = std::move(msg)]() mutable {
    Peer* peer = find_peer(msg.region_id());
    if (peer == nullptr) {
      if (peers_.count(msg.region_id()) != 0) {
        return;  // a removed peer: ignore stale traffic
      }
      // A leader talking to a peer we do not have yet: create it; it will get a snapshot.
      auto t = msg.message().type();
      bool from_leader = t == raftpb::MSG_APP || t == raftpb::MSG_HEARTBEAT || t == raftpb::MSG_SNAP;
      if (!from_leader || msg.to_peer().store_id() != config_.store_id) {
        return;
      }
      const metapb::Region& uninitialized = msg.region();
      if (Status s = create_peer(uninitialized, msg.to_peer(), false); !s.is_ok()) {
        spdlog::error("cannot create peer {} of region {}: {}", msg.to_peer().id(), msg.region_id(), s.message());
        return;
      }
      peer = find_peer(msg.region_id());
    }
    if (msg.to_peer().id() != peer->self.id()) {
      return;  // addressed to an older incarnation of this store's peer
    }
    (void)peer->node->step(std::move(*msg.mutable_message()));
  });
}

void RaftStore::change_peer(std::uint64_t region_id, raftpb::ConfChangeType type, const metapb::Peer& target,
                            std::function<void(Status)> cb) {
  post([this, region_id, type, target, cb = std::move(cb)]() mutable {
    Peer* peer = find_peer(region_id);
    if (peer == nullptr || peer->node->raft().role() != raft::StateRole::kLeader) {
      cb(Status::unavailable(fmt::format("region {}: this store does not lead it", region_id)));
      return;
    }
    raft::ConfChange cc;
    cc.set_type(type);
    cc.set_node_id(target.id());
    cc.set_context(target.SerializeAsString());
    Status s = peer->node->propose_conf_change(cc);
    if (!s.is_ok()) {
      cb(s);
      return;
    }
    peer->conf_changes[peer->node->raft().log().last_index()] = std::move(cb);
  });
}

void RaftStore::transfer_leader(std::uint64_t region_id, std::uint64_t to_peer_id) {
  post([this, region_id, to_peer_id] {
    if (Peer* peer = find_peer(region_id)) {
      (void)peer->node->transfer_leader(to_peer_id);
    }
  });
}

void RaftStore::report_snapshot(std::uint64_t region_id, std::uint64_t to_peer_id, bool delivered) {
  post([this, region_id, to_peer_id, delivered] {
    if (Peer* peer = find_peer(region_id)) {
      peer->node->report_snapshot(to_peer_id, delivered);
    }
  });
}

std::vector<RegionStatus> RaftStore::regions() const {
  std::lock_guard lock(status_mu_);
  return status_;
}

void RaftStore::run() {
  auto next_tick = std::chrono::steady_clock::now() + config_.tick_interval;
  for (;;) {
    std::deque<std::function<void()>> tasks;
    {
      std::unique_lock lock(mu_);
      cv_.wait_until(lock, next_tick, [&] { return stopping_ || !tasks_.empty(); });
      if (stopping_) {
        break;
      }
      tasks.swap(tasks_);
    }
    for (auto& t : tasks) {
      t();
    }
    if (std::chrono::steady_clock::now() >= next_tick) {
      for (auto& [id, peer] : peers_) {
        if (!peer->removed) {
          peer->node->tick();
        }
      }
      next_tick = std::chrono::steady_clock::now() + config_.tick_interval;
    }
    handle_readies();
  }
  fail_all_pending("the store is shutting down");
}

void RaftStore::fail_all_pending(const std::string& why) {
  std::deque<std::function<void()>> tasks;
  {
    std::lock_guard lock(mu_);
    tasks.swap(tasks_);
  }
  // Tasks never run: their callbacks are dropped with them; answer what was accepted.
  for (auto& [id, peer] : peers_) {
    for (auto& [index, p] : peer->proposals) {
      ProposeResult r;
      r.undetermined = true;
      p.cb(std::move(r));
    }
    for (auto& [ctx, cb] : peer->reads_waiting_index) {
      cb(busy(why));
    }
    for (auto& [index, cb] : peer->reads_waiting_apply) {
      cb(busy(why));
    }
    for (auto& [index, cb] : peer->conf_changes) {
      cb(Status::unavailable(why));
    }
    peer->proposals.clear();
    peer->reads_waiting_index.clear();
    peer->reads_waiting_apply.clear();
    peer->conf_changes.clear();
  }
}

void RaftStore::on_role_change(Peer& peer, const raft::SoftState& ss) {
  if (ss.role == raft::StateRole::kLeader) {
    return;
  }
  // Reads in flight may never be confirmed by a deposed leader: let the client retry elsewhere.
  for (auto& [ctx, cb] : peer.reads_waiting_index) {
    cb(not_leader(peer));
  }
  peer.reads_waiting_index.clear();
}

Result<std::string> RaftStore::build_snapshot(const Peer& peer) const {
  raftsvc::SnapshotData data;
  *data.mutable_region() = peer.region;
  std::uint64_t h = 1469598103934665603ULL;
  for (auto [cf, out] :
       {std::pair{ColumnFamily::kRaw, data.mutable_raw()}, std::pair{ColumnFamily::kCas, data.mutable_cas()}}) {
    RDB_ASSIGN_OR_RETURN(auto pairs, engine_.scan_cf(cf, peer.region.start_key(), range_end(peer.region), 0));
    for (auto& kv : pairs) {
      h = checksum_add(checksum_add(h, kv.key), kv.value);
      auto* e = out->Add();
      e->set_key(std::move(kv.key));
      e->set_value(std::move(kv.value));
    }
  }
  data.set_checksum(h);
  return data.SerializeAsString();
}

Status RaftStore::apply_snapshot(Peer& peer, const raft::Snapshot& snap, WriteBatch& wb) {
  raftsvc::SnapshotData data;
  if (!data.ParseFromString(snap.data())) {
    return Status::corruption(fmt::format("region {}: snapshot data does not parse", peer.region.id()));
  }
  std::uint64_t h = 1469598103934665603ULL;
  for (const auto* list : {&data.raw(), &data.cas()}) {
    for (const auto& kv : *list) {
      h = checksum_add(checksum_add(h, kv.key()), kv.value());
    }
  }
  if (h != data.checksum()) {
    return Status::corruption(fmt::format("region {}: snapshot checksum mismatch", peer.region.id()));
  }
  const metapb::Region& region = data.region();
  wb.delete_range(ColumnFamily::kRaw, region.start_key(), range_end(region));
  wb.delete_range(ColumnFamily::kCas, region.start_key(), range_end(region));
  for (const auto& kv : data.raw()) {
    wb.put(ColumnFamily::kRaw, kv.key(), kv.value());
  }
  for (const auto& kv : data.cas()) {
    wb.put(ColumnFamily::kCas, kv.key(), kv.value());
  }
  peer.storage->apply_snapshot_meta(snap.metadata(), wb);
  peer.region = region;
  spdlog::info("region {}: installing a snapshot at index {} ({} raw and {} versioned keys)", region.id(),
               snap.metadata().index(), data.raw_size(), data.cas_size());
  wb.put(ColumnFamily::kRaft, PeerStorage::region_state_key(region.id()), region.SerializeAsString());
  return Status::ok();
}

void RaftStore::apply_committed(Peer& peer, const std::vector<raft::Entry>& entries, WriteBatch& wb,
                                std::vector<std::function<void()>>& replies) {
  for (const auto& e : entries) {
    auto pending = peer.proposals.find(e.index());
    std::optional<PendingProposal> mine;
    if (pending != peer.proposals.end()) {
      mine = std::move(pending->second);
      peer.proposals.erase(pending);
    }
    if (mine && mine->term != e.term()) {
      // Our entry was replaced by another leader's: it was never applied.
      kvrpc::RegionError err = not_leader(peer);
      err.set_message("the proposal was overwritten by a new leader and not applied");
      replies.push_back([cb = std::move(mine->cb), err] { cb({err, {}}); });
      mine.reset();
    }
    if (e.type() == raftpb::ENTRY_CONF_CHANGE) {
      raft::ConfChange cc;
      cc.ParseFromString(e.data());
      metapb::Peer target;
      target.ParseFromString(cc.context());
      auto* peers = peer.region.mutable_peers();
      auto it =
          std::find_if(peers->begin(), peers->end(), [&](const metapb::Peer& p) { return p.id() == cc.node_id(); });
      switch (cc.type()) {
        case raftpb::ADD_NODE:
        case raftpb::ADD_LEARNER_NODE:
          if (it == peers->end()) {
            target.set_is_learner(cc.type() == raftpb::ADD_LEARNER_NODE);
            *peers->Add() = target;
          } else if (cc.type() == raftpb::ADD_NODE) {
            it->set_is_learner(false);
          }
          break;
        case raftpb::REMOVE_NODE:
          if (it != peers->end()) {
            peers->erase(it);
          }
          break;
        default:
          break;
      }
      peer.region.mutable_region_epoch()->set_conf_ver(peer.region.region_epoch().conf_ver() + 1);
      raft::ConfState cs = peer.node->apply_conf_change(cc);
      peer.storage->set_conf_state(cs, wb);
      wb.put(ColumnFamily::kRaft, PeerStorage::region_state_key(peer.region.id()), peer.region.SerializeAsString());
      if (cc.type() == raftpb::REMOVE_NODE && cc.node_id() == peer.self.id()) {
        peer.removed = true;
      }
      if (auto cc_cb = peer.conf_changes.find(e.index()); cc_cb != peer.conf_changes.end()) {
        replies.push_back([cb = std::move(cc_cb->second)] { cb(Status::ok()); });
        peer.conf_changes.erase(cc_cb);
      }
      continue;
    }
    if (e.data().empty()) {
      continue;  // a new leader's empty entry
    }
    raft_serverpb::KvCommand cmd;
    ProposeResult out;
    if (!cmd.ParseFromString(e.data())) {
      out.result.set_error("command does not parse");
    } else if (cmd.epoch_version() != peer.region.region_epoch().version()) {
      // The region's range changed since the command was proposed: it must not apply.
      out.region_error = kvrpc::RegionError();
      out.region_error->set_message("region epoch changed before the command applied");
      *out.region_error->mutable_epoch_not_match()->add_current_regions() = peer.region;
    } else {
      auto r = applier_.apply(cmd, wb);
      if (!r.is_ok()) {
        // An engine read failed: nothing sensible can continue on this store.
        spdlog::critical("region {}: apply failed: {}", peer.region.id(), r.status().to_string());
        std::abort();
      }
      out.result = std::move(r).value();
    }
    if (mine) {
      replies.push_back([cb = std::move(mine->cb), out = std::move(out)]() mutable { cb(std::move(out)); });
    }
  }
  if (!entries.empty()) {
    peer.storage->set_applied(entries.back().index(), wb);
  }
}

void RaftStore::maybe_compact(Peer& peer, WriteBatch& wb) {
  std::uint64_t applied = peer.storage->applied_index();
  if (applied > peer.storage->truncated_index() + config_.log_gc_threshold) {
    // Keep a tail so that briefly lagging followers catch up from the log, not a snapshot.
    std::uint64_t to = applied - config_.log_gc_threshold / 2;
    (void)peer.storage->compact_to(to, wb);
  }
}

void RaftStore::handle_readies() {
  struct Work {
    Peer* peer;
    raft::Ready rd;
  };
  std::vector<Work> work;
  WriteBatch raft_wb;
  bool must_sync = false;
  for (auto& [id, peer] : peers_) {
    if (peer->removed || !peer->node->has_ready()) {
      continue;
    }
    Work w{peer.get(), peer->node->ready()};
    if (w.rd.snapshot) {
      if (Status s = apply_snapshot(*peer, *w.rd.snapshot, raft_wb); !s.is_ok()) {
        spdlog::critical("region {}: cannot apply snapshot: {}", id, s.to_string());
        std::abort();
      }
      metrics_.snapshots_applied.inc();
    }
    peer->storage->append(w.rd.entries, raft_wb);
    if (w.rd.hard_state) {
      peer->storage->set_hard_state(*w.rd.hard_state, raft_wb);
    }
    must_sync = must_sync || w.rd.must_sync || w.rd.snapshot.has_value();
    work.push_back(std::move(w));
  }
  if (work.empty()) {
    return;
  }
  // Messages leave in two groups. A leader's replication traffic (MsgApp,
  // heartbeats) goes out before its own log is persisted, so the leader's fsync
  // overlaps the followers' (Raft thesis 10.2.1). That is safe because this one
  // thread persists the Ready before it processes any reply: an entry can only
  // commit on a follower's ack, which arrives after the leader's copy is durable.
  // With a single voter the leader commits alone, so nothing leaves early then.
  // Everything else (votes, append responses, snapshots) waits for the persist.
  std::vector<raftsvc::RaftMessage> early;
  std::vector<raftsvc::RaftMessage> out;
  std::vector<raftsvc::RaftMessage> snapshots;
  for (auto& w : work) {
    auto voters = std::count_if(w.peer->region.peers().begin(), w.peer->region.peers().end(),
                                [](const metapb::Peer& p) { return !p.is_learner(); });
    bool may_send_early = voters >= 2;
    for (auto& m : w.rd.messages) {
      auto to = peer_by_id(w.peer->region, m.to());
      if (!to) {
        continue;
      }
      raftsvc::RaftMessage rm;
      rm.set_region_id(w.peer->region.id());
      *rm.mutable_from_peer() = w.peer->self;
      *rm.mutable_to_peer() = *to;
      *rm.mutable_region() = w.peer->region;
      *rm.mutable_message() = std::move(m);
      auto type = rm.message().type();
      if (type == raftpb::MSG_SNAP) {
        snapshots.push_back(std::move(rm));
        continue;
      }
      bool replication = type == raftpb::MSG_APP || type == raftpb::MSG_HEARTBEAT;
      (may_send_early && replication ? early : out).push_back(std::move(rm));
    }
  }
  if (!early.empty()) {
    metrics_.messages_sent.inc(early.size());
    transport_.send(std::move(early));
  }
  // 1. Persist every region's Raft state with one write (and one fsync).
  if (!raft_wb.empty()) {
    std::size_t entries = 0;
    for (const auto& w : work) {
      entries += w.rd.entries.size();
    }
    auto started = std::chrono::steady_clock::now();
    if (Status s = engine_.write(raft_wb, must_sync); !s.is_ok()) {
      spdlog::critical("cannot persist raft state: {}", s.to_string());
      std::abort();  // continuing could acknowledge what is not durable
    }
    metrics_.persist_seconds.observe(std::chrono::steady_clock::now() - started);
    metrics_.persists.inc();
    if (must_sync) {
      metrics_.synced_persists.inc();
    }
    metrics_.persist_entries.observe_value(static_cast<double>(entries));
    metrics_.persist_regions.observe_value(static_cast<double>(work.size()));
  }
  // 2. Only now may the other messages leave.
  for (auto& rm : snapshots) {
    std::uint64_t region_id = rm.region_id();
    std::uint64_t to_peer = rm.to_peer().id();
    transport_.send_snapshot(
        std::move(rm), [this, region_id, to_peer](bool delivered) { report_snapshot(region_id, to_peer, delivered); });
  }
  if (!out.empty()) {
    metrics_.messages_sent.inc(out.size());
    transport_.send(std::move(out));
  }
  // 3. Apply committed entries: data and apply index in one batch. It need not be synced:
  //    after a crash the log (synced above) is applied again from the persisted apply index.
  auto apply_started = std::chrono::steady_clock::now();
  WriteBatch apply_wb;
  std::vector<std::function<void()>> replies;
  std::size_t applied = 0;
  for (auto& w : work) {
    if (w.rd.soft_state) {
      on_role_change(*w.peer, *w.rd.soft_state);
    }
    applied += w.rd.committed_entries.size();
    apply_committed(*w.peer, w.rd.committed_entries, apply_wb, replies);
    maybe_compact(*w.peer, apply_wb);
  }
  if (!apply_wb.empty()) {
    if (Status s = engine_.write(apply_wb, false); !s.is_ok()) {
      spdlog::critical("cannot apply committed entries: {}", s.to_string());
      std::abort();
    }
  }
  if (applied > 0) {
    metrics_.applied_entries.inc(applied);
    metrics_.apply_entries.observe_value(static_cast<double>(applied));
    metrics_.apply_seconds.observe(std::chrono::steady_clock::now() - apply_started);
  }
  applier_.batch_written();
  for (auto& r : replies) {
    r();
  }
  // 4. Reads: confirmed read points, then those whose index is now applied.
  for (auto& w : work) {
    Peer& peer = *w.peer;
    for (const auto& rs : w.rd.read_states) {
      auto it = peer.reads_waiting_index.find(rs.request_ctx);
      if (it != peer.reads_waiting_index.end()) {
        peer.reads_waiting_apply.emplace(rs.index, std::move(it->second));
        peer.reads_waiting_index.erase(it);
      }
    }
    std::uint64_t applied = peer.storage->applied_index();
    while (!peer.reads_waiting_apply.empty() && peer.reads_waiting_apply.begin()->first <= applied) {
      peer.reads_waiting_apply.begin()->second(std::nullopt);
      peer.reads_waiting_apply.erase(peer.reads_waiting_apply.begin());
    }
    peer.node->advance(w.rd);
  }
  refresh_status();
}

void RaftStore::refresh_status() {
  std::vector<RegionStatus> status;
  for (auto& [id, peer] : peers_) {
    if (peer->removed) {
      continue;
    }
    RegionStatus s;
    s.region = peer->region;
    s.self = peer->self;
    const raft::Raft& r = peer->node->raft();
    s.is_leader = r.role() == raft::StateRole::kLeader;
    if (auto l = peer_by_id(peer->region, r.leader())) {
      s.leader = *l;
    }
    s.term = r.term();
    s.applied_index = peer->storage->applied_index();
    s.commit_index = r.log().committed();
    status.push_back(std::move(s));
  }
  std::lock_guard lock(status_mu_);
  status_ = std::move(status);
}

}  // namespace rdb
