// RaftStore: all Raft region peers of one store, driven by one thread.
//
// The store's Raft loop owns every peer (RawNode + PeerStorage). Other threads
// talk to it only by posting tasks (propose, read_index, deliver, change_peer);
// results come back through callbacks, invoked on the loop thread.
//
// Each loop iteration: run posted tasks; tick peers when the tick interval has
// passed; then for every peer with a Ready, add its entries, hard state and
// snapshot to ONE WriteBatch written with a single fsync for the whole store
// (group commit); only then send the messages; then apply committed entries
// (data and apply index in one batch), answer proposals and reads, advance.
//
// Regions are bootstrapped at log index 5 (like TiKV), so a peer created later
// on another store always starts from a snapshot that carries the configuration.
// Thread safety: every public method may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/metrics.h"
#include "kvrpc.pb.h"
#include "raft/raw_node.h"
#include "raftdisk/peer_storage.h"
#include "raftsvc.pb.h"
#include "server/change_feed_hub.h"
#include "server/disk_space.h"
#include "server/hibernation.h"
#include "server/kv_applier.h"
#include "server/local_reader.h"
#include "server/raft_message_check.h"
#include "server/region_apply.h"
#include "server/region_index.h"
#include "server/region_peer.h"
#include "server/snap_manager.h"
#include "server/split_checker.h"

