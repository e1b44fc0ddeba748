// rdb C++ client library.
//
// RdbClient talks to an rdb cluster: it asks PD where a key lives (or is pointed
// at one store directly), sends each request to that store with the region
// context, and on a routing error (region moved, epoch changed, store busy)
// refreshes its routing and retries with back-off until the call's deadline.
//
// Errors are values: every call returns a Status or Result<T>. A missing key and
// a CAS conflict are results, not errors. Error codes mean:
//   INVALID_ARGUMENT   bad input (limits: key 1 B..8 KiB, value <= 8 MiB, scan limit 1..10240)
//   UNAVAILABLE        no server could be reached; the request was not applied
//   DEADLINE_EXCEEDED  a read ran out of time
//   UNDETERMINED       a write whose outcome is unknown (it may or may not have
//                      been applied): the client never retries such a write into a
//                      different answer, and tells you instead
//   INTERNAL           the server failed; the message says how
//   ABORTED            a transaction conflicted and applied nothing; retry it
// Every call has a deadline (ClientOptions::timeout), so no call hangs.
//
// Thread safety: an RdbClient may be shared by any number of threads; calls are
// independent. Concurrent get_tso() callers share PD round trips (batching).
// Ownership: the client owns its connections; destroy it after the last call.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "rdb/result.h"

