#include "server/raft_store.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>

#include "common/test_switches.h"
#include "raftdisk/raft_keys.h"
#include "server/peer_roles.h"
#include "server/region_apply.h"
#include "server/snapshot_data.h"

namespace rdb {
namespace {

// Peers created by messages that wait for their first snapshot; beyond this,
// messages for unknown regions are dropped instead of creating more.
constexpr std::size_t kMaxUninitializedPeers = 256;

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

struct PersistedRegion {
  std::uint64_t id = 0;
  std::optional<metapb::Region> region;  // none: only a log, never initialized
  SnapshotFileList unfinished_ingest;
};

Result<SnapshotFileList> parse_ingest_marker(std::uint64_t region_id, const std::string& bytes) {
  raftsvc::SnapshotIngest marker;
  if (!marker.ParseFromString(bytes) || marker.cfs_size() != marker.paths_size()) {
    return ServerStatus::corruption(fmt::format("region {}: snapshot ingest marker does not parse", region_id));
  }
  SnapshotFileList files;
  for (int i = 0; i < marker.paths_size(); ++i) {
    auto cf = snapshot_cf(marker.cfs(i));
    if (!cf) {
      return ServerStatus::corruption(
          fmt::format("region {}: snapshot ingest marker names key space '{}'", region_id, marker.cfs(i)));
    }
    files.emplace_back(*cf, marker.paths(i));
  }
  return files;
}

// Every region with state in the raft family, one seek per region: its log is never read.
Result<std::vector<PersistedRegion>> load_persisted_regions(StorageEngine& engine) {
  std::vector<PersistedRegion> out;
  auto [from, end] = raft_keys::all_regions_range();
  for (;;) {
    RDB_ASSIGN_OR_RETURN(auto first, engine.scan_cf(ColumnFamily::kRaft, from, end, 1));
    if (first.empty()) {
      return out;
    }
    PersistedRegion r;
    r.id = raft_keys::region_id_of(first[0].key);
    if (r.id == 0 && first[0].key.size() < 9) {
      return ServerStatus::corruption("a key in the raft family is too short to name a region");
    }
    RDB_ASSIGN_OR_RETURN(auto state, engine.get_cf(ColumnFamily::kRaft, raft_keys::region_state_key(r.id)));
    if (state) {
      r.region.emplace();
      if (!r.region->ParseFromString(*state)) {
        return ServerStatus::corruption(fmt::format("region state {} does not parse", r.id));
      }
    }
    RDB_ASSIGN_OR_RETURN(auto marker, engine.get_cf(ColumnFamily::kRaft, raft_keys::snapshot_ingest_key(r.id)));
    if (marker) {
      RDB_ASSIGN_OR_RETURN(r.unfinished_ingest, parse_ingest_marker(r.id, *marker));
    }
    out.push_back(std::move(r));
    from = raft_keys::region_range(out.back().id).second;
    if (from >= end) {
      return out;
    }
  }
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
      snapshots_applied(r.counter("rdb_raft_snapshots_applied_total", "Snapshots installed on this store")),
      tasks_refused(r.counter("rdb_raft_tasks_refused_total",
                              "Requests and peer messages refused because the Raft queue was full")),
      local_reads(r.counter("rdb_raft_local_reads_total",
                            "Reads served under the leader's lease on the thread that received them")),
      leader_changes(r.counter("rdb_raft_leader_changes_total",
                               "Times a region's replica on this store became the region's leader")) {}

RaftStore::RaftStore(StorageEngine& engine, const RaftStoreConfig& config, RaftTransport& transport,
                     MetricsRegistry* metrics)
    : engine_(engine),
      own_metrics_(metrics == nullptr ? std::make_unique<MetricsRegistry>() : nullptr),
      metrics_(metrics != nullptr ? *metrics : *own_metrics_),
      config_(config),
      transport_(transport),
      applier_(engine),
      change_feeds_(config.change_feeds),
      dropped_(metrics != nullptr ? *metrics : *own_metrics_),
      snaps_(engine, SnapManager::Options{config.snap_dir, config.disk}),
      clock_(config.clock ? config.clock : std::make_shared<SteadyClock>()),
      liveness_(2ULL * static_cast<std::uint64_t>(config.election_ticks) *
                static_cast<std::uint64_t>(config.tick_interval.count())) {
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
  registry.gauge("rdb_raft_hibernating_regions", "Region replicas on this store that sleep (no ticks, no heartbeats)",
                 [this] { return static_cast<double>(hibernating_.load()); });
  registry.gauge("rdb_raft_apply_lag_entries", "Committed but not yet applied entries, summed over regions", [sum] {
    return sum([](const RegionStatus& r) {
      return r.commit_index > r.applied_index ? static_cast<double>(r.commit_index - r.applied_index) : 0.0;
    });
  });
}

RaftStore::~RaftStore() {
  stop();
}

Status RaftStore::write_initial_state(const metapb::Region& region, WriteBatch& wb) {
  RDB_ASSIGN_OR_RETURN(auto storage, PeerStorage::open(engine_, region.id()));
  // Regions start at PeerStorage::kInitLogIndex, so any peer added later needs a snapshot.
  storage->bootstrap(conf_state_of(region), wb);
  wb.put(ColumnFamily::kRaft, raft_keys::region_state_key(region.id()), region.SerializeAsString());
  return Status::ok();
}

Status RaftStore::create_peer(const metapb::Region& region, const metapb::Peer& self, bool fresh, bool reloaded) {
  if (fresh) {
    // Bootstrap: the initial configuration is a snapshot position at index 5.
    WriteBatch wb;
    RDB_RETURN_IF_ERROR(write_initial_state(region, wb));
    RDB_RETURN_IF_ERROR(engine_.write(wb, true));
  }
  RDB_ASSIGN_OR_RETURN(auto storage, PeerStorage::open(engine_, region.id()));
  auto peer = std::make_unique<Peer>(region, self, std::move(storage));
  Peer* raw = peer.get();
  peer->storage->set_snapshot_builder([this, raw] { return snapshot_for(*raw); });
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
  // Lease reads are the store's (RegionPeer::lease_ms, by this store's monotonic clock);
  // Raft confirms leadership with read rounds only.
  c.read_only_option = raft::ReadOnlyOption::kSafe;
  // Whatever this store's own --lease-reads: another store may lead with a lease that
  // rests on this peer's acknowledgements (and flags may differ during a rolling change).
  c.lease_after_restart = reloaded;
  peer->lease_ms = lease_ms();
  // A lone put then costs two Raft messages per follower (append, answer), not four.
  c.lazy_commit_broadcast = true;
  RDB_ASSIGN_OR_RETURN(peer->node, raft::RawNode::create(c, *peer->storage));
  bool sole_voter = region.peers_size() == 1 && region.peers(0).id() == self.id();
  if (sole_voter && peer->storage->applied_index() >= PeerStorage::kInitLogIndex) {
    (void)peer->node->campaign();  // nobody else can be leader: do not wait a timeout
  }
  if (peer->storage->applied_index() > 0) {
    ranges_.put(peer->region);
  }
  RDB_ASSIGN_OR_RETURN(auto merge_state, engine_.get_cf(ColumnFamily::kRaft, raft_keys::merge_state_key(region.id())));
  if (merge_state) {
    peer->merging.emplace();
    if (!peer->merging->ParseFromString(*merge_state)) {
      return ServerStatus::corruption(fmt::format("region {}: its merge state does not parse", region.id()));
    }
  }
  peers_[region.id()] = std::move(peer);
  awake_.insert(region.id());
  status_dirty_.insert(region.id());
  return Status::ok();
}

Status RaftStore::start(const std::optional<metapb::Region>& bootstrap) {
  if (config_.snap_dir.empty()) {
    return Status::invalid_argument("the store needs a snapshot directory (RaftStoreConfig::snap_dir)");
  }
  RDB_ASSIGN_OR_RETURN(auto persisted, load_persisted_regions(engine_));
  // Snapshots whose ingestion an earlier run began: their files stay and are ingested
  // again (idempotent: the files replace the range) before anything else happens.
  std::set<std::string> keep;
  for (const auto& r : persisted) {
    for (const auto& [cf, path] : r.unfinished_ingest) {
      keep.insert(path);
    }
  }
  RDB_RETURN_IF_ERROR(snaps_.open(keep));
  for (const auto& r : persisted) {
    if (!r.unfinished_ingest.empty()) {
      spdlog::info("region {}: ingesting the snapshot an earlier run left half-installed", r.id);
      RDB_RETURN_IF_ERROR(finish_ingest(r.id, r.unfinished_ingest));
    }
  }
  for (const auto& r : persisted) {
    if (!r.region) {
      continue;
    }
    const metapb::Region& region = *r.region;
    std::optional<metapb::Peer> self;
    for (const auto& p : region.peers()) {
      if (p.store_id() == config_.store_id) {
        self = p;
      }
    }
    if (!self) {
      continue;  // this store's peer was removed from the region
    }
    RDB_RETURN_IF_ERROR(create_peer(region, *self, false, /*reloaded=*/true));
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
  if (config_.alloc_ids) {
    split_checker_ = std::make_unique<SplitCheckWorker>(engine_, config_.split_limits);
  }
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
  if (poller_ != nullptr) {
    poller_->wake();
  }
  if (split_checker_) {
    split_checker_->stop();  // its last check may still propose: before the loop goes
  }
  if (thread_.joinable()) {
    thread_.join();
    snaps_.stop();
    return;
  }
  snaps_.stop();
  // The loop never ran (start-up failed): drop what was queued, which answers
  // every waiting caller "busy" (see answered_once).
  std::deque<std::function<void()>> tasks;
  {
    std::lock_guard lock(mu_);
    tasks.swap(tasks_);
  }
}

void RaftStore::post(std::function<void()> task) {
  bool full = false;
  bool wake_poller = false;
  {
    std::lock_guard lock(mu_);
    full = tasks_.size() >= config_.max_pending_tasks;
    if (!stopping_ && !full) {
      tasks_.push_back(std::move(task));
      task = nullptr;
      wake_poller = polling_;
      polling_ = false;  // one wake-up is enough
    }
  }
  if (task) {
    if (full) {
      metrics_.tasks_refused.inc();
    }
    return;  // dropped here, outside the lock: its callback answers "busy" (see propose())
  }
  if (poller_ == nullptr) {
    cv_.notify_one();
  } else if (wake_poller) {
    poller_->wake();
  }
}

std::uint64_t RaftStore::lease_ms() const {
  if (!config_.lease_reads || config_.election_ticks <= 2) {
    return 0;
  }
  return static_cast<std::uint64_t>(config_.election_ticks - 2) *
         static_cast<std::uint64_t>(config_.tick_interval.count());
}

RaftStore::Peer* RaftStore::find_peer(std::uint64_t region_id) {
  auto it = peers_.find(region_id);
  return it == peers_.end() || it->second->removed || it->second->broken ? nullptr : it->second.get();
}

RaftStore::Peer* RaftStore::awake_peer(std::uint64_t region_id) {
  Peer* peer = find_peer(region_id);
  if (peer != nullptr) {
    wake_peer(*peer);
  }
  return peer;
}

std::optional<kvrpc::RegionError> RaftStore::check_context(Peer* peer, std::uint64_t region_id,
                                                           const kvrpc::Context& ctx,
                                                           const std::vector<std::string>& keys) const {
  if (peer == nullptr) {
    kvrpc::RegionError e;
    e.set_message(fmt::format("region {} is not on store {}", region_id, config_.store_id));
    e.mutable_region_not_found()->set_region_id(region_id);
    return e;
  }
  return peer->check_request(ctx, keys);
}

void RaftStore::propose(const kvrpc::Context& ctx, std::vector<std::string> keys, raft_serverpb::KvCommand cmd,
                        ProposeCallback callback) {
  // A dropped task answers "busy": the write never entered the log.
  // Refuse a write that would leave less than the minimum free: RocksDB must never meet
  // ENOSPC in its WAL (the write would fail and the engine stop writing).
  if (config_.disk && config_.disk->min_free_bytes() > 0 &&
      config_.disk->available_bytes() < config_.disk->min_free_bytes() + cmd.ByteSizeLong()) {
    kvrpc::RegionError e;
    std::string why = fmt::format(
        "the disk of store {} is full ({} bytes free, --min-free-space {}): writes are "
        "refused until space is freed; reads still work",
        config_.store_id.load(), config_.disk->available_bytes(), config_.disk->min_free_bytes());
    e.set_message(why);
    e.mutable_disk_full()->set_store_id(config_.store_id.load());
    e.mutable_disk_full()->set_reason(why);
    metrics_.proposals_refused.inc();
    callback({std::move(e), {}});
    return;
  }
  auto once = answered_once(std::move(callback),
                            ProposeResult{server_is_busy("the store is shutting down or its Raft queue is full"), {}});
  post([this, ctx, keys = std::move(keys), cmd = std::move(cmd), once]() mutable {
    ProposeCallback cb = take(*once);
    Peer* peer = awake_peer(ctx.region_id());
    if (auto err = check_context(peer, ctx.region_id(), ctx, keys)) {
      metrics_.proposals_refused.inc();
      cb({std::move(err), {}});
      return;
    }
    if (auto outside = check_command_range(cmd, peer->region)) {
      metrics_.proposals_refused.inc();
      cb({std::move(outside), {}});
      return;
    }
    const bool admin = cmd.type() == raft_serverpb::KvCommand::BATCH_SPLIT;
    if (admin) {
      if (auto bad = check_split(cmd, peer->region)) {
        metrics_.proposals_refused.inc();
        ProposeResult refused;
        refused.result.set_error(*bad);
        cb(std::move(refused));
        return;
      }
    }
    cmd.set_region_id(peer->region.id());
    cmd.set_epoch_version(peer->region.region_epoch().version());
    cmd.set_epoch_conf_ver(peer->region.region_epoch().conf_ver());
    bool ack_now = kTestSwitches && config_.ack_before_commit && cmd.type() != raft_serverpb::KvCommand::CAS && !admin;
    ProposeCallback ignored = [](const ProposeResult&) {};
    Status s = peer->propose(cmd.SerializeAsString(), ack_now ? ignored : cb);
    if (!s.is_ok()) {
      metrics_.proposals_refused.inc();
      cb({server_is_busy(s.message()), {}});
      return;
    }
    metrics_.proposals.inc();
    if (ack_now) {
      cb({});  // TEST ONLY: acknowledged before it is replicated
    }
  });
}

void RaftStore::read_index(const kvrpc::Context& ctx, std::vector<std::string> keys, ReadCallback callback,
                           std::shared_ptr<metapb::Region> region) {
  auto once = answered_once(
      std::move(callback),
      std::optional<kvrpc::RegionError>(server_is_busy("the store is shutting down or its Raft queue is full")));
  post([this, ctx, keys = std::move(keys), once, region = std::move(region)]() mutable {
    ReadCallback cb = take(*once);
    Peer* peer = awake_peer(ctx.region_id());
    if (region && peer != nullptr) {
      *region = peer->region;
    }
    if (kTestSwitches && config_.unsafe_local_reads && peer != nullptr) {
      cb(std::nullopt);  // TEST ONLY: whatever this replica has applied, leader or not
      return;
    }
    if (auto err = check_context(peer, ctx.region_id(), ctx, keys)) {
      cb(std::move(err));
      return;
    }
    if (Status s = peer->read_index(cb, clock_->now_ms()); !s.is_ok()) {
      // E.g. a new leader that has not committed in its term yet: retry shortly.
      cb(server_is_busy(s.message()));
    }
  });
}

bool RaftStore::try_local_read(const kvrpc::Context& ctx, std::span<const std::string> keys, metapb::Region* region) {
  if (!config_.local_reads) {
    return false;
  }
  switch (local_reader_.check(ctx, keys, clock_->now_ms(), region)) {
    case LocalReader::Verdict::kAskRaft:
      return false;
    case LocalReader::Verdict::kServeAndRenew:
      post([this, id = ctx.region_id()] {
        if (Peer* peer = awake_peer(id)) {
          peer->renew_lease(clock_->now_ms());
        }
      });
      break;
    case LocalReader::Verdict::kServe:
      break;
  }
  metrics_.local_reads.inc();
  return true;
}

void RaftStore::deliver(raftsvc::RaftMessage msg) {
  if (msg.is_tombstone() || msg.has_hibernate() || msg.store_heartbeat()) {
    if (auto bad = check_signal(msg, config_.store_id)) {
      dropped_.drop(msg.region_id(), *bad);
      return;
    }
    if (msg.store_heartbeat()) {
      post([this, from = msg.from_peer().store_id()] { liveness_.heard(from, clock_->now_ms()); });
    } else if (msg.has_hibernate()) {
      post([this, msg = std::move(msg)] { on_hibernate(msg); });
    } else {
      post([this, msg = std::move(msg)] { on_tombstone(msg); });
    }
    return;
  }
  if (auto bad = check_envelope(msg, config_.store_id)) {
    dropped_.drop(msg.region_id(), *bad);
    return;
  }
  if (auto bad = raft::check_message_shape(msg.message())) {
    dropped_.drop(msg.region_id(), *bad);
    return;
  }
  post([this, msg = std::move(msg)]() mutable { deliver_now(std::move(msg)); });
}

std::optional<raft::Rejection> RaftStore::may_create_peer(const raftsvc::RaftMessage& msg,
                                                          std::uint64_t replacing) const {
  if (auto bad = check_new_peer(msg)) {
    return bad;
  }
  if (auto other = ranges_.overlapping(msg.region()); other && *other != replacing) {
    return raft::Rejection{"region_overlaps",
                           fmt::format("region {} overlaps region {} on this store", msg.region().id(), *other)};
  }
  std::size_t uninitialized = 0;
  for (const auto& [id, peer] : peers_) {
    if (!peer->removed && id != replacing && peer->storage->applied_index() == 0) {
      ++uninitialized;
    }
  }
  if (uninitialized >= kMaxUninitializedPeers) {
    return raft::Rejection{"too_many_new_peers",
                           fmt::format("{} peers already wait for their first snapshot", uninitialized)};
  }
  return std::nullopt;
}

void RaftStore::deliver_now(raftsvc::RaftMessage msg) {
  const std::uint64_t region_id = msg.region_id();
  if (auto it = peers_.find(region_id);
      it != peers_.end() && !it->second->broken && msg.to_peer().id() > it->second->self.id()) {
    // Peer ids only grow: PD replaced this store's peer while it was away (or removed
    // it and added it back). Ours is stale; the new one starts empty and gets a snapshot.
    if (auto bad = may_create_peer(msg, region_id)) {
      dropped_.drop(region_id, *bad);
      return;
    }
    spdlog::info("region {}: peer {} on this store is stale, replaced by peer {}", region_id, it->second->self.id(),
                 msg.to_peer().id());
    if (Status s = destroy_peer(*it->second, std::nullopt); !s.is_ok()) {
      spdlog::error("region {}: cannot destroy stale peer {}: {}", region_id, it->second->self.id(), s.to_string());
      return;
    }
    peers_.erase(it);
    status_dirty_.insert(region_id);
  }
  Peer* peer = find_peer(region_id);
  if (peer == nullptr) {
    if (peers_.count(region_id) != 0) {
      return;  // a removed (or broken, reloading) peer: ignore its traffic
    }
    // A leader talking to a peer we do not have yet: create it; it will get a snapshot.
    if (auto bad = may_create_peer(msg)) {
      if (auto ours = ranges_.overlapping(msg.region()); ours && newer_split_of(msg.region(), *ours)) {
        // A region split off one we hold, whose split has not applied here yet: its
        // leader's first votes and appends would otherwise wait a whole election timeout.
        constexpr std::size_t kMaxHeld = 256;
        if (held_for_split_.size() >= kMaxHeld) {
          held_for_split_.pop_front();
        }
        held_for_split_.push_back(std::move(msg));
        return;
      }
      dropped_.drop(region_id, *bad);
      return;
    }
    if (Status s = create_peer(msg.region(), msg.to_peer(), false); !s.is_ok()) {
      spdlog::error("cannot create peer {} of region {}: {}", msg.to_peer().id(), region_id, s.message());
      return;
    }
    peer = find_peer(region_id);
  }
  if (msg.to_peer().id() != peer->self.id()) {
    dropped_.drop(region_id, {"stale_peer", fmt::format("message for peer {}, this store holds peer {}",
                                                        msg.to_peer().id(), peer->self.id())});
    return;
  }
  if (!find_member(peer->region, msg.from_peer().id()) &&
      msg.region().region_epoch().conf_ver() < peer->region.region_epoch().conf_ver()) {
    // A peer removed from the region (it was away when that happened) still talks:
    // tell it, so it destroys itself instead of campaigning forever.
    send_tombstone(*peer, msg.from_peer());
    dropped_.drop(region_id, {"stale_sender", fmt::format("peer {} is no longer a member (conf_ver {} < {})",
                                                          msg.from_peer().id(), msg.region().region_epoch().conf_ver(),
                                                          peer->region.region_epoch().conf_ver())});
    return;
  }
  // The shape was checked on arrival (deliver); here only what needs this peer's log.
  if (auto bad = peer->node->raft().check_remote(msg.message())) {
    dropped_.drop(region_id, *bad);
    return;
  }
  if (msg.message().type() == raftpb::MSG_SNAP) {
    auto data = verify_snapshot_descriptor(msg.message().snapshot().data(), region_id, peer->self);
    if (!data.is_ok()) {
      dropped_.drop(region_id, {"bad_snapshot", data.status().message()});
      return;
    }
    if (!snaps_.has_received(region_id, msg.message().snapshot().metadata())) {
      dropped_.drop(region_id, {"bad_snapshot",
                                "no verified files arrived for this snapshot (snapshots travel on "
                                "their own stream)"});
      return;
    }
    const metapb::Region& have = peer->region;
    const metapb::Region& got = data.value().region();
    bool initialized = peer->storage->applied_index() > 0;
    bool same_range = got.start_key() == have.start_key() && got.end_key() == have.end_key();
    if (initialized && !same_range) {
      // Only a newer region may change the range (a split or merge this peer missed),
      // and never onto another region of this store.
      if (got.region_epoch().version() <= have.region_epoch().version()) {
        dropped_.drop(region_id, {"bad_snapshot", "the snapshot's range differs from the region's at no newer epoch"});
        return;
      }
      if (auto other = ranges_.overlapping(got)) {
        dropped_.drop(region_id, {"bad_snapshot", fmt::format("the snapshot's range overlaps region {}", *other)});
        return;
      }
    }
  }
  if (peer->hibernating && message_wakes(msg.message(), peer->node->raft().term())) {
    wake_peer(*peer);
  }
  touched_.insert(region_id);  // a sleeping peer answering a heartbeat has a Ready too
  // Only ever used below the peer's own applied index (maybe_compact): a wrong hint can
  // cost a snapshot later, never an entry this replica still needs.
  peer->leader_log_gc_index = std::max(peer->leader_log_gc_index, msg.log_gc_index());
  guarded(*peer, "a message", [&] { (void)peer->node->step(std::move(*msg.mutable_message())); });
}

bool RaftStore::newer_split_of(const metapb::Region& region, std::uint64_t ours) const {
  auto it = peers_.find(ours);
  return it != peers_.end() && it->second->region.region_epoch().version() < region.region_epoch().version();
}

void RaftStore::send_tombstone(const Peer& peer, const metapb::Peer& to) {
  raftsvc::RaftMessage t;
  t.set_region_id(peer.region.id());
  *t.mutable_from_peer() = peer.self;
  *t.mutable_to_peer() = to;
  *t.mutable_region() = peer.region;
  t.set_is_tombstone(true);
  std::vector<raftsvc::RaftMessage> one;
  one.push_back(std::move(t));
  transport_.send(std::move(one));
}

void RaftStore::on_tombstone(const raftsvc::RaftMessage& msg) {
  Peer* peer = find_peer(msg.region_id());
  if (peer == nullptr || msg.to_peer().id() != peer->self.id()) {
    return;
  }
  const metapb::Region& newer = msg.region();
  if (newer.region_epoch().conf_ver() <= peer->region.region_epoch().conf_ver() ||
      find_member(newer, peer->self.id())) {
    dropped_.drop(msg.region_id(), {"bad_tombstone", "the tombstone's region is not newer, or still holds this peer"});
    return;
  }
  spdlog::info("region {}: peer {} was removed from the region (conf_ver {}) while away; destroying it", newer.id(),
               peer->self.id(), newer.region_epoch().conf_ver());
  if (Status s = destroy_peer(*peer, newer); !s.is_ok()) {
    spdlog::error("region {}: cannot destroy peer {}: {}", newer.id(), peer->self.id(), s.to_string());
  }
}

Status RaftStore::destroy_peer(Peer& peer, const std::optional<metapb::Region>& tombstone) {
  const std::uint64_t id = peer.region.id();
  revoke_lease(id);
  peer.fail_pending(fmt::format("peer {} of region {} was removed from this store", peer.self.id(), id));
  WriteBatch wb;
  // Everything of the region in the raft family but its state (rewritten below).
  auto [raft_start, raft_end] = raft_keys::region_range(id);
  wb.delete_range(ColumnFamily::kRaft, raft_start, raft_keys::region_state_key(id));
  wb.delete_range(ColumnFamily::kRaft, raft_keys::snapshot_ingest_key(id), raft_end);
  if (peer.storage->applied_index() > 0) {
    delete_region_data(peer.region, wb);
  }
  if (tombstone) {
    wb.put(ColumnFamily::kRaft, raft_keys::region_state_key(id), tombstone->SerializeAsString());
  } else {
    wb.del(ColumnFamily::kRaft, raft_keys::region_state_key(id));
  }
  RDB_RETURN_IF_ERROR(engine_.write(wb, true));
  snaps_.forget(id);
  ranges_.erase(id);
  wake_peer(peer);
  peer.removed = true;
  status_dirty_.insert(id);
  refresh_status();  // no Ready may follow: PD must stop counting this replica now
  return Status::ok();
}

template <typename Fn>
void RaftStore::guarded(Peer& peer, const char* what, Fn&& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    // The core's invariant checks fired: whatever caused it, the process and the other
    // regions carry on; this peer restarts from its persisted state.
    spdlog::error("region {}: the Raft core failed on {}: {}; reloading the peer from disk", peer.region.id(), what,
                  e.what());
    dropped_.drop(peer.region.id(), {"raft_core_error", e.what()});
    mark_broken(peer);
  }
}

void RaftStore::persist_failed(const std::vector<Peer*>& peers, const Status& why) {
  spdlog::error("cannot write to the engine ({}); {} region peer(s) restart from disk, retrying in 1 s",
                why.to_string(), peers.size());
  engine_failure_ = why.message();
  for (Peer* p : peers) {
    mark_broken(*p);  // reloaded by the loop: as after a crash, with what is on disk
  }
  for (const auto& [id, files] : ingests_) {
    SnapManager::remove_files(files);  // their marker never reached the disk; the leader sends again
  }
  ingests_.clear();
  engine_retry_at_ = clock_->now_ms() + 1000;
}

void RaftStore::mark_broken(Peer& peer) {
  revoke_lease(peer.region.id());  // its replies may be answered before it applied them again
  peer.broken = true;
  any_broken_ = true;
}

void RaftStore::reload_broken_peers() {
  if (!any_broken_ || clock_->now_ms() < engine_retry_at_) {
    return;  // none, or the engine failed lately: reloading now would meet the same failure
  }
  any_broken_ = false;
  std::vector<std::uint64_t> broken;
  for (auto& [id, peer] : peers_) {
    if (peer->broken) {
      broken.push_back(id);
    }
  }
  for (std::uint64_t id : broken) {
    auto marker = engine_.get_cf(ColumnFamily::kRaft, raft_keys::snapshot_ingest_key(id));
    if (marker.is_ok() && marker.value()) {
      // Its snapshot's files were not ingested: the peer's state says they were.
      auto files = parse_ingest_marker(id, *marker.value());
      if (Status s = files.is_ok() ? finish_ingest(id, *files) : files.status(); !s.is_ok()) {
        spdlog::error("region {}: cannot ingest its snapshot: {}; retrying in 1 s", id, s.to_string());
        engine_retry_at_ = clock_->now_ms() + 1000;
        any_broken_ = true;
        continue;  // stays broken (serves nothing) until it succeeds
      }
    }
    auto it = peers_.find(id);
    it->second->fail_pending(
        engine_failure_.empty()
            ? std::string("the region's peer is restarting")
            : fmt::format("the region's peer is restarting after a failed write to its engine ({})", engine_failure_));
    wake_peer(*it->second);
    metapb::Peer self = it->second->self;
    peers_.erase(it);
    ranges_.erase(id);
    status_dirty_.insert(id);
    auto state = engine_.get_cf(ColumnFamily::kRaft, raft_keys::region_state_key(id));
    metapb::Region region;
    if (!state.is_ok() || !state.value() || !region.ParseFromString(*state.value())) {
      continue;  // never initialized: the leader's next message creates it again
    }
    if (Status s = create_peer(region, self, false, /*reloaded=*/true); !s.is_ok()) {
      spdlog::error("region {}: cannot reload the peer: {}", id, s.to_string());
    }
  }
  engine_failure_.clear();  // told to the writes it left undetermined; a later break has its own cause
}

void RaftStore::change_peer(std::uint64_t region_id, raftpb::ConfChangeType type, const metapb::Peer& target,
                            std::function<void(Status)> cb) {
  change_peers(region_id, {{type, target}}, std::move(cb));
}

void RaftStore::change_peers(std::uint64_t region_id,
                             std::vector<std::pair<raftpb::ConfChangeType, metapb::Peer>> changes,
                             std::function<void(Status)> cb) {
  post([this, region_id, changes = std::move(changes), cb = std::move(cb)]() mutable {
    Peer* peer = awake_peer(region_id);
    if (peer == nullptr || !peer->is_leader()) {
      cb(Status::unavailable(fmt::format("region {}: this store does not lead it", region_id)));
      return;
    }
    if (peer->merging) {
      cb(Status::unavailable(fmt::format("region {} is merging: its membership is frozen", region_id)));
      return;
    }
    if (changes.empty()) {
      cb(Status::invalid_argument(fmt::format("region {}: no membership change given", region_id)));
      return;
    }
    DecodedChange change{make_change(changes), {}};
    for (const auto& [type, p] : changes) {
      if (type != raftpb::REMOVE_NODE) {
        change.added.push_back(p);
      }
    }
    // The same rules every replica applies: refuse here what would be refused there.
    if (auto next = region_after_change(peer->region, change); !next.is_ok()) {
      cb(Status::invalid_argument(fmt::format("region {}: {}", region_id, next.status().message())));
      return;
    }
    if (Status s = peer->propose_conf_change(change.cc, cb); !s.is_ok()) {
      cb(s);
    }
  });
}

void RaftStore::transfer_leader(std::uint64_t region_id, std::uint64_t to_peer_id) {
  post([this, region_id, to_peer_id] {
    if (Peer* peer = awake_peer(region_id)) {
      if (peer->merging) {
        return;  // a merge moves this leadership itself (to the target leader's store)
      }
      (void)peer->node->transfer_leader(to_peer_id);
    }
  });
}

Result<std::unique_ptr<SnapshotReceiver>> RaftStore::receive_snapshot(const raftsvc::RaftMessage& msg,
                                                                      std::uint64_t total_bytes) {
  return snaps_.receive(msg, total_bytes);
}

void RaftStore::report_snapshot(std::uint64_t region_id, std::uint64_t to_peer_id, bool delivered) {
  post([this, region_id, to_peer_id, delivered] {
    if (Peer* peer = awake_peer(region_id)) {
      peer->node->report_snapshot(to_peer_id, delivered);
    }
  });
}

std::optional<std::uint64_t> RaftStore::leader_term(std::uint64_t region_id) const {
  std::lock_guard lock(status_mu_);
  auto it = status_.find(region_id);
  if (it == status_.end() || !it->second.is_leader) {
    return std::nullopt;
  }
  return it->second.term;
}

std::vector<RegionStatus> RaftStore::regions() const {
  std::lock_guard lock(status_mu_);
  std::vector<RegionStatus> out;
  out.reserve(status_.size());
  for (const auto& [id, s] : status_) {
    out.push_back(s);
  }
  return out;
}

void RaftStore::run() {
  const auto tick_ms = static_cast<std::uint64_t>(config_.tick_interval.count());
  std::uint64_t next_tick = clock_->now_ms() + tick_ms;
  const auto split_check_ms = static_cast<std::uint64_t>(config_.split_check_interval.count());
  std::uint64_t next_split_check = clock_->now_ms() + split_check_ms;
  std::uint64_t next_liveness = clock_->now_ms();
  for (;;) {
    std::deque<std::function<void()>> tasks;
    {
      std::uint64_t now = clock_->now_ms();
      // Real time to wait: until the next tick by this clock, at most one tick (a
      // manual clock may move, and wake() us, at any time).
      auto wait = std::chrono::milliseconds(next_tick > now ? std::min(next_tick - now, tick_ms) : 0);
      std::unique_lock lock(mu_);
      if (poller_ == nullptr) {
        cv_.wait_for(lock, wait, [&] { return stopping_ || !tasks_.empty(); });
      } else {
        // Sockets are served every turn, so a busy loop still reads them (a zero wait).
        const bool idle = !stopping_ && tasks_.empty();
        polling_ = idle;
        lock.unlock();
        poller_->wait(idle ? wait : std::chrono::milliseconds(0));
        lock.lock();
        polling_ = false;
        lock.unlock();
        poller_->serve();  // may deliver messages: tasks for this turn
        lock.lock();
      }
      if (stopping_) {
        break;
      }
      tasks.swap(tasks_);
    }
    for (auto& t : tasks) {
      t();
    }
    if (clock_->now_ms() >= next_tick) {
      std::vector<raftsvc::RaftMessage> asks;
      // Only awake peers tick (a sleeping one left awake_); maybe_hibernate may shrink the set.
      std::vector<std::uint64_t> ticking(awake_.begin(), awake_.end());
      for (std::uint64_t id : ticking) {
        auto it = peers_.find(id);
        if (it == peers_.end() || it->second->removed) {
          awake_.erase(id);
          continue;
        }
        Peer& peer = *it->second;
        if (!peer.broken && !peer.hibernating) {
          guarded(peer, "a tick", [&] { peer.node->tick(); });
          if (peer.merging && peer.is_leader()) {
            drive_merge(peer);
          }
          if (hibernation_enabled() && !peer.broken) {
            maybe_hibernate(peer, asks);
          }
        }
      }
      if (!asks.empty()) {
        transport_.send(std::move(asks));
      }
      next_tick = clock_->now_ms() + tick_ms;
    }
    if (clock_->now_ms() >= next_liveness) {
      liveness_round();
      next_liveness = clock_->now_ms() + tick_ms * static_cast<std::uint64_t>(config_.heartbeat_ticks);
    }
    if (split_checker_ && clock_->now_ms() >= next_split_check) {
      schedule_split_checks();
      next_split_check = clock_->now_ms() + split_check_ms;
    }
    handle_readies();
    resume_blocked_applies();
    reload_broken_peers();
  }
  while (!published_leases_.empty()) {
    revoke_lease(published_leases_.begin()->first);  // a stopped store serves nothing
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
    peer->fail_pending(why);
  }
}

Result<raft::Snapshot> RaftStore::snapshot_for(Peer& peer) {
  if (peer.merging) {
    // A snapshot does not carry the merge: its receiver would serve a region that is gone.
    return Status::unavailable(fmt::format("region {} is merging: no snapshot until it ends", peer.region.id()));
  }
  RDB_ASSIGN_OR_RETURN(auto meta, peer.storage->snapshot_metadata());
  // Older than the log's start, a snapshot could not be followed by entries: make a new one.
  return snaps_.snapshot_for(peer.region.id(), peer.storage->truncated_index(), peer.region.region_epoch(), [&] {
    // On the loop thread, so the view holds exactly what `meta.index` applied.
    return SnapManager::Source{peer.region, meta, engine_.snapshot()};
  });
}

Status RaftStore::apply_snapshot(Peer& peer, const raft::Snapshot& snap, WriteBatch& wb) {
  const std::uint64_t id = peer.region.id();
  // Verified when it arrived (deliver); verified again because deleting the range is irreversible.
  RDB_ASSIGN_OR_RETURN(auto d, verify_snapshot_descriptor(snap.data(), id, peer.self));
  auto files = snaps_.take_received(id, snap.metadata());
  if (!files) {
    return ServerStatus::not_found(
        fmt::format("region {}: the files of the snapshot at index {} are gone", id, snap.metadata().index()));
  }
  const metapb::Region& region = d.region();
  // Its commits arrive in files, never applied one by one: feeds over it would miss them.
  change_feeds_.lose_range(region.start_key(), region.end_key(),
                           fmt::format("region {} installed a snapshot on this store", id));
  delete_region_data(region, wb);
  raftsvc::SnapshotIngest marker;
  for (const auto& [cf, path] : *files) {
    marker.add_cfs(snapshot_cf_name(cf));
    marker.add_paths(path);
  }
  wb.put(ColumnFamily::kRaft, raft_keys::snapshot_ingest_key(id), marker.SerializeAsString());
  peer.storage->apply_snapshot_meta(snap.metadata(), wb);
  peer.region = region;
  ranges_.put(region);
  wb.put(ColumnFamily::kRaft, raft_keys::region_state_key(id), peer.region.SerializeAsString());
  std::uint64_t keys = 0;
  for (const auto& f : d.files()) {
    keys += f.keys();
  }
  spdlog::info("region {}: installing a snapshot at index {} ({} keys in {} files)", id, snap.metadata().index(), keys,
               files->size());
  ingests_.emplace_back(id, std::move(*files));
  return Status::ok();
}

Status RaftStore::finish_ingest(std::uint64_t region_id, const SnapshotFileList& files) {
  RDB_RETURN_IF_ERROR(engine_.ingest_sst(files));
  WriteBatch wb;
  wb.del(ColumnFamily::kRaft, raft_keys::snapshot_ingest_key(region_id));
  // Synced before the files go: a marker that outlived its files could never be finished.
  RDB_RETURN_IF_ERROR(engine_.write(wb, true));
  SnapManager::remove_files(files);
  return Status::ok();
}

void RaftStore::apply_committed(Peer& peer, const std::vector<raft::Entry>& fresh, WriteBatch& wb,
                                std::vector<std::function<void()>>& replies) {
  // Entries held behind a COMMIT_MERGE go first; new ones queue up behind them.
  std::vector<raft::Entry> held;
  if (!peer.blocked_entries.empty()) {
    held = std::move(peer.blocked_entries);
    peer.blocked_entries.clear();
    held.insert(held.end(), fresh.begin(), fresh.end());
  }
  const std::vector<raft::Entry>& entries = held.empty() ? fresh : held;
  if (merged_away_.count(peer.region.id()) != 0) {
    return;  // a target applied this source's last entries on its behalf this round; it is gone
  }
  auto applied = apply_entries(
      applier_, peer.region, entries, wb,
      [this](const raft_serverpb::MergeRequest& m, WriteBatch& batch) { return catch_up_merge_source(m, batch); });
  if (!applied.is_ok()) {
    // An engine read failed: nothing sensible can continue on this store.
    spdlog::critical("region {}: apply failed: {}", peer.region.id(), applied.status().to_string());
    std::abort();
  }
  for (auto& a : *applied) {
    std::optional<Peer::PendingProposal> mine = peer.take_proposal(a.index);
    if (mine && mine->term != a.term) {
      // Our entry was replaced by another leader's: it was never applied.
      kvrpc::RegionError err = peer.not_leader();
      err.set_message("the proposal was overwritten by a new leader and not applied");
      replies.push_back([cb = std::move(mine->cb), err] { cb({err, {}}); });
      mine.reset();
    }
    peer.written_bytes += a.written_bytes;
    peer.written_keys += a.written_keys;
    if (a.deleted) {
      peer.split_check_due = true;  // measured again at the next check: it may be small enough to merge
    } else if (peer.approximate_bytes > 0) {
      peer.approximate_bytes += a.written_bytes;
      peer.approximate_keys += a.written_keys;
    }
    if (auto* change = std::get_if<ChangePeerResult>(&a.outcome)) {
      on_change_peer(peer, *change, a.index, wb, replies);
    } else if (auto* split = std::get_if<SplitResult>(&a.outcome)) {
      on_split(peer, *split, wb);
      if (mine) {
        replies.push_back([cb = std::move(mine->cb), out = std::move(split->answer)]() mutable { cb(std::move(out)); });
      }
    } else if (auto* prepared = std::get_if<PrepareMergeResult>(&a.outcome)) {
      on_prepare_merge(peer, prepared->state, wb);
      if (mine) {
        replies.push_back([cb = std::move(mine->cb)] { cb({}); });
      }
    } else if (auto* merged = std::get_if<CommitMergeResult>(&a.outcome)) {
      on_commit_merge(peer, merged->source, wb);
      if (mine) {
        replies.push_back([cb = std::move(mine->cb)] { cb({}); });
      }
    } else if (std::get_if<RollbackMergeResult>(&a.outcome) != nullptr) {
      on_rollback_merge(peer, wb);
      if (mine) {
        replies.push_back([cb = std::move(mine->cb)] { cb({}); });
      }
    } else if (auto* result = std::get_if<ProposeResult>(&a.outcome); result != nullptr && mine) {
      replies.push_back([cb = std::move(mine->cb), out = std::move(*result)]() mutable { cb(std::move(out)); });
    }
  }
  const std::size_t consumed = applied->size();
  if (consumed > 0) {
    peer.storage->set_applied(entries[consumed - 1].index(), wb);
  }
  if (consumed < entries.size()) {
    peer.blocked_entries.assign(entries.begin() + static_cast<std::ptrdiff_t>(consumed), entries.end());
    blocked_.insert(peer.region.id());
    if (peer.blocked_entries.size() > kMaxBlockedEntries) {
      // Not held in memory without end: the entries are in the log, and the reloaded peer
      // gets them again from its persisted apply index.
      spdlog::warn("region {}: {} entries wait behind a merge; reloading the peer from its log", peer.region.id(),
                   peer.blocked_entries.size());
      peer.blocked_entries.clear();
      blocked_.erase(peer.region.id());
      mark_broken(peer);
    }
  } else {
    blocked_.erase(peer.region.id());
  }
}

void RaftStore::on_change_peer(Peer& peer, const ChangePeerResult& change, std::uint64_t index, WriteBatch& wb,
                               std::vector<std::function<void()>>& replies) {
  auto cb = peer.take_conf_change(index);
  if (!change.error.empty()) {
    // Every replica refuses it alike (apply_entries): the membership stays as it was.
    spdlog::warn("region {}: membership change at index {} not applied: {}", peer.region.id(), index, change.error);
    if (cb) {
      replies.push_back([cb = std::move(cb), error = change.error] { cb(Status::invalid_argument(error)); });
    }
    return;
  }
  // peer.region already holds the new membership (apply_entries).
  revoke_lease(peer.region.id());  // won in the old one; the next round may win it again
  auto cs = peer.node->apply_conf_change(change.cc);
  if (!cs.is_ok()) {
    // The region's metadata took it, so the Raft node must too: the same rules decide both.
    throw std::logic_error(fmt::format("region {}: metadata and Raft disagree on the change at {}: {}",
                                       peer.region.id(), index, cs.status().to_string()));
  }
  peer.storage->set_conf_state(*cs, wb);
  wb.put(ColumnFamily::kRaft, raft_keys::region_state_key(peer.region.id()), peer.region.SerializeAsString());
  if (!peer.node->raft().configuration().contains(peer.self.id())) {
    peer.removed = true;
    ranges_.erase(peer.region.id());
  }
  if (raft::leaves_joint(change.cc)) {
    spdlog::info("region {}: left the joint configuration ({})", peer.region.id(),
                 peer.node->raft().configuration().describe());
  } else if (raft::enters_joint(change.cc)) {
    spdlog::info("region {}: entered a joint configuration ({})", peer.region.id(),
                 peer.node->raft().configuration().describe());
  }
  if (cb) {
    replies.push_back([cb = std::move(cb)] { cb(Status::ok()); });
  }
}

void RaftStore::on_split(Peer& peer, SplitResult& split, WriteBatch& wb) {
  // peer.region is already the first part (apply_entries); its size is measured again.
  revoke_lease(peer.region.id());  // won for the whole range; the next round may win it again
  peer.approximate_bytes = 0;
  peer.approximate_keys = 0;
  peer.split_check_due = true;
  peer.split_into = split.new_regions;
  wb.put(ColumnFamily::kRaft, raft_keys::region_state_key(peer.region.id()), peer.region.SerializeAsString());
  ranges_.put(peer.region);
  int self_index = 0;
  while (self_index < peer.region.peers_size() && peer.region.peers(self_index).id() != peer.self.id()) {
    ++self_index;
  }
  for (const auto& region : split.new_regions) {
    const metapb::Peer& self = region.peers(self_index);
    if (auto it = peers_.find(region.id()); it != peers_.end() && it->second->storage->applied_index() > 0) {
      // It got here first (a snapshot from the new region's leader): it is newer than the split.
      spdlog::info("region {}: split created region {}, whose peer on this store already exists", peer.region.id(),
                   region.id());
      continue;
    }
    auto state = engine_.get_cf(ColumnFamily::kRaft, raft_keys::region_state_key(region.id()));
    if (state.is_ok() && state.value() && peers_.count(region.id()) == 0) {
      // This store's peer of the new region was created and removed before: the region
      // moved on without it. Creating it again would bring back a stale replica.
      spdlog::info("region {}: split created region {}, which this store's peer already left", peer.region.id(),
                   region.id());
      continue;
    }
    auto [raft_start, raft_end] = raft_keys::region_range(region.id());
    wb.delete_range(ColumnFamily::kRaft, raft_start, raft_end);  // an uninitialized peer's leftovers
    if (Status s = write_initial_state(region, wb); !s.is_ok()) {
      spdlog::error("region {}: cannot prepare split region {}: {}", peer.region.id(), region.id(), s.to_string());
      continue;  // the peer is created later from the new region leader's snapshot
    }
    split_peers_.push_back({region, self, peer.is_leader()});
  }
  spdlog::info("region {}: split into {} regions (version {})", peer.region.id(), split.new_regions.size() + 1,
               peer.region.region_epoch().version());
  regions_changed_ = regions_changed_ || peer.is_leader();
}

void RaftStore::create_split_peers() {
  if (split_peers_.empty()) {
    return;
  }
  for (auto& sp : split_peers_) {
    if (auto it = peers_.find(sp.region.id()); it != peers_.end()) {
      it->second->fail_pending("the peer is replaced by its region's split");
      wake_peer(*it->second);
      peers_.erase(it);  // uninitialized: its state was overwritten by the split's
    }
    if (Status s = create_peer(sp.region, sp.self, false); !s.is_ok()) {
      spdlog::error("region {}: cannot create the peer the split made: {}", sp.region.id(), s.to_string());
      continue;
    }
    if (sp.campaign) {
      (void)peers_[sp.region.id()]->node->campaign();
    }
  }
  split_peers_.clear();
  // What the new regions' leaders sent before the split applied here.
  std::deque<raftsvc::RaftMessage> held;
  held.swap(held_for_split_);
  for (auto& m : held) {
    deliver_now(std::move(m));
  }
}

void RaftStore::schedule_split_checks() {
  const SplitLimits& limits = config_.split_limits;
  for (auto& [id, peer] : peers_) {
    if (peer->removed || peer->broken || peer->split_checking || !peer->is_leader()) {
      if (!peer->is_leader()) {
        peer->split_check_due = true;  // whoever leads next checks once
      }
      continue;
    }
    bool grew = peer->written_bytes * 16 >= limits.bytes || peer->written_keys * 16 >= limits.keys;
    if (!grew && !peer->split_check_due) {
      continue;
    }
    peer->split_checking = true;
    peer->split_check_due = false;
    peer->written_bytes = 0;
    peer->written_keys = 0;
    split_checker_->submit(peer->region, [this](const metapb::Region& region, Result<SplitCheck> check) {
      split_after_check(region, std::move(check));
    });
  }
}

void RaftStore::split_after_check(const metapb::Region& region, Result<SplitCheck> check) {
  const std::uint64_t id = region.id();
  // A complete walk that found nothing to cut measured the region.
  std::optional<std::pair<std::uint64_t, std::uint64_t>> measured;
  if (check.is_ok() && check->complete && check->split_keys.empty()) {
    measured.emplace(std::max<std::uint64_t>(check->bytes, 1), check->keys);
  }
  auto done = [this, id, measured] {
    post([this, id, measured] {
      if (auto it = peers_.find(id); it != peers_.end()) {
        it->second->split_checking = false;
        if (measured) {
          std::tie(it->second->approximate_bytes, it->second->approximate_keys) = *measured;
          status_dirty_.insert(id);
          refresh_status();
        }
      }
    });
  };
  if (!check.is_ok()) {
    spdlog::warn("region {}: split check failed: {}", id, check.status().to_string());
    done();
    return;
  }
  if (check->split_keys.empty()) {
    done();
    return;
  }
  const auto peers = static_cast<std::uint32_t>(region.peers_size());
  const auto cuts = static_cast<std::uint32_t>(check->split_keys.size());
  auto first = config_.alloc_ids(cuts * (1 + peers));
  if (!first.is_ok()) {
    spdlog::warn("region {}: no ids for its split: {}", id, first.status().to_string());
    done();
    return;
  }
  raft_serverpb::KvCommand cmd;
  cmd.set_type(raft_serverpb::KvCommand::BATCH_SPLIT);
  std::uint64_t next = *first;
  for (const auto& key : check->split_keys) {
    auto* split = cmd.add_splits();
    split->set_split_key(key);
    split->set_new_region_id(next++);
    for (std::uint32_t p = 0; p < peers; ++p) {
      split->add_new_peer_ids(next++);
    }
  }
  spdlog::info("region {}: holds {} keys, {} bytes{}; splitting it at {} keys", id, check->keys, check->bytes,
               check->complete ? "" : " or more", cuts);
  kvrpc::Context ctx;
  ctx.set_region_id(id);
  *ctx.mutable_region_epoch() = region.region_epoch();
  // The epoch of the checked region: if it changed meanwhile, the split is refused.
  propose(ctx, {}, std::move(cmd), [id, done](const ProposeResult& r) {
    if (r.region_error || !r.result.error().empty()) {
      spdlog::info("region {}: split not done: {}", id, r.region_error ? r.region_error->message() : r.result.error());
    }
    done();
  });
}

void RaftStore::maybe_compact(Peer& peer, WriteBatch& wb) {
  if (peer.merging) {
    return;  // every source replica must be able to catch up from the log, not a snapshot
  }
  const std::uint64_t applied = peer.storage->applied_index();
  const std::uint64_t truncated = peer.storage->truncated_index();
  if (applied <= truncated) {
    return;
  }
  const std::uint64_t kept = applied - truncated;
  const bool by_count = kept > config_.log_gc_threshold;
  const bool by_size = config_.log_gc_size_limit > 0 && peer.log_bytes > config_.log_gc_size_limit;
  std::uint64_t to = 0;
  if (by_count || by_size) {
    // A peer lags (or is gone): keep a tail so that one briefly behind catches up from
    // the log, not a snapshot.
    const std::uint64_t tail = by_count ? config_.log_gc_threshold / 2 : kept / 4;
    to = applied - std::min(tail, kept);
  }
  if (config_.log_gc_replicated_entries > 0) {
    const std::uint64_t replicated = std::min(replicated_index(peer), applied);
    if (replicated >= truncated + config_.log_gc_replicated_entries) {
      to = std::max(to, replicated);
    }
  }
  if (to <= truncated) {
    return;
  }
  if (peer.storage->compact_to(to, wb).is_ok()) {
    // What the dropped entries held is not known one by one: count it pro rata.
    peer.log_bytes -= peer.log_bytes * (to - truncated) / kept;
  }
}

std::uint64_t RaftStore::replicated_index(const Peer& peer) const {
  const raft::Raft& r = peer.node->raft();
  if (r.role() != raft::StateRole::kLeader) {
    return peer.leader_log_gc_index;
  }
  std::uint64_t lowest = peer.storage->applied_index();
  for (const auto& [id, pr] : r.progress()) {
    if (id != peer.self.id()) {
      lowest = std::min(lowest, pr.match);
    }
  }
  return lowest;
}

void RaftStore::handle_readies() {
  if (clock_->now_ms() < engine_retry_at_) {
    return;  // the engine failed a write lately (e.g. disk full): give it time
  }
  if (engine_retry_at_ != 0) {
    engine_retry_at_ = 0;
    if (Status s = engine_.resume(); !s.is_ok()) {
      spdlog::warn("the engine cannot resume writing yet: {}", s.to_string());
      engine_retry_at_ = clock_->now_ms() + 1000;
      return;
    }
  }
  struct Work {
    Peer* peer;
    raft::Ready rd;
    std::size_t entries = 0;  // rd.entries moved into the peer's storage
  };
  std::vector<Work> work;
  WriteBatch raft_wb;
  bool must_sync = false;
  std::uint64_t payload_bytes = 0;  // of the round's new entries (not counting Raft's framing)
  // Only awake peers and those a message reached since the last round can have a Ready.
  std::set<std::uint64_t> candidates = awake_;
  candidates.insert(touched_.begin(), touched_.end());
  touched_.clear();
  for (std::uint64_t id : candidates) {
    auto it = peers_.find(id);
    if (it == peers_.end()) {
      continue;
    }
    auto& peer = it->second;
    if (peer->removed || peer->broken || !peer->node->has_ready()) {
      continue;
    }
    Work w{peer.get(), {}};
    peer->close_read_batch();
    guarded(*peer, "collecting its Ready", [&] { w.rd = peer->node->ready(); });
    if (peer->broken) {
      continue;
    }
    if (w.rd.snapshot) {
      if (Status s = apply_snapshot(*peer, *w.rd.snapshot, raft_wb); !s.is_ok()) {
        // Nothing of it was written; the peer restarts from disk and the leader sends another.
        spdlog::error("region {}: cannot apply snapshot: {}", id, s.to_string());
        dropped_.drop(id, {"bad_snapshot", s.message()});
        mark_broken(*peer);
        continue;
      }
      metrics_.snapshots_applied.inc();
      peer->log_bytes = 0;  // the log starts afresh after the snapshot
    }
    if (!w.rd.entries.empty()) {
      peer->storage->set_cache_limit(
          static_cast<std::size_t>(config_.entry_cache_bytes / std::max<std::size_t>(peers_.size(), 1)));
    }
    for (const auto& e : w.rd.entries) {
      peer->log_bytes += e.data().size();
      payload_bytes += e.data().size();
    }
    w.entries = w.rd.entries.size();
    peer->storage->save_ready(std::move(w.rd.entries), w.rd.hard_state, raft_wb);
    must_sync = must_sync || w.rd.must_sync || w.rd.snapshot.has_value();
    work.push_back(std::move(w));
  }
  if (work.empty()) {
    return;
  }
  auto work_peers = [&work] {
    std::vector<Peer*> peers;
    peers.reserve(work.size());
    for (auto& w : work) {
      peers.push_back(w.peer);
    }
    return peers;
  };
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
                                [](const metapb::Peer& p) { return role_of(p) != metapb::LEARNER; });
    bool may_send_early = voters >= 2;
    const std::uint64_t log_gc_index =
        config_.log_gc_replicated_entries > 0 && w.peer->node->raft().role() == raft::StateRole::kLeader
            ? replicated_index(*w.peer)
            : 0;
    for (auto& m : w.rd.messages) {
      auto to = find_member(w.peer->region, m.to());
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
      if (type == raftpb::MSG_APP && log_gc_index > 0) {
        rm.set_log_gc_index(log_gc_index);
      }
      if (type == raftpb::MSG_TIMEOUT_NOW) {
        w.peer->forbid_lease_this_term();  // the transferee may be elected past the followers' lease
        revoke_lease(w.peer->region.id());
      }
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
  // 1. Persist every region's Raft state with one write (and one fsync). A round that
  //    needs no sync (only a new commit index: no entries, term, vote or snapshot) is not
  //    written on its own: it joins the apply write below. Nothing is promised about an
  //    unsynced write, so messages may leave before it; after a crash the commit index is
  //    learnt again. On disk it never falls below the apply index: both are in one batch
  //    here, and otherwise the Raft state is written before the apply.
  bool fold_into_apply = !must_sync && ingests_.empty();
  if (!raft_wb.empty() && !fold_into_apply) {
    std::size_t entries = 0;
    for (const auto& w : work) {
      entries += w.entries;
    }
    auto started = std::chrono::steady_clock::now();
    // Replicated data stops at half the free-space minimum: a follower whose disk filled
    // up lags instead of meeting ENOSPC (the leader resends) until space returns. Raft's
    // own bookkeeping (a vote, a term, a new leader's empty entry: tens of bytes) may use
    // the next quarter, or a store that failed one write on a full disk could never elect
    // itself again when its peer reloads, nor serve the reads a full disk still allows.
    const std::uint64_t min_free = config_.disk ? config_.disk->min_free_bytes() : 0;
    const std::uint64_t keep_free = payload_bytes == 0 ? min_free / 4 : min_free / 2;
    if (keep_free > 0 && config_.disk->available_bytes() < raft_wb.bytes() + keep_free) {
      persist_failed(work_peers(), ServerStatus::io_error(fmt::format("the disk is full ({} bytes free)",
                                                                      config_.disk->available_bytes())));
      return;
    }
    if (Status s = engine_.write(raft_wb, must_sync); !s.is_ok()) {
      // Nothing of this round is durable: acknowledge nothing, send nothing more.
      persist_failed(work_peers(), s);
      return;
    }
    metrics_.persist_seconds.observe(std::chrono::steady_clock::now() - started);
    metrics_.persists.inc();
    if (must_sync) {
      metrics_.synced_persists.inc();
    }
    metrics_.persist_entries.observe_value(static_cast<double>(entries));
    metrics_.persist_regions.observe_value(static_cast<double>(work.size()));
  }
  // Snapshots' positions are durable: now their data. The range's old keys went in the same write.
  for (const auto& [id, files] : ingests_) {
    if (Status s = finish_ingest(id, files); !s.is_ok()) {
      spdlog::error("region {}: cannot ingest its snapshot: {}; the peer reloads and tries again", id, s.to_string());
      if (auto it = peers_.find(id); it != peers_.end()) {
        mark_broken(*it->second);
      }
      engine_retry_at_ = clock_->now_ms() + 1000;
    }
  }
  ingests_.clear();
  // 2. Only now may the other messages leave.
  for (auto& rm : snapshots) {
    std::uint64_t region_id = rm.region_id();
    std::uint64_t to_peer = rm.to_peer().id();
    auto files = snaps_.files_to_send(region_id, rm.message().snapshot().metadata());
    if (!files) {
      report_snapshot(region_id, to_peer, false);  // replaced by a newer one meanwhile: Raft asks again
      continue;
    }
    transport_.send_snapshot(std::move(rm), std::move(*files), [this, region_id, to_peer](bool delivered) {
      report_snapshot(region_id, to_peer, delivered);
    });
  }
  if (!out.empty()) {
    metrics_.messages_sent.inc(out.size());
    transport_.send(std::move(out));
  }
  // 3. Apply committed entries: data and apply index in one batch. It need not be synced:
  //    after a crash the log (synced above) is applied again from the persisted apply index.
  auto apply_started = std::chrono::steady_clock::now();
  WriteBatch apply_wb;
  if (fold_into_apply) {
    apply_wb.append(std::move(raft_wb));
  }
  std::vector<std::function<void()>> replies;
  std::size_t applied = 0;
  applier_.collect_changes(change_feeds_.active());
  for (auto& w : work) {
    if (w.rd.soft_state) {
      w.peer->on_role_change(*w.rd.soft_state);
      if (w.rd.soft_state->role == raft::StateRole::kLeader) {
        regions_changed_ = true;
        metrics_.leader_changes.inc();
      }
    }
    applied += w.rd.committed_entries.size();
    apply_committed(*w.peer, w.rd.committed_entries, apply_wb, replies);
    maybe_compact(*w.peer, apply_wb);
  }
  // Published before they are written: a reader that no longer sees a commit's lock finds
  // its change in the feeds (see ChangeFeedHub). Applied again after a failed write, a
  // change is published again and kept once.
  change_feeds_.publish(applier_.take_changes());
  if (!apply_wb.empty()) {
    if (Status s = engine_.write(apply_wb, false); !s.is_ok()) {
      // The entries are committed and their log durable: they are applied again, with
      // the same results, once the peers reload from the persisted apply index. Their
      // answers stand; reads wait for the re-apply.
      persist_failed(work_peers(), s);
      split_peers_.clear();     // the split applies again once its region reloads
      merged_sources_.clear();  // so does the merge
      merged_away_.clear();
      for (auto& r : replies) {
        r();
      }
      return;
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
    peer.on_read_states(w.rd.read_states);
    peer.answer_applied_reads();
    peer.node->advance(w.rd);
    peer.answer_truncated_proposals();
  }
  for (auto& w : work) {
    status_dirty_.insert(w.peer->region.id());
  }
  create_split_peers();
  finish_merges();
  refresh_status();
  if (regions_changed_) {
    regions_changed_ = false;
    if (config_.on_regions_changed) {
      config_.on_regions_changed();
    }
  }
}

void RaftStore::refresh_lease(std::uint64_t region_id) {
  Peer* peer = find_peer(region_id);
  const std::uint64_t now = clock_->now_ms();
  if (peer == nullptr || !peer->lease_valid(now) ||
      peer->storage->applied_index() < peer->node->raft().log().committed() || blocked_.count(region_id) != 0) {
    revoke_lease(region_id);
    return;
  }
  const auto& epoch = peer->region.region_epoch();
  PublishedLease now_published{peer->lease_until_ms(), peer->node->raft().term(), epoch.conf_ver(), epoch.version()};
  auto [it, fresh] = published_leases_.try_emplace(region_id, now_published);
  if (!fresh && it->second == now_published) {
    return;  // unchanged (its renewal may already have been asked for)
  }
  it->second = now_published;
  ReadLease lease;
  lease.region = peer->region;
  lease.term = now_published.term;
  lease.until_ms = now_published.until_ms;
  lease.renew_from_ms = now_published.until_ms - peer->lease_ms / 3;
  local_reader_.publish(std::move(lease));
}

void RaftStore::revoke_lease(std::uint64_t region_id) {
  if (published_leases_.erase(region_id) != 0) {
    local_reader_.revoke(region_id);
  }
}

void RaftStore::refresh_status() {
  if (status_dirty_.empty()) {
    return;
  }
  std::vector<std::pair<std::uint64_t, std::optional<RegionStatus>>> changed;
  for (std::uint64_t id : status_dirty_) {
    refresh_lease(id);
    auto it = peers_.find(id);
    if (it == peers_.end() || it->second->removed) {
      changed.emplace_back(id, std::nullopt);
      continue;
    }
    Peer* peer = it->second.get();
    RegionStatus s;
    s.region = peer->region;
    s.self = peer->self;
    const raft::Raft& r = peer->node->raft();
    s.is_leader = r.role() == raft::StateRole::kLeader;
    if (auto l = find_member(peer->region, r.leader())) {
      s.leader = *l;
    }
    s.term = r.term();
    s.applied_index = peer->storage->applied_index();
    s.approximate_bytes = peer->approximate_bytes;
    s.approximate_keys = peer->approximate_keys;
    s.merging_into = peer->merging ? peer->merging->target().id() : 0;
    s.commit_index = r.log().committed();
    if (s.is_leader) {
      // Behind the log's start (or never heard from): only a snapshot can bring it back.
      std::uint64_t floor = std::max<std::uint64_t>(peer->storage->truncated_index(), 1);
      for (const auto& [id, pr] : r.progress()) {
        if (id != peer->self.id() && (pr.state == raft::ProgressState::kSnapshot || pr.match < floor)) {
          if (auto p = find_member(peer->region, id)) {
            s.pending_peers.push_back(*p);
          }
        }
      }
    }
    changed.emplace_back(id, std::move(s));
  }
  status_dirty_.clear();
  std::lock_guard lock(status_mu_);
  for (auto& [id, s] : changed) {
    if (s) {
      status_[id] = std::move(*s);
    } else {
      status_.erase(id);
    }
  }
}

}  // namespace rdb