namespace rdb {

// Sends Raft messages to other stores. Best effort: messages may be lost (Raft
// retries); implementations must not block the caller for long.
class RaftTransport {
 public:
  virtual ~RaftTransport() = default;
  virtual void send(std::vector<raftsvc::RaftMessage> messages) = 0;
  // A MsgSnap (its data is the SnapshotDescriptor) and the local table files it
  // describes, to stream to the receiver (see SnapManager); `done(delivered)` is
  // called once the receiver took it all, or it failed. Must not block the caller.
  virtual void send_snapshot(raftsvc::RaftMessage message, std::vector<std::string> files,
                             std::function<void(bool)> done) = 0;
};

// What the store's loop waits on when a transport serves its sockets on the loop thread
// (tcp_transport.h): the loop calls wait() instead of sleeping on its condition variable,
// then serve() to handle what became ready (which may call RaftStore::deliver). wake()
// ends a wait() from any thread.
class LoopPoller {
 public:
  virtual ~LoopPoller() = default;
  // Loop thread only: returns when something is ready, wake() was called, or `timeout` passed.
  virtual void wait(std::chrono::milliseconds timeout) = 0;
  // Loop thread only: handles what the last wait() found ready.
  virtual void serve() = 0;
  virtual void wake() = 0;
};

struct RaftStoreConfig {
  std::atomic<std::uint64_t> store_id{0};
  RaftStoreConfig() = default;
  RaftStoreConfig(const RaftStoreConfig& o)
      : store_id(o.store_id.load()),
        tick_interval(o.tick_interval),
        election_ticks(o.election_ticks),
        heartbeat_ticks(o.heartbeat_ticks),
        log_gc_threshold(o.log_gc_threshold),
        log_gc_size_limit(o.log_gc_size_limit),
        log_gc_replicated_entries(o.log_gc_replicated_entries),
        entry_cache_bytes(o.entry_cache_bytes),
        seed(o.seed),
        lease_reads(o.lease_reads),
        local_reads(o.local_reads),
        max_pending_tasks(o.max_pending_tasks),
        disk(o.disk),
        snap_dir(o.snap_dir),
        clock(o.clock),
        on_regions_changed(o.on_regions_changed),
        split_limits(o.split_limits),
        split_check_interval(o.split_check_interval),
        alloc_ids(o.alloc_ids),
        unsafe_local_reads(o.unsafe_local_reads),
        ack_before_commit(o.ack_before_commit),
        hibernate_regions(o.hibernate_regions),
        change_feeds(o.change_feeds) {}
  std::chrono::milliseconds tick_interval{100};
  int election_ticks = 10;
  int heartbeat_ticks = 2;
  // Compact a region's log when this many applied entries are kept (keeping half of
  // them as a tail for followers briefly behind) ...
  std::uint64_t log_gc_threshold = 10000;
  // ... or when the entries kept since the last compaction hold more than this many
  // bytes (keeping a quarter): large values must not pile up in the log (0: no limit).
  std::uint64_t log_gc_size_limit = 72ULL << 20;
  // Compact a region's log once this many entries are both applied and held by every
  // peer (the leader knows; it tells its followers on its appends): nobody needs them
  // from the log any more, and deleted soon they are dropped with the memtable instead
  // of being flushed and compacted (TiKV's raft-log-gc-threshold). 0: only the limits above.
  std::uint64_t log_gc_replicated_entries = 64;
  // Recent log entries kept in memory, for the whole store: each region gets an equal
  // share (at most 32 MiB), so memory does not grow with the number of regions.
  std::uint64_t entry_cache_bytes = 128ULL << 20;
  std::uint64_t seed = 1;
  // Serve reads under the leader lease (RegionPeer::lease_ms) instead of a ReadIndex
  // heartbeat round each. Safe while the stores' monotonic clocks run at rates within
  // a tick per election timeout of each other; rdb-server turns it on by default.
  bool lease_reads = false;
  // With lease_reads: a read inside the lease may be served on the thread that received
  // it (RaftStore::try_local_read, server/local_reader.h) instead of the Raft thread's.
  bool local_reads = true;
  // Requests and messages waiting for the Raft thread. Beyond this, proposals and
  // reads are refused with ServerIsBusy and peers' messages dropped (Raft resends).
  std::size_t max_pending_tasks = 100'000;
  // When set and full(), writes are refused with RegionError.disk_full.
  std::shared_ptr<DiskSpace> disk;
  // Where snapshots are generated and received (table files); required.
  std::string snap_dir;
  // What the loop's ticks (elections, heartbeats) and back-offs follow; a monotonic
  // clock when unset. Tests pass a ManualClock and call RaftStore::wake() after
  // moving it, so they step time instead of waiting for it.
  std::shared_ptr<Clock> clock;
  // Called on the loop thread (it must not block) when PD should hear from this store
  // now rather than at its next heartbeat: a split it leads applied, or one of its
  // peers became leader (e.g. of a region a split just made).
  std::function<void()> on_regions_changed;
  // Automatic splits: a leader checks its region's size every split_check_interval
  // once enough was written to it (a sixteenth of a limit), and splits it when it holds
  // more than 1.5 times a limit (see split_checker.h). The new ids come from
  // alloc_ids (PD; called off the loop); without it regions are never split automatically.
  SplitLimits split_limits;
  std::chrono::milliseconds split_check_interval{10'000};
  std::function<Result<std::uint64_t>(std::uint32_t count)> alloc_ids;
  // TEST ONLY: answer reads from local state on any replica, without ReadIndex or a
  // leader check. Breaks linearizability on purpose, so chaos tests can show they catch it.
  bool unsafe_local_reads = false;
  // TEST ONLY: acknowledge raw writes as soon as the leader appends them, before they
  // commit. Loses acknowledged writes on failover on purpose (chaos tests must catch it).
  bool ack_before_commit = false;
  // Idle regions stop ticking (server/hibernation.h).
  bool hibernate_regions = true;
  // Live change feeds (KvChangeFeed*): how many, their memory, when an unpolled one goes.
  ChangeFeedHub::Options change_feeds;
};

struct RegionStatus {
  metapb::Region region;
  metapb::Peer self;
  bool is_leader = false;
  metapb::Peer leader;  // unset when unknown
  std::uint64_t term = 0;
  std::uint64_t applied_index = 0;
  std::uint64_t commit_index = 0;
  // Leaders only: peers that need (or are installing) a snapshot, for PD.
  std::vector<metapb::Peer> pending_peers;
  std::uint64_t approximate_bytes = 0;  // see RegionPeer
  std::uint64_t approximate_keys = 0;
  std::uint64_t merging_into = 0;  // a prepared merge's target region; 0: none
};

class RaftStore {
 public:
  // Metrics (Raft proposals, commits, apply lag, persistence latency and batch
  // sizes) go to `metrics` when given; it must outlive the store.
  RaftStore(StorageEngine& engine, const RaftStoreConfig& config, RaftTransport& transport,
            MetricsRegistry* metrics = nullptr);
  ~RaftStore();
  RaftStore(const RaftStore&) = delete;
  RaftStore& operator=(const RaftStore&) = delete;