namespace rdb {

struct ClientOptions {
  // PD endpoints (HOST:PORT); the first reachable one is used. Needed for TSO,
  // and for routing unless `store_addr` is set.
  std::vector<std::string> pd_endpoints;
  // Talk to this store directly (HOST:PORT) instead of asking PD for routing.
  std::string store_addr;
  // Deadline applied to every call, retries included.
  std::chrono::milliseconds timeout{std::chrono::seconds(10)};
  // A store that answers nothing at all for this long while a point request waits
  // on it is probed (a cheap StoreInfo call served off its Raft thread); if the probe
  // gets no answer within the same time either, the store is hung (paused,
  // partitioned, stuck): a read waiting there is sent to another replica, a write
  // comes back UNDETERMINED at once instead of at `timeout`, and new requests avoid
  // that store until it answers a probe again (they reach the region's new leader
  // through its other replicas). A store that is merely busy (a big write, a slow
  // disk) answers the probe and is waited for. Applies to batched point requests.
  std::chrono::milliseconds attempt_timeout{std::chrono::seconds(1)};
  // Mutual TLS (PEM file paths; all three or none): the client verifies PD and stores
  // against `tls_ca` and presents `tls_cert`. Empty: plaintext. Same as --ca/--cert/--key.
  std::string tls_ca;
  std::string tls_cert;
  std::string tls_key;
  // Send point requests (raw get/put/delete, get, cas) over one BatchCommands
  // stream per store, packing concurrent requests into shared messages. Off: one
  // unary gRPC call per request (same outcomes, more overhead per request).
  bool batch_requests = true;
  // A transaction whose keys are all in one region commits in one step (1PC: one
  // prewrite that the region's leader commits, no locks left). Off: always two phases.
  bool txn_one_pc = true;
  // Threads that run asynchronous calls which must block (see "asynchronous calls" below):
  // at most this many such calls make progress at once; the others wait their turn.
  std::size_t async_threads = 4;
};

// What an asynchronous call runs with its outcome: exactly once, on one of the client's
// threads (never inside the call that started it). It must be quick and must not block; it
// may start further calls, blocking ones included only if it does not wait on their results
// from inside a point call's completion (post such work to a thread of your own).
template <typename T>
using Callback = std::function<void(Result<T>)>;
using StatusCallback = std::function<void(Status)>;

struct KeyValue {
  std::string key;
  std::string value;
  bool operator==(const KeyValue&) const = default;
};

// A transactional read with the commit timestamp of the version read (0: this
// transaction's own, uncommitted write).
struct TxnVersion {
  std::string key;
  std::string value;
  std::uint64_t commit_ts = 0;
  bool operator==(const TxnVersion&) const = default;
};

// A committed change of a transactional key: a put (its value) or a delete, at commit_ts,
// with the version it replaced when asked for (TxnChanges::with_prev).
struct TxnChange {
  std::string key;
  std::uint64_t commit_ts = 0;
  bool deleted = false;
  std::string value;                   // a put's value
  std::optional<TxnVersion> previous;  // the key's version before this change, if it existed
  bool operator==(const TxnChange&) const = default;
};

struct VersionedValue {
  bool found = false;
  std::string value;
  std::uint64_t version = 0;  // 0 when not found
};

struct CasResult {
  bool succeeded = false;
  // On success the key's new version; on conflict its current version (0 if absent).
  std::uint64_t version = 0;
  bool current_found = false;  // on conflict: whether the key exists now
  std::string current_value;   // on conflict: its value
};

struct ScanOptions {
  std::uint32_t limit = 100;  // 1..10240
  bool reverse = false;       // descending key order over the same [start, end)
  bool keys_only = false;     // values come back empty
};

// One member of the PD group.
struct PdMemberInfo {
  std::string name;
  std::uint64_t id = 0;
  std::string address;  // HOST:PORT
  bool leader = false;  // the group's current leader, as the answering member knows it
};

struct PeerInfo {
  std::uint64_t id = 0;
  std::uint64_t store_id = 0;
  bool is_learner = false;
  // "voter" or "learner"; during a joint membership change also "incoming_voter",
  // "demoting_voter" (a learner when it ends) or "leaving_voter" (removed when it ends).
  std::string role = "voter";
};

struct RegionInfo {
  std::uint64_t id = 0;
  std::string start_key;  // inclusive
  std::string end_key;    // exclusive; empty = to the end of the key space
  std::uint64_t conf_ver = 0;
  std::uint64_t version = 0;
  PeerInfo leader;  // id 0 when PD knows no leader
  std::vector<PeerInfo> peers;
  // Keys and values as written, as the leader last measured them; 0 when not yet.
  std::uint64_t approximate_size = 0;
  std::uint64_t approximate_keys = 0;
};

struct StoreInfo {
  std::uint64_t id = 0;
  std::string address;
  std::string status_address;
  std::string state;  // "up", "down" (no heartbeat recently), "offline" (being removed) or "tombstone"
  std::uint64_t region_count = 0;
  std::uint64_t leader_count = 0;
  std::uint64_t last_heartbeat_age_ms = 0;
  std::uint64_t capacity_bytes = 0;  // of the store's data dir file system
  std::uint64_t available_bytes = 0;
  std::uint64_t region_size = 0;  // approximate sizes of the regions with a replica here, summed
};

struct ClusterStatus {
  std::uint64_t cluster_id = 0;
  std::vector<StoreInfo> stores;
  std::vector<RegionInfo> regions;
  std::uint32_t max_replicas = 0;
};

// A transaction with snapshot isolation (Percolator on PD's timestamps), from
// RdbClient::begin(). Reads see every transaction committed before start_ts() and
// nothing after, plus this transaction's own writes; writes are buffered here until
// commit(). The transactional key space is its own: keys written through the raw or
// versioned APIs are not visible here, nor these there.
//
// commit() prewrites every key (a lock naming the primary key, the first in key
// order), takes commit_ts from PD, and commits the primary: that is the commit
// point. The other keys' locks are then committed, or rolled forward later by any
// reader that meets them. When one region holds every key (and ClientOptions::txn_one_pc),
// the prewrite itself commits them (1PC) at a timestamp the region's leader chooses
// above every read it served; a 1PC whose answer is lost is settled by a rollback,
// which reports the commit if it happened. Results:
//   OK            committed at commit_ts() (also for a transaction that wrote nothing)
//   ABORTED       a write conflict (another transaction committed one of the keys after
//                 start_ts) or a lock that stayed: nothing applied, the locks taken
//                 are rolled back; start a new transaction and retry
//   UNDETERMINED  the primary's commit was sent but its answer lost: it may or may
//                 not have committed; never reported as a failure
//   other codes   as for RdbClient calls (nothing applied when they come before the
//                 primary's commit)
// Reads that meet another transaction's lock resolve it (its primary decides: roll
// forward if committed, back if its lock expired) or wait for it, within the deadline.
// After commit() or rollback() only start_ts()/commit_ts() may be called.
// Thread safety: one thread at a time per transaction. Destroying an unfinished
// transaction rolls back its buffer (nothing was written before commit()).
class Transaction {
 public:
  virtual ~Transaction() = default;
  virtual std::uint64_t start_ts() const = 0;
  // The commit timestamp once commit() succeeded; 0 before.
  virtual std::uint64_t commit_ts() const = 0;
  // nullopt when the key does not exist in this transaction's view.
  virtual Result<std::optional<std::string>> get(const std::string& key) = 0;
  // The pairs that exist, in the order of `keys`.
  virtual Result<std::vector<KeyValue>> batch_get(const std::vector<std::string>& keys) = 0;
  // Pairs in [start, end) (end "" = unbounded), at most `limit` (1..10240), in key
  // order: one snapshot across every region.
  virtual Result<std::vector<KeyValue>> scan(const std::string& start, const std::string& end, std::uint32_t limit) = 0;
  // get / scan that also say when each version read committed (its commit_ts; 0 for this
  // transaction's own writes): what an MVCC layer on top needs (e.g. etcd's mod_revision).
  virtual Result<std::optional<TxnVersion>> get_versioned(const std::string& key) = 0;
  virtual Result<std::vector<TxnVersion>> scan_versioned(const std::string& start, const std::string& end,
                                                         std::uint32_t limit) = 0;
  // Every committed put and delete in [start, end) (end "" = unbounded) with a commit
  // timestamp in (after_ts, start_ts()], in key order and, within a key, oldest first; at
  // least `limit` (1..10240) changes unless the range holds fewer (a key's changes are never
  // split: the last key's all come). Final: once answered, no commit at or below start_ts()
  // can still appear in the range (the read waits out or resolves locks, as a scan does), so
  // a change feed that reads (a, b], then (b, c], ... misses and repeats nothing. `*next`
  // is where to go on ("" when the range is done). A window reaching below the GC safe point
  // is refused (INVALID_ARGUMENT). Not this transaction's own writes. For a snapshot_at(ts).
  virtual Result<std::vector<TxnChange>> changes(const std::string& start, const std::string& end,
                                                 std::uint64_t after_ts, std::uint32_t limit, bool with_prev,
                                                 std::string* next) = 0;
  virtual Status put(const std::string& key, const std::string& value) = 0;
  virtual Status erase(const std::string& key) = 0;
  // Guards a key this transaction read but does not write: commit() then fails with
  // ABORTED if another transaction committed the key after start_ts (the key is
  // prewritten as a lock and committed as no change). This makes a read-decide-write
  // serializable for the keys locked, as if they had been written. A transaction that
  // writes nothing commits nothing, locks included. Counts toward the key limit.
  virtual Status lock(const std::string& key) = 0;
  virtual Status commit() = 0;
  // Discards the buffered writes (and any locks a failed commit left). OK when done.
  virtual Status rollback() = 0;

  // The same calls without blocking the caller: each runs the blocking call on the client's
  // worker pool (ClientOptions::async_threads) and hands its outcome to `done` (see Callback).
  // Calls on one transaction must still not overlap: start the next from the previous one's
  // `done` (or after it ran). The transaction must outlive `done`.
  virtual void get_async(std::string key, Callback<std::optional<std::string>> done) = 0;
  virtual void batch_get_async(std::vector<std::string> keys, Callback<std::vector<KeyValue>> done) = 0;
  virtual void scan_async(std::string start, std::string end, std::uint32_t limit,
                          Callback<std::vector<KeyValue>> done) = 0;
  virtual void commit_async(StatusCallback done) = 0;
  virtual void rollback_async(StatusCallback done) = 0;
};

// A live feed of the committed puts and deletes in a key range of the transactional key
// space, from RdbClient::open_change_feed(): what a watch (etcd's) is built on. The stores
// leading the range's regions keep each commit they apply there from the feed's opening
// on (bounded by their --change-feed-memory); next() collects them up to a resolved
// timestamp — one at which no commit at or below it can still appear in the range — so a
// reader that asks for (a, b], then (b, c], ... misses and repeats nothing.
// Commits before the feed opened are not in it: read (after, floor()] with
// Transaction::changes first (a snapshot_at(floor())).
// A feed can be lost — a region split or moved its leader, a store restarted, installed a
// snapshot over the range or ran out of feed memory: next() then answers UNAVAILABLE
// (message starting "change feed lost"); open a new feed and catch up by scanning again.
// Thread safety: one thread at a time per feed. Destroying it tells the stores (they also
// drop a feed nobody polled for --change-feed-idle-ms).
class ChangeFeed {
 public:
  virtual ~ChangeFeed() = default;
  // Every change in the range may be missing up to this timestamp (which PD handed out).
  virtual std::uint64_t floor() const = 0;
  // The changes with a commit timestamp in (after, *resolved], ordered by commit timestamp,
  // then key; *resolved is a fresh timestamp, or less when the stores cut a large answer
  // (call again). `after` must be at least floor(). Each change carries the version it
  // replaced when the feed was opened with_prev.
  virtual Result<std::vector<TxnChange>> next(std::uint64_t after, std::uint64_t* resolved) = 0;
  // next() on the client's worker pool; `done` gets the changes and the resolved timestamp.
  // The feed must outlive `done`.
  struct Batch {
    std::vector<TxnChange> changes;
    std::uint64_t resolved = 0;
  };
  virtual void next_async(std::uint64_t after, Callback<Batch> done) = 0;
};

class RdbClient {
 public:
  // Validates the options and prepares connections. Does not fail when servers
  // are down: calls report that, each within its deadline.
  static Result<std::unique_ptr<RdbClient>> connect(ClientOptions options);
  virtual ~RdbClient() = default;