  // Loads every region peer persisted on this store. If none exists and
  // `bootstrap` is given, creates that region (this store must hold one of its
  // peers). Starts the Raft loop.
  Status start(const std::optional<metapb::Region>& bootstrap);
  // Stops the loop; pending proposals and reads are answered with ServerIsBusy.
  void stop();
  // Before start(): the loop waits on `poller` (which must outlive the loop) instead of
  // its condition variable.
  void set_poller(LoopPoller* poller) { poller_ = poller; }

  // Replicates a write. `keys` are checked against the region's range. A BATCH_SPLIT
  // (an admin command) is checked with check_split() and answered with every region
  // it left (KvCommandResult.split_regions).
  void propose(const kvrpc::Context& ctx, std::vector<std::string> keys, raft_serverpb::KvCommand cmd,
               ProposeCallback cb);
  // Answers `cb` once the region may serve a linearizable read. When `region` is given,
  // it receives the region as it was when the read was checked (written on the loop
  // thread before `cb` runs): a scan stops at its boundary.
  void read_index(const kvrpc::Context& ctx, std::vector<std::string> keys, ReadCallback cb,
                  std::shared_ptr<metapb::Region> region = nullptr);
  // May this read be served now on the calling thread, under the leader's lease, without
  // read_index (see server/local_reader.h)? When it may and `region` is given, it receives
  // the region the read was checked against. False: use read_index.
  bool try_local_read(const kvrpc::Context& ctx, std::span<const std::string> keys, metapb::Region* region = nullptr);
  // A Raft message from another store.
  void deliver(raftsvc::RaftMessage msg);
  // Membership change of a region (PD's replica checker): ADD_NODE / ADD_LEARNER_NODE / REMOVE_NODE.
  void change_peer(std::uint64_t region_id, raftpb::ConfChangeType type, const metapb::Peer& peer,
                   std::function<void(Status)> cb);
  // Several changes in one safe step (joint consensus; the leader leaves the joint
  // configuration by itself), e.g. promote a learner and remove a voter. Refused
  // (INVALID_ARGUMENT) when the region's rules would refuse it when applied.
  void change_peers(std::uint64_t region_id, std::vector<std::pair<raftpb::ConfChangeType, metapb::Peer>> changes,
                    std::function<void(Status)> cb);
  void transfer_leader(std::uint64_t region_id, std::uint64_t to_peer_id);
  // Merges region `source_id` (led here) into the adjacent `target_id` (peers on the
  // same stores, a replica here): `cb` reports whether PREPARE_MERGE applied; the rest
  // follows on its own (raft_store_merge.cc). UNAVAILABLE when not possible now
  // (not the leader, a replica behind, already merging), INVALID_ARGUMENT when never.
  void merge_region(std::uint64_t source_id, std::uint64_t target_id, std::function<void(Status)> cb);
  // Runs the loop once more now (it looks at the clock again): for tests that move a
  // ManualClock.
  void wake() {
    post([] {});
  }
  // Returns once the loop ran everything posted before (false: it did not within 10 s).
  bool sync();
  // Region peers asleep now (server/hibernation.h).
  std::size_t hibernating_regions() const { return hibernating_.load(); }
  // The first chunk of a snapshot arriving from another store: checks it and opens
  // the files it is written to. finish() on the receiver yields the message to deliver().
  Result<std::unique_ptr<SnapshotReceiver>> receive_snapshot(const raftsvc::RaftMessage& msg,
                                                             std::uint64_t total_bytes);
  // The transport's word on a snapshot sent to `to_peer_id`.
  void report_snapshot(std::uint64_t region_id, std::uint64_t to_peer_id, bool delivered);