  // ---- raw key space: last writer wins
  // Writes (here and CAS) are never re-sent once they may have reached a store: a lost
  // connection mid-request yields UNDETERMINED rather than a retry that could re-apply
  // an old value over a newer one.
  virtual Status raw_put(const std::string& key, const std::string& value) = 0;
  // nullopt when the key does not exist.
  virtual Result<std::optional<std::string>> raw_get(const std::string& key) = 0;
  virtual Status raw_delete(const std::string& key) = 0;
  // Pairs in [start, end) (end "" = unbounded), at most options.limit, in key order
  // (descending with options.reverse). A range over many regions is read region by
  // region and stitched: every key once, in order; each region's part is a
  // linearizable read of its own (not one snapshot of the whole range).
  virtual Result<std::vector<KeyValue>> raw_scan(const std::string& start, const std::string& end,
                                                 const ScanOptions& options) = 0;
  // The pairs that exist, in the order of `keys` (one request per region holding some).
  virtual Result<std::vector<KeyValue>> raw_batch_get(const std::vector<std::string>& keys) = 0;
  // Atomic within one region: all its pairs or none. Across regions each region's
  // part is atomic on its own; an error may leave some regions' parts applied (its
  // message says how many), and UNDETERMINED means a part's outcome is unknown.
  virtual Status raw_batch_put(const std::vector<KeyValue>& pairs) = 0;
  // As raw_batch_put: atomic per region.
  virtual Status raw_batch_delete(const std::vector<std::string>& keys) = 0;
  // Deletes every key in [start, end); both bounds required. Atomic per region.
  virtual Status raw_delete_range(const std::string& start, const std::string& end) = 0;

  // ---- versioned key space
  virtual Result<VersionedValue> get(const std::string& key) = 0;
  // Writes `new_value` (or deletes the key when nullopt) iff the key's version is
  // `expected_version` (0 = the key must not exist). Never retried after it may
  // have reached a server: an unknown outcome is reported as UNDETERMINED.
  virtual Result<CasResult> cas(const std::string& key, std::uint64_t expected_version,
                                const std::optional<std::string>& new_value) = 0;

  // ---- transactional key space
  // Starts a transaction at a fresh timestamp from PD (needs a PD endpoint).
  virtual Result<std::unique_ptr<Transaction>> begin() = 0;
  // A read-only snapshot at `ts`, a timestamp PD already handed out (e.g. an earlier
  // transaction's commit_ts): reads see exactly what committed at or before it; put,
  // erase and commit are refused (INVALID_ARGUMENT), as is a `ts` of 0 or one PD has not
  // reached yet. A `ts` below the GC safe point is refused by the reads.
  virtual Result<std::unique_ptr<Transaction>> snapshot_at(std::uint64_t ts) = 0;
  // A live change feed of [start, end) (end "" = unbounded); see ChangeFeed. with_prev:
  // each change also carries the version it replaced. UNAVAILABLE when a store refuses
  // more feeds (its --max-change-feeds).
  virtual Result<std::unique_ptr<ChangeFeed>> open_change_feed(const std::string& start, const std::string& end,
                                                               bool with_prev) = 0;

  // ---- garbage collection of transactional versions
  // Raises the GC safe point to `ts` (never lowers it): versions a read at or after `ts`
  // does not see may be removed, and reads below it are refused (INVALID_ARGUMENT) once
  // the stores learn it (at their next PD heartbeat). `ts` 0 changes nothing. Returns the
  // safe point before and after. INVALID_ARGUMENT for a `ts` PD has not reached yet.
  struct GcSafePoint {
    std::uint64_t previous = 0;
    std::uint64_t current = 0;
  };
  virtual Result<GcSafePoint> update_gc_safe_point(std::uint64_t ts) = 0;

  // ---- timestamps
  // Reserves `count` (1..65536) consecutive timestamps and returns the first.
  virtual Result<std::uint64_t> get_tso(std::uint32_t count = 1) = 0;
  // The same without blocking a thread per caller: `done` runs once the batch
  // holding this request is answered (or fails), on one of the client's two TSO
  // threads. It must be quick and must not block; it may call get_tso_async again.
  // The client's timeout applies as for get_tso. This is how many concurrent callers
  // share a round trip without paying a thread wake-up each.
  virtual void get_tso_async(
      std::uint32_t count,
      std::function<void(Result<std::uint64_t>)> done) {  // NOLINT(performance-unnecessary-value-param)
    done(get_tso(count));
  }

  // ---- cluster
  // Stores and regions as PD sees them (needs a PD endpoint).
  virtual Result<ClusterStatus> cluster_status() = 0;
  // Takes a store out of the cluster: PD moves its replicas to other stores,
  // then marks it a tombstone. Returns once PD has accepted the request.
  virtual Status remove_store(std::uint64_t store_id) = 0;
  // Moves region `region_id`'s replica on store `from_store` to store `to_store`: PD adds
  // a learner there and, once it caught up, swaps it in for the old replica in one joint
  // step. Returns once PD has accepted the request (INVALID_ARGUMENT when the region has
  // no voter on `from_store`, already has a peer on `to_store`, or that store is not live).
  virtual Status move_peer(std::uint64_t region_id, std::uint64_t from_store, std::uint64_t to_store) = 0;
  // The PD group's members (any member answers; needs a PD endpoint).
  virtual Result<std::vector<PdMemberInfo>> pd_members() = 0;
  // Adds a member to the PD group through a Raft membership change; returns the members
  // after it. Start the new rdb-pd (--initial-cluster-state existing) after this returns.
  // INVALID_ARGUMENT when the name or address is taken or malformed.
  virtual Result<std::vector<PdMemberInfo>> add_pd_member(const std::string& name, const std::string& address) = 0;
  // Removes a member (the leader hands over first); returns the members after it.
  // INVALID_ARGUMENT when there is no such member, or it is the last one.
  virtual Result<std::vector<PdMemberInfo>> remove_pd_member(const std::string& name) = 0;
  // Splits the regions holding `keys` at those keys (1..64 per region); a key that
  // already starts a region needs nothing. Returns the regions that now hold the
  // keys' ranges, in key order. Needs PD (the stores take the new ids from it).
  virtual Result<std::vector<RegionInfo>> split(const std::vector<std::string>& keys) = 0;