  std::vector<RegionStatus> regions() const;
  // The Raft term in which this store leads the region, as last seen by the loop; nullopt
  // when it does not lead it (or has no peer of it).
  std::optional<std::uint64_t> leader_term(std::uint64_t region_id) const;
  // Counts and logs a message refused before it reached a peer (the transport uses it too).
  DroppedMessages& dropped_messages() { return dropped_; }
  std::uint64_t store_id() const { return config_.store_id.load(); }
  // The live change feeds of this store's regions (thread-safe).
  ChangeFeedHub& change_feeds() { return change_feeds_; }
  // Only before start(): the store id may be learned after the RaftStore is built.
  void set_store_id(std::uint64_t id) { config_.store_id = id; }

 private:
  using Peer = RegionPeer;

  // Queues a task for the loop; drops it (running its destructor, not it) when the
  // store stops or the queue is full.
  void post(std::function<void()> task);
  void run();
  // `reloaded`: the peer existed before (loaded at start, or reloaded after a failure)
  // and may have acknowledged a leader's lease it no longer remembers.
  Status create_peer(const metapb::Region& region, const metapb::Peer& self, bool fresh, bool reloaded = false);
  // A leader lease's length (RegionPeer::lease_ms): two ticks below the election timeout
  // (a follower's first tick after hearing from the leader may come at once, and a
  // tick's worth covers clock drift); 0 when lease reads are off.
  std::uint64_t lease_ms() const;
  Peer* find_peer(std::uint64_t region_id);
  // find_peer, woken from hibernation: a local request is about to use it.
  Peer* awake_peer(std::uint64_t region_id);
  // RegionNotFound when this store has no peer of the region, else the peer's own checks.
  std::optional<kvrpc::RegionError> check_context(Peer* peer, std::uint64_t region_id, const kvrpc::Context& ctx,
                                                  const std::vector<std::string>& keys) const;
  void handle_readies();
  // The snapshot Raft hands this peer (generated off the loop, see SnapManager).
  Result<raft::Snapshot> snapshot_for(Peer& peer);
  // Writes the received snapshot's position, the deletion of the region's old data
  // and an ingest marker to `wb`; the files are ingested once `wb` is durable.
  Status apply_snapshot(Peer& peer, const raft::Snapshot& snap, WriteBatch& wb);
  // Ingests a received snapshot's files, then clears the marker and deletes them.
  // Also run at start-up for a marker an earlier run left.
  Status finish_ingest(std::uint64_t region_id, const SnapshotFileList& files);
  void apply_committed(Peer& peer, const std::vector<raft::Entry>& entries, WriteBatch& wb,
                       std::vector<std::function<void()>>& replies);
  // Exec result of a membership change: the Raft node, conf state and region state follow.
  void on_change_peer(Peer& peer, const ChangePeerResult& change, std::uint64_t index, WriteBatch& wb,
                      std::vector<std::function<void()>>& replies);
  // Exec result of a batch split: the shrunk region is recorded, and this store's
  // peers of the new regions get their initial state in `wb`; they are created once
  // `wb` is durable (create_split_peers).
  void on_split(Peer& peer, SplitResult& split, WriteBatch& wb);
  // Writes a new region's initial Raft state (a snapshot position at index 5 holding
  // its configuration) and its region state.
  Status write_initial_state(const metapb::Region& region, WriteBatch& wb);
  void create_split_peers();
  // Hands the leaders that are due a split check to the split-check worker.
  void schedule_split_checks();
  // On the worker thread: proposes the split a check found (ids from alloc_ids).
  void split_after_check(const metapb::Region& region, Result<SplitCheck> check);
  // Compacts the peer's log: past the count or size limits (keeping a tail for peers
  // behind), or up to replicated_index() once log_gc_replicated_entries are there.
  void maybe_compact(Peer& peer, WriteBatch& wb);
  // The index up to which the log is applied here and no peer needs it any more: a
  // leader's lowest match among its peers, a follower's last hint from its leader.
  std::uint64_t replicated_index(const Peer& peer) const;
  void fail_all_pending(const std::string& why);
  // Runs `fn` on the peer; if the Raft core throws, marks the peer broken.
  template <typename Fn>
  void guarded(Peer& peer, const char* what, Fn&& fn);
  void reload_broken_peers();
  void mark_broken(Peer& peer);
  // A write to the engine failed (e.g. no space): nothing of this round may be
  // acknowledged; every peer in it restarts from disk and the loop backs off.
  void persist_failed(const std::vector<Peer*>& peers, const Status& why);
  // May a message for a region this store does not have create a peer? `replacing`
  // names a stale peer of the same region that the new one would replace.
  std::optional<raft::Rejection> may_create_peer(const raftsvc::RaftMessage& msg, std::uint64_t replacing = 0) const;
  void deliver_now(raftsvc::RaftMessage msg);
  // Is `region` (from a message) newer than our region `ours` that it overlaps, as a
  // region split off ours would be?
  bool newer_split_of(const metapb::Region& region, std::uint64_t ours) const;
  void on_tombstone(const raftsvc::RaftMessage& msg);
  // Tells a peer that is no longer a member of `peer`'s region so (it destroys itself).
  void send_tombstone(const Peer& peer, const metapb::Peer& to);
  // Removes the peer's Raft state and data from the engine. With `tombstone`, its region
  // state is replaced by that newer view (without this store), so it stays gone at restart.
  Status destroy_peer(Peer& peer, const std::optional<metapb::Region>& tombstone);
  void refresh_status();
  // Publishes the peer's lease to local_reader_ if it may serve local reads now (leader,
  // valid lease, everything committed applied), else revokes it. On the loop, for every
  // peer whose status is refreshed.
  void refresh_lease(std::uint64_t region_id);
  // At once, before what ends the lease early takes effect (see local_reader.h).
  void revoke_lease(std::uint64_t region_id);