  // ---- asynchronous calls
  // Every call above has an asynchronous twin that returns at once and hands the outcome to
  // `done` (see Callback): the same results, codes and deadline (ClientOptions::timeout from
  // the moment it is called) as the blocking call of the same name.
  // How they run:
  //  - the point calls (raw_get, raw_put, raw_delete, get, cas) whose region the client has
  //    located already travel on the store's request stream (ClientOptions::batch_requests)
  //    and hold no thread while they wait: one thread can keep thousands in flight. `done`
  //    runs on the gRPC thread that received the answer, or on the client's timer thread
  //    when the deadline passes first. A routing error that itself says where to go (not
  //    leader, naming a leader on a store the client has looked up; a split or merge, listing
  //    the current regions; server busy, after its back-off) is followed the same way, up to
  //    three times per call;
  //  - everything else — a point call whose region must first be asked of PD (also after a
  //    routing error that names no destination, e.g. during an election), multi-key and range
  //    calls, transactions, cluster calls — runs as the blocking call on the client's worker
  //    pool: at most ClientOptions::async_threads of them at once, the rest queued in call order.
  // Destroying the client ends the calls still in flight: their `done` runs first (a point
  // call's with UNAVAILABLE or, for a write that may have been sent, UNDETERMINED).
  virtual void raw_put_async(std::string key, std::string value, StatusCallback done) = 0;
  virtual void raw_get_async(std::string key, Callback<std::optional<std::string>> done) = 0;
  virtual void raw_delete_async(std::string key, StatusCallback done) = 0;
  virtual void raw_scan_async(std::string start, std::string end, ScanOptions options,
                              Callback<std::vector<KeyValue>> done) = 0;
  virtual void raw_batch_get_async(std::vector<std::string> keys, Callback<std::vector<KeyValue>> done) = 0;
  virtual void raw_batch_put_async(std::vector<KeyValue> pairs, StatusCallback done) = 0;
  virtual void raw_batch_delete_async(std::vector<std::string> keys, StatusCallback done) = 0;
  virtual void raw_delete_range_async(std::string start, std::string end, StatusCallback done) = 0;
  virtual void get_async(std::string key, Callback<VersionedValue> done) = 0;
  virtual void cas_async(std::string key, std::uint64_t expected_version, std::optional<std::string> new_value,
                         Callback<CasResult> done) = 0;
  virtual void begin_async(Callback<std::unique_ptr<Transaction>> done) = 0;
  virtual void snapshot_at_async(std::uint64_t ts, Callback<std::unique_ptr<Transaction>> done) = 0;
  virtual void open_change_feed_async(std::string start, std::string end, bool with_prev,
                                      Callback<std::unique_ptr<ChangeFeed>> done) = 0;
  virtual void update_gc_safe_point_async(std::uint64_t ts, Callback<GcSafePoint> done) = 0;
  virtual void cluster_status_async(Callback<ClusterStatus> done) = 0;
  virtual void remove_store_async(std::uint64_t store_id, StatusCallback done) = 0;
  virtual void move_peer_async(std::uint64_t region_id, std::uint64_t from_store, std::uint64_t to_store,
                               StatusCallback done) = 0;
  virtual void pd_members_async(Callback<std::vector<PdMemberInfo>> done) = 0;
  virtual void add_pd_member_async(std::string name, std::string address, Callback<std::vector<PdMemberInfo>> done) = 0;
  virtual void remove_pd_member_async(std::string name, Callback<std::vector<PdMemberInfo>> done) = 0;
  virtual void split_async(std::vector<std::string> keys, Callback<std::vector<RegionInfo>> done) = 0;
  // get_tso_async (above) is the asynchronous get_tso.
};

// Timestamp layout: physical milliseconds since the Unix epoch << 18 | logical.
inline std::uint64_t tso_physical_ms(std::uint64_t ts) {
  return ts >> 18;
}
inline std::uint64_t tso_logical(std::uint64_t ts) {
  return ts & ((std::uint64_t{1} << 18) - 1);
}

}  // namespace rdb