  // Merge (raft_store_merge.cc).
  // The source replica here is at its PREPARE_MERGE, or is brought there (see MergeSourceReady).
  Result<bool> catch_up_merge_source(const raft_serverpb::MergeRequest& merge, WriteBatch& wb);
  // Whether catch_up_merge_source could succeed now (for blocked applies).
  bool merge_source_reachable(const raft_serverpb::MergeRequest& merge);
  void on_prepare_merge(Peer& peer, const raft_serverpb::MergeState& state, WriteBatch& wb);
  void on_commit_merge(Peer& peer, const metapb::Region& source, WriteBatch& wb);
  void on_rollback_merge(Peer& peer, WriteBatch& wb);
  // After the apply write: the merged sources' replicas go, the targets' ranges grow.
  void finish_merges();
  // Applies what waited behind a COMMIT_MERGE whose source is now prepared here.
  void resume_blocked_applies();
  // A merging source's leader: commit on the target, roll back, or move leadership.
  void drive_merge(Peer& peer);

  // Hibernation (raft_store_hibernation.cc).
  bool hibernation_enabled() const;
  void wake_peer(Peer& peer);
  void sleep_peer(Peer& peer);
  // After a leader's tick: count it idle, ask its followers to sleep, sleep once they all agreed.
  void maybe_hibernate(Peer& peer, std::vector<raftsvc::RaftMessage>& asks);
  void on_hibernate(const raftsvc::RaftMessage& msg);
  raftsvc::RaftMessage hibernate_signal(const Peer& peer, const metapb::Peer& to, bool ack) const;
  // Store heartbeats out; sleeping peers with a member on a store that fell silent wake.
  void liveness_round();

  struct Metrics {
    explicit Metrics(MetricsRegistry& r);
    Counter& proposals;
    Counter& proposals_refused;
    Counter& applied_entries;
    Counter& messages_sent;
    Counter& persists;
    Counter& synced_persists;
    Histogram& persist_seconds;
    Histogram& persist_entries;
    Histogram& persist_regions;
    Histogram& apply_seconds;
    Histogram& apply_entries;
    Counter& snapshots_applied;
    Counter& tasks_refused;
    Counter& local_reads;
    Counter& leader_changes;
  };
  void register_gauges(MetricsRegistry& registry);

  StorageEngine& engine_;
  std::unique_ptr<MetricsRegistry> own_metrics_;  // when the caller gives none
  Metrics metrics_;
  RaftStoreConfig config_;
  RaftTransport& transport_;
  KvApplier applier_;
  ChangeFeedHub change_feeds_;
  DroppedMessages dropped_;
  SnapManager snaps_;
  std::unique_ptr<SplitCheckWorker> split_checker_;  // when config_.alloc_ids is set

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  LoopPoller* poller_ = nullptr;
  bool polling_ = false;  // guarded by mu_: the loop is (about to be) in poller_->wait()
  std::thread thread_;
  std::shared_ptr<Clock> clock_;
  StoreLiveness liveness_;
  std::vector<std::uint64_t> peer_stores_;  // stores that hold peers of our regions (liveness_round)
  std::uint64_t liveness_rounds_ = 0;
  std::atomic<std::size_t> hibernating_{0};
  // Owned by the loop thread: after a failed engine write, no Ready is handled before
  // this (clock_ milliseconds; 0 = no back-off).
  std::uint64_t engine_retry_at_ = 0;
  std::string engine_failure_;  // why the last engine write failed (told to writes left undetermined)

  // Owned by the loop thread.
  std::map<std::uint64_t, std::unique_ptr<Peer>> peers_;
  // Region ids of peers that are not hibernating (they tick; the only ones with a Ready
  // unless a message reached a sleeping one: touched_). Stale ids are skipped.
  std::set<std::uint64_t> awake_;
  std::set<std::uint64_t> touched_;
  // Whose RegionStatus to rebuild at the next refresh_status (the rest stand).
  std::set<std::uint64_t> status_dirty_;
  bool any_broken_ = false;                                // some peer waits for reload_broken_peers
  std::set<std::uint64_t> blocked_;                        // regions whose apply waits behind a COMMIT_MERGE
  static constexpr std::size_t kMaxBlockedEntries = 4096;  // held in memory per region, then reloaded
  std::vector<std::pair<std::uint64_t, std::uint64_t>> merged_sources_;  // (source, target) this round
  std::set<std::uint64_t> merged_away_;  // those sources: nothing more of theirs applies this round
  // The ranges of the initialized peers in peers_ (not removed).
  RegionRangeIndex ranges_;
  // Snapshots written to this round's Raft batch, ingested once it is durable.
  std::vector<std::pair<std::uint64_t, SnapshotFileList>> ingests_;
  // Peers of regions a split created, to create once this round's apply batch is durable.
  struct SplitPeer {
    metapb::Region region;
    metapb::Peer self;
    bool campaign = false;  // the split region's leader was here: start an election now
  };
  std::vector<SplitPeer> split_peers_;
  bool regions_changed_ = false;  // this round: a split it leads, or a new leader (on_regions_changed)
  // Messages for a region overlapping one this store holds, kept for when a split
  // applies here: the new region's leader (on a store that applied the split first)
  // talks before this store has applied it. Bounded; the oldest go first.
  std::deque<raftsvc::RaftMessage> held_for_split_;
  // Leases other threads read under (thread-safe), and what the loop last published
  // there, so a round that changed nothing publishes nothing.
  LocalReader local_reader_;
  struct PublishedLease {
    std::uint64_t until_ms = 0;
    std::uint64_t term = 0;
    std::uint64_t conf_ver = 0;
    std::uint64_t version = 0;
    bool operator==(const PublishedLease&) const = default;
  };
  std::map<std::uint64_t, PublishedLease> published_leases_;  // owned by the loop thread
  // A copy for other threads (status, routing), refreshed by the loop.
  mutable std::mutex status_mu_;
  std::map<std::uint64_t, RegionStatus> status_;  // by region id
};

}  // namespace rdb
