// The client's side of Percolator: buffered writes, two-phase commit with the
// primary key as the commit point, and the lock resolver (see Transaction in
// include/rdb/client.h).
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "client/txn_sender.h"
#include "common/limits.h"
#include "common/logging.h"

namespace rdb {
namespace {

using Clock = std::chrono::steady_clock;

// A lock lives this long without a heart beat; a bigger transaction gets longer
// (its prewrite takes longer), growing with the square root of its size.
constexpr std::uint64_t kBaseLockTtlMs = 3000;
constexpr std::uint64_t kMaxLockTtlMs = 120'000;

// How far above the present a one-phase commit may land (50 ms of PD's clock): readers
// that started meanwhile push the store's max_ts a little past it under load.
constexpr std::uint64_t kOnePcCommitWindow = std::uint64_t{50} << 18;

std::uint64_t physical_ms(std::uint64_t ts) {
  return ts >> 18;
}

// `bytes` of keys and values in `keys` keys. Each key costs a prewrite about as much as
// 1 KiB of value does, so a transaction of many small keys (a 25,000-key delete) gets the
// time its parts take to prewrite before readers may judge it dead and roll it back.
std::uint64_t lock_ttl_for(std::size_t bytes, std::size_t keys) {
  double mib = static_cast<double>(bytes + keys * 1024) / (1024.0 * 1024.0);
  auto extra = static_cast<std::uint64_t>(6000.0 * std::sqrt(mib));
  return std::min(kBaseLockTtlMs + extra, kMaxLockTtlMs);
}

std::string printable(const std::string& key) {
  return printable_key(key, 64);
}

// Keeps a large transaction's primary lock alive while the rest of it is prewritten (TiKV's
// TTL manager): a prewrite of many requests can take longer than the lock's TTL, and readers
// would then roll the transaction back under it. Heart-beats the primary every third of the
// TTL (at most every second) with a TTL counted from the prewrite's start; a beat before the
// primary's lock exists, or that fails, changes nothing (the commit checks the primary after).
class PrimaryKeepAlive {
 public:
  PrimaryKeepAlive(TxnSender& sender, std::string primary, std::uint64_t start_ts, std::uint64_t ttl_ms)
      : thread_([this, &sender, primary = std::move(primary), start_ts, ttl_ms] {
          const auto started = Clock::now();
          const auto every = std::clamp(std::chrono::milliseconds(ttl_ms / 3), std::chrono::milliseconds(50),
                                        std::chrono::milliseconds(1000));
          std::unique_lock lock(mu_);
          while (!cv_.wait_for(lock, every, [this] { return stop_; })) {
            lock.unlock();
            kvrpc::KvTxnHeartBeatRequest hb;
            hb.set_primary_lock(primary);
            hb.set_start_version(start_ts);
            auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
            hb.set_advise_lock_ttl(static_cast<std::uint64_t>(elapsed.count()) + ttl_ms);
            (void)sender.kv_heart_beat(hb);
            lock.lock();
          }
        }) {}
  ~PrimaryKeepAlive() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  PrimaryKeepAlive(const PrimaryKeepAlive&) = delete;
  PrimaryKeepAlive& operator=(const PrimaryKeepAlive&) = delete;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;   // guarded by mu_
  std::thread thread_;  // last: started once the members it uses exist
};

class TxnImpl final : public Transaction {
 public:
  TxnImpl(TxnSender& sender, std::uint64_t start_ts, bool try_one_pc, bool read_only = false)
      : s_(sender), start_ts_(start_ts), try_one_pc_(try_one_pc), read_only_(read_only) {}
  ~TxnImpl() override {
    if (!finished_) {
      (void)rollback();
    }
  }

  std::uint64_t start_ts() const override { return start_ts_; }
  std::uint64_t commit_ts() const override { return commit_ts_; }

  Result<std::optional<std::string>> get(const std::string& key) override {
    RDB_RETURN_IF_ERROR(usable());
    RDB_RETURN_IF_ERROR(validate_key(key));
    if (auto it = buffer_.find(key); it != buffer_.end()) {
      return it->second;
    }
    RDB_ASSIGN_OR_RETURN(auto got, snapshot_get(key));
    if (!got) {
      return std::optional<std::string>();
    }
    return std::optional<std::string>(std::move(got->value));
  }

  Result<std::optional<TxnVersion>> get_versioned(const std::string& key) override {
    RDB_RETURN_IF_ERROR(usable());
    RDB_RETURN_IF_ERROR(validate_key(key));
    if (auto it = buffer_.find(key); it != buffer_.end()) {
      if (!it->second) {
        return std::optional<TxnVersion>();
      }
      return std::optional<TxnVersion>(TxnVersion{key, *it->second, 0});
    }
    return snapshot_get(key);
  }

  Result<std::vector<TxnVersion>> scan_versioned(const std::string& start, const std::string& end,
                                                 std::uint32_t limit) override {
    return merged_scan(start, end, limit);
  }

  Result<std::vector<KeyValue>> batch_get(const std::vector<std::string>& keys) override {
    RDB_RETURN_IF_ERROR(usable());
    RDB_RETURN_IF_ERROR(validate_batch_size(keys.size()));
    std::map<std::string, std::optional<std::string>> found;
    kvrpc::KvBatchGetRequest req;
    req.set_version(start_ts_);
    for (const auto& k : keys) {
      RDB_RETURN_IF_ERROR(validate_key(k));
      if (auto it = buffer_.find(k); it != buffer_.end()) {
        found[k] = it->second;
      } else if (found.emplace(k, std::nullopt).second) {
        req.add_keys(k);
      }
    }
    if (req.keys_size() > 0) {
      RDB_RETURN_IF_ERROR(until_unlocked([&]() -> Result<std::optional<txnpb::LockInfo>> {
        std::optional<txnpb::LockInfo> met;
        RDB_RETURN_IF_ERROR(s_.kv_batch_get(req, [&](kvrpc::KvBatchGetResponse& resp) -> Status {
          if (resp.has_error()) {
            RDB_ASSIGN_OR_RETURN(met, lock_of(resp.error()));
            return Status::ok();
          }
          for (auto& kv : *resp.mutable_pairs()) {
            found[kv.key()] = std::move(*kv.mutable_value());
          }
          return Status::ok();
        }));
        return met;
      }));
    }
    std::vector<KeyValue> out;
    for (const auto& k : keys) {
      if (auto it = found.find(k); it != found.end() && it->second) {
        out.push_back({k, *it->second});
      }
    }
    return out;
  }

  Result<std::vector<KeyValue>> scan(const std::string& start, const std::string& end, std::uint32_t limit) override {
    RDB_ASSIGN_OR_RETURN(auto versions, merged_scan(start, end, limit));
    std::vector<KeyValue> out;
    out.reserve(versions.size());
    for (auto& v : versions) {
      out.push_back({std::move(v.key), std::move(v.value)});
    }
    return out;
  }

  Result<std::vector<TxnChange>> changes(const std::string& start, const std::string& end, std::uint64_t after_ts,
                                         std::uint32_t limit, bool with_prev, std::string* next) override {
    RDB_RETURN_IF_ERROR(usable());
    RDB_RETURN_IF_ERROR(validate_scan_limit(limit));
    RDB_RETURN_IF_ERROR(validate_range(start, end, false));
    if (after_ts >= start_ts_) {
      return Status::invalid_argument(
          fmt::format("changes after {} in a snapshot at {}: an empty window", after_ts, start_ts_));
    }
    kvrpc::KvScanChangesRequest req;
    req.set_start_key(start);
    req.set_end_key(end);
    req.set_version(start_ts_);
    req.set_from_version(after_ts);
    req.set_with_prev(with_prev);
    std::vector<TxnChange> out;
    next->clear();
    for (;;) {
      req.set_limit(limit - static_cast<std::uint32_t>(out.size()));  // below limit here
      kvrpc::KvScanChangesResponse resp;
      RDB_RETURN_IF_ERROR(until_unlocked([&]() -> Result<std::optional<txnpb::LockInfo>> {
        RDB_ASSIGN_OR_RETURN(resp, s_.kv_scan_changes(req));
        if (resp.has_error()) {
          return lock_of(resp.error());
        }
        return std::optional<txnpb::LockInfo>();
      }));
      for (auto& c : *resp.mutable_changes()) {
        TxnChange change{std::move(*c.mutable_key()), c.commit_ts(), c.deleted(), std::move(*c.mutable_value()), {}};
        if (c.has_prev()) {
          change.previous = TxnVersion{change.key, std::move(*c.mutable_prev_value()), c.prev_commit_ts()};
        }
        out.push_back(std::move(change));
      }
      if (!resp.truncated() && !resp.region_boundary()) {
        return out;  // the range is done
      }
      if (resp.next_key() <= req.start_key()) {
        return Status::internal("a store answered a change scan with a continuation key that does not move on");
      }
      if (!end.empty() && resp.next_key() >= end) {
        return out;
      }
      if (out.size() >= limit) {
        *next = resp.next_key();
        return out;
      }
      req.set_start_key(resp.next_key());
    }
  }

  Status put(const std::string& key, const std::string& value) override {
    RDB_RETURN_IF_ERROR(writable());
    RDB_RETURN_IF_ERROR(validate_key(key));
    RDB_RETURN_IF_ERROR(validate_value(value));
    RDB_RETURN_IF_ERROR(room_for(key, value.size()));
    buffer_[key] = value;
    return Status::ok();
  }

  Status erase(const std::string& key) override {
    RDB_RETURN_IF_ERROR(writable());
    RDB_RETURN_IF_ERROR(validate_key(key));
    RDB_RETURN_IF_ERROR(room_for(key, 0));
    buffer_[key] = std::nullopt;
    return Status::ok();
  }

  Status lock(const std::string& key) override {
    RDB_RETURN_IF_ERROR(writable());
    RDB_RETURN_IF_ERROR(validate_key(key));
    if (buffer_.contains(key) || read_locks_.contains(key)) {
      return Status::ok();  // written (or locked) already: its commit guards it
    }
    if (buffer_.size() + read_locks_.size() >= kMaxTxnKeys) {
      return Status::invalid_argument(fmt::format("a transaction writes at most {} keys", kMaxTxnKeys));
    }
    read_locks_.insert(key);
    return Status::ok();
  }

  void get_async(std::string key, Callback<std::optional<std::string>> done) override {
    s_.post([this, key = std::move(key), done = std::move(done)] { done(get(key)); });
  }
  void batch_get_async(std::vector<std::string> keys, Callback<std::vector<KeyValue>> done) override {
    s_.post([this, keys = std::move(keys), done = std::move(done)] { done(batch_get(keys)); });
  }
  void scan_async(std::string start, std::string end, std::uint32_t limit,
                  Callback<std::vector<KeyValue>> done) override {
    s_.post([this, start = std::move(start), end = std::move(end), limit, done = std::move(done)] {
      done(scan(start, end, limit));
    });
  }
  void commit_async(StatusCallback done) override {
    s_.post([this, done = std::move(done)] { done(commit()); });
  }
  void rollback_async(StatusCallback done) override {
    s_.post([this, done = std::move(done)] { done(rollback()); });
  }

  Status commit() override {
    RDB_RETURN_IF_ERROR(writable());
    if (buffer_.empty()) {
      finished_ = true;
      commit_ts_ = start_ts_;  // nothing to write: the snapshot it read is its point
      return Status::ok();
    }
    std::vector<txnpb::Mutation> mutations;
    std::size_t bytes = 0;
    for (const auto& [k, v] : buffer_) {
      txnpb::Mutation m;
      m.set_key(k);
      m.set_op(v ? txnpb::PUT : txnpb::DEL);
      if (v) {
        m.set_value(*v);
      }
      bytes += k.size() + (v ? v->size() : 0);
      mutations.push_back(std::move(m));
    }
    for (const auto& k : read_locks_) {
      if (!buffer_.contains(k)) {  // written since it was locked: the write guards it
        txnpb::Mutation m;
        m.set_key(k);
        m.set_op(txnpb::LOCK);
        bytes += k.size();
        mutations.push_back(std::move(m));
      }
    }
    std::sort(mutations.begin(), mutations.end(),
              [](const txnpb::Mutation& a, const txnpb::Mutation& b) { return a.key() < b.key(); });
    const std::string primary = buffer_.begin()->first;
    const std::uint64_t ttl = lock_ttl_for(bytes, mutations.size());
    auto prewrite_started = Clock::now();
    std::uint64_t one_pc_commit_ts = 0;
    // A prewrite of several requests may outlast the TTL: its primary is kept alive meanwhile.
    std::optional<PrimaryKeepAlive> keep_alive;
    if (mutations.size() > kMaxBatchKeys) {
      keep_alive.emplace(s_, primary, start_ts_, ttl);
    }
    Status prewritten = prewrite(mutations, primary, ttl, &one_pc_commit_ts);
    keep_alive.reset();
    if (Status s = std::move(prewritten); !s.is_ok()) {
      if (try_one_pc_ && s.code() != StatusCode::kAborted && s.code() != StatusCode::kInvalidArgument) {
        return settle_failed_one_pc(s);
      }
      roll_back_locks();
      return s;
    }
    if (one_pc_commit_ts != 0) {  // every key was in one region: committed in that one step
      commit_ts_ = one_pc_commit_ts;
      finished_ = true;
      return wait_for_tso_past(one_pc_commit_ts);
    }
    // A prewrite that took a good part of the TTL: extend it before others may judge us dead.
    auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - prewrite_started);
    if (static_cast<std::uint64_t>(elapsed.count()) * 2 > ttl) {
      kvrpc::KvTxnHeartBeatRequest hb;
      hb.set_primary_lock(primary);
      hb.set_start_version(start_ts_);
      hb.set_advise_lock_ttl(static_cast<std::uint64_t>(elapsed.count()) + ttl);
      auto beat = s_.kv_heart_beat(hb);
      if (beat.is_ok() && beat->has_error()) {
        roll_back_locks();
        return Status::aborted(fmt::format("transaction {}: its locks were rolled back while it prewrote", start_ts_));
      }
    }
    auto commit_ts = s_.timestamp();
    if (!commit_ts.is_ok()) {
      roll_back_locks();
      return commit_ts.status().with_context("commit timestamp");
    }
    // The commit point.
    kvrpc::KvCommitRequest req;
    req.set_start_version(start_ts_);
    req.set_commit_version(*commit_ts);
    req.add_keys(primary);
    std::optional<txnpb::KeyError> refused;
    Status sent = s_.kv_commit(req, [&](kvrpc::KvCommitResponse& resp) {
      if (resp.has_error()) {
        refused = resp.error();
      }
      return Status::ok();
    });
    if (!sent.is_ok()) {
      if (sent.code() == StatusCode::kInvalidArgument) {
        roll_back_locks();
        return sent;
      }
      finished_ = true;
      return Status::undetermined(
          fmt::format("transaction {}: the commit of its primary key was sent but not answered ({}); it may or may not "
                      "have committed",
                      start_ts_, sent.message()));
    }
    if (refused) {
      roll_back_locks();
      return Status::aborted(
          fmt::format("transaction {}: its primary lock was rolled back before the commit (it outlived its TTL): {}",
                      start_ts_, refused->abort().empty() ? "no lock left" : refused->abort()));
    }
    commit_ts_ = *commit_ts;
    finished_ = true;
    // The secondaries: committed now, or rolled forward by whoever meets their locks.
    req.clear_keys();
    for (const auto& m : mutations) {
      if (m.key() != primary) {
        req.add_keys(m.key());
      }
    }
    if (req.keys_size() > 0) {
      (void)s_.kv_commit(req, [](kvrpc::KvCommitResponse&) { return Status::ok(); });
    }
    return Status::ok();
  }

  Status rollback() override {
    if (finished_) {
      return Status::ok();
    }
    roll_back_locks();
    buffer_.clear();
    read_locks_.clear();
    buffer_bytes_ = 0;
    return Status::ok();
  }

 private:
  Status usable() const {
    return finished_ ? Status::invalid_argument("the transaction has finished (committed or rolled back)")
                     : Status::ok();
  }
  Status writable() const {
    RDB_RETURN_IF_ERROR(usable());
    return read_only_ ? Status::invalid_argument("a snapshot at a given timestamp is read-only") : Status::ok();
  }

  // Checks that writing `key` (with `value_bytes`) keeps the buffer within the limits,
  // and if so counts it (the caller then writes it).
  Status room_for(const std::string& key, std::size_t value_bytes) {
    auto it = buffer_.find(key);
    const bool counted = it != buffer_.end() || read_locks_.contains(key);  // a locked key written: not one more
    if (!counted && buffer_.size() + read_locks_.size() >= kMaxTxnKeys) {
      return Status::invalid_argument(fmt::format("a transaction writes at most {} keys", kMaxTxnKeys));
    }
    std::size_t replaced = it == buffer_.end() ? 0 : key.size() + (it->second ? it->second->size() : 0);
    std::size_t bytes = buffer_bytes_ - replaced + key.size() + value_bytes;
    RDB_RETURN_IF_ERROR(validate_write_bytes(bytes));
    buffer_bytes_ = bytes;
    return Status::ok();
  }

  // The lock a read met, or an error for anything else a read should not get.
  static Result<std::optional<txnpb::LockInfo>> lock_of(const txnpb::KeyError& e) {
    if (e.has_locked()) {
      return std::optional<txnpb::LockInfo>(e.locked());
    }
    return Status::internal(fmt::format("a read was refused: {}", e.DebugString()));
  }

  // Runs `attempt` until it meets no lock, resolving (or waiting out) the locks it
  // meets, within the client's timeout.
  template <typename Attempt>
  Status until_unlocked(Attempt&& attempt) {
    auto deadline = Clock::now() + s_.timeout();
    std::chrono::milliseconds backoff(2);
    for (;;) {
      RDB_ASSIGN_OR_RETURN(auto met, attempt());
      if (!met) {
        return Status::ok();
      }
      std::string why_wait;
      RDB_ASSIGN_OR_RETURN(bool settled, resolve(*met, &why_wait));
      if (settled) {
        continue;
      }
      if (Clock::now() + backoff >= deadline) {
        return Status::deadline_exceeded(fmt::format("key '{}' stayed locked by transaction {}: {}",
                                                     printable(met->key()), met->lock_version(), why_wait));
      }
      std::this_thread::sleep_for(backoff);  // a live transaction holds it: wait a little
      backoff = std::min(backoff * 2, std::chrono::milliseconds(100));
    }
  }

  // Settles a lock another transaction left: its primary decides. true: resolved (retry
  // now); false: its transaction is alive (or its primary not written yet) — wait
  // (*why_wait says which).
  Result<bool> resolve(const txnpb::LockInfo& lock, std::string* why_wait) {
    RDB_ASSIGN_OR_RETURN(std::uint64_t now, s_.timestamp());
    kvrpc::KvCheckTxnStatusRequest check;
    check.set_primary_key(lock.primary_lock());
    check.set_lock_ts(lock.lock_version());
    check.set_caller_start_ts(start_ts_);
    check.set_current_ts(now);
    // A lock past its own TTL whose primary holds nothing: that transaction never got
    // as far as its primary; settle it as rolled back. Before the TTL, its primary's
    // prewrite may still be on the way.
    check.set_rollback_if_not_exist(physical_ms(now) >= physical_ms(lock.lock_version()) + lock.lock_ttl());
    RDB_ASSIGN_OR_RETURN(auto status, s_.kv_check_txn_status(check));
    if (status.has_error()) {
      if (status.error().txn_not_found()) {
        *why_wait = "its primary key holds no trace of it yet";
        return false;
      }
      return Status::internal(
          fmt::format("checking transaction {}: {}", lock.lock_version(), status.error().DebugString()));
    }
    if (status.lock_ttl() > 0) {
      *why_wait = "its transaction is alive";
      return false;
    }
    kvrpc::KvResolveLockRequest resolve;
    resolve.set_start_version(lock.lock_version());
    resolve.set_commit_version(status.commit_version());
    resolve.add_keys(lock.key());
    RDB_RETURN_IF_ERROR(s_.kv_resolve_lock(resolve, [](kvrpc::KvResolveLockResponse& resp) -> Status {
      return resp.has_error() ? Status::internal(fmt::format("resolving a lock: {}", resp.error().DebugString()))
                              : Status::ok();
    }));
    return true;
  }

  // The snapshot's version of `key` (a read at start_ts), resolving locks on the way.
  Result<std::optional<TxnVersion>> snapshot_get(const std::string& key) {
    kvrpc::KvGetRequest req;
    req.set_key(key);
    req.set_version(start_ts_);
    std::optional<TxnVersion> out;
    RDB_RETURN_IF_ERROR(until_unlocked([&]() -> Result<std::optional<txnpb::LockInfo>> {
      RDB_ASSIGN_OR_RETURN(auto resp, s_.kv_get(req));
      if (resp.has_error()) {
        return lock_of(resp.error());
      }
      out.reset();
      if (!resp.not_found()) {
        out = TxnVersion{key, std::move(*resp.mutable_value()), resp.commit_ts()};
      }
      return std::optional<txnpb::LockInfo>();
    }));
    return out;
  }

  // The snapshot's pairs in [start, end) with this transaction's writes laid over them.
  Result<std::vector<TxnVersion>> merged_scan(const std::string& start, const std::string& end, std::uint32_t limit) {
    RDB_RETURN_IF_ERROR(usable());
    RDB_RETURN_IF_ERROR(validate_scan_limit(limit));
    RDB_RETURN_IF_ERROR(validate_range(start, end, false));
    auto in_range = [&](const std::string& k) { return k >= start && (end.empty() || k < end); };
    // Buffered deletes may hide snapshot pairs: ask for that many more.
    std::uint32_t hidden = 0;
    for (const auto& [k, v] : buffer_) {
      hidden += (!v && in_range(k)) ? 1 : 0;
    }
    std::uint32_t ask = std::min<std::uint32_t>(limit + hidden, kMaxScanLimit);
    bool cut = false;
    RDB_ASSIGN_OR_RETURN(auto snapshot, snapshot_scan(start, end, ask, &cut));
    const std::string last = snapshot.empty() ? std::string() : snapshot.back().key;
    std::map<std::string, TxnVersion> merged;
    for (auto& kv : snapshot) {
      std::string k = kv.key;
      merged.emplace(std::move(k), std::move(kv));
    }
    for (const auto& [k, v] : buffer_) {
      if (!in_range(k)) {
        continue;
      }
      // Past the last snapshot key of a scan cut at its limit, unseen keys could come first.
      if (cut && !snapshot.empty() && k > last) {
        continue;
      }
      if (v) {
        merged[k] = TxnVersion{k, *v, 0};
      } else {
        merged.erase(k);
      }
    }
    std::vector<TxnVersion> out;
    for (auto& [k, v] : merged) {
      if (out.size() == limit) {
        break;
      }
      out.push_back(std::move(v));
    }
    return out;
  }

  Result<std::vector<TxnVersion>> snapshot_scan(const std::string& start, const std::string& end, std::uint32_t limit,
                                                bool* cut) {
    kvrpc::KvScanRequest req;
    req.set_start_key(start);
    req.set_end_key(end);
    req.set_version(start_ts_);
    std::vector<TxnVersion> out;
    for (;;) {
      req.set_limit(limit - static_cast<std::uint32_t>(out.size()));
      kvrpc::KvScanResponse resp;
      RDB_RETURN_IF_ERROR(until_unlocked([&]() -> Result<std::optional<txnpb::LockInfo>> {
        RDB_ASSIGN_OR_RETURN(resp, s_.kv_scan(req));
        if (resp.has_error()) {
          return lock_of(resp.error());
        }
        return std::optional<txnpb::LockInfo>();
      }));
      for (auto& kv : *resp.mutable_kvs()) {
        out.push_back({std::move(*kv.mutable_key()), std::move(*kv.mutable_value()), kv.commit_ts()});
      }
      if (out.size() >= limit) {
        *cut = true;
        return out;
      }
      if (resp.truncated() && !out.empty()) {
        req.set_start_key(out.back().key + '\0');
      } else if (resp.region_boundary()) {
        if (resp.next_key() <= req.start_key()) {
          return Status::internal("a store answered a scan with a continuation key that does not move on");
        }
        req.set_start_key(resp.next_key());
      } else {
        return out;
      }
    }
  }

  // Locks every key for this transaction. ABORTED on a write conflict, on a rollback
  // that beat it, or on locks that stay; other errors as they come.
  Status prewrite(const std::vector<txnpb::Mutation>& mutations, const std::string& primary, std::uint64_t ttl,
                  std::uint64_t* one_pc_commit_ts) {
    prewrite_sent_ = true;
    kvrpc::KvPrewriteRequest req;
    if (try_one_pc_) {
      // The sender keeps try_one_pc only when one region holds every key. The bound is
      // the present: a commit at or below it is seen by every transaction started later.
      auto now = s_.timestamp();
      if (!now.is_ok()) {
        return now.status().with_context("timestamp for a one-phase commit");
      }
      req.set_try_one_pc(true);
      // Up to a short window above the present: concurrent readers that started after
      // `now` (they raised the store's max_ts) then no longer turn this commit into two
      // phases. A commit above `now` is acknowledged only once PD's timestamps passed it
      // (wait_for_tso_past), so transactions that start afterwards still see it.
      one_pc_present_ = *now;
      req.set_max_commit_ts(*now + kOnePcCommitWindow);
    }
    req.set_primary_lock(primary);
    req.set_start_version(start_ts_);
    req.set_lock_ttl(ttl);
    req.set_txn_size(mutations.size());
    for (const auto& m : mutations) {
      *req.add_mutations() = m;
    }
    std::optional<Status> refused;
    Status s = until_unlocked([&]() -> Result<std::optional<txnpb::LockInfo>> {
      std::optional<txnpb::LockInfo> met;
      RDB_RETURN_IF_ERROR(s_.kv_prewrite(req, [&](kvrpc::KvPrewriteResponse& resp) -> Status {
        *one_pc_commit_ts = resp.one_pc_commit_ts();
        for (const auto& e : resp.errors()) {
          if (e.has_conflict()) {
            refused = Status::aborted(fmt::format(
                "write conflict on key '{}': transaction {} committed it at {}, after this one started at {}",
                printable(e.conflict().key()), e.conflict().conflict_start_ts(), e.conflict().conflict_commit_ts(),
                start_ts_));
          } else if (e.has_locked()) {
            met = e.locked();
          } else {
            refused = Status::aborted(fmt::format("transaction {} cannot prewrite: {}", start_ts_,
                                                  e.abort().empty() ? e.DebugString() : e.abort()));
          }
        }
        return Status::ok();
      }));
      if (refused) {
        return std::optional<txnpb::LockInfo>();
      }
      return met;
    });
    if (refused) {
      return *refused;
    }
    if (s.code() == StatusCode::kDeadlineExceeded) {
      if (try_one_pc_) {
        return s;  // an earlier attempt may have committed in one step: commit() settles it
      }
      return Status::aborted(s.message());  // another transaction kept a key: nothing of this one applied
    }
    return s;
  }

  // A one-phase commit above the present it was given: PD's timestamps must pass it
  // before the caller hears of it, or a transaction that starts afterwards (with an
  // earlier timestamp) would not see it. Quick: the store's max_ts came from timestamps
  // PD issued, plus one per 1PC since.
  Status wait_for_tso_past(std::uint64_t commit_ts) {
    if (commit_ts <= one_pc_present_) {
      return Status::ok();
    }
    const auto deadline = Clock::now() + s_.timeout();
    for (;;) {
      auto ts = s_.timestamp();
      if (ts.is_ok() && *ts >= commit_ts) {
        return Status::ok();
      }
      if (Clock::now() >= deadline) {
        return Status::undetermined(fmt::format(
            "transaction {} committed at {}, but PD's timestamps did not pass it before the deadline ({}); a "
            "transaction started now might not see it",
            start_ts_, commit_ts, ts.is_ok() ? fmt::format("last {}", *ts) : ts.status().message()));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

  // A prewrite that may have been a 1PC failed without a verdict: it may have committed.
  // A rollback settles it — refused as already committed (then it did, at that
  // timestamp), or done (then it never will).
  Status settle_failed_one_pc(const Status& failure) {
    finished_ = true;
    kvrpc::KvBatchRollbackRequest req;
    req.set_start_version(start_ts_);
    add_all_keys(req);
    std::uint64_t committed_at = 0;
    Status rolled = s_.kv_batch_rollback(req, [&](kvrpc::KvBatchRollbackResponse& resp) {
      if (resp.has_error() && resp.error().already_committed()) {
        committed_at = resp.error().commit_ts();
      }
      return Status::ok();
    });
    if (committed_at != 0) {
      commit_ts_ = committed_at;
      return wait_for_tso_past(committed_at);  // it may have landed above the present too
    }
    if (rolled.is_ok()) {
      // Rolled back: nothing applied. A prewrite that ran out of time (a key kept locked)
      // is a conflict, as in two phases.
      return failure.code() == StatusCode::kDeadlineExceeded ? Status::aborted(failure.message()) : failure;
    }
    return Status::undetermined(fmt::format(
        "transaction {}: its one-phase commit failed without a verdict ({}), and the rollback that would settle it "
        "failed too ({}); it may or may not have committed",
        start_ts_, failure.message(), rolled.message()));
  }

  // Every key a commit may have prewritten: the writes and the read locks.
  void add_all_keys(kvrpc::KvBatchRollbackRequest& req) const {
    for (const auto& [k, v] : buffer_) {
      req.add_keys(k);
    }
    for (const auto& k : read_locks_) {
      if (!buffer_.contains(k)) {
        req.add_keys(k);
      }
    }
  }

  // Best effort: whatever a failed commit locked is released (a reader would also
  // roll it back once the TTL passes).
  void roll_back_locks() {
    finished_ = true;
    if (!prewrite_sent_) {
      return;
    }
    kvrpc::KvBatchRollbackRequest req;
    req.set_start_version(start_ts_);
    add_all_keys(req);
    (void)s_.kv_batch_rollback(req, [](kvrpc::KvBatchRollbackResponse&) { return Status::ok(); });
  }

  TxnSender& s_;
  const std::uint64_t start_ts_;
  const bool try_one_pc_;
  std::uint64_t one_pc_present_ = 0;  // the TSO timestamp fetched for the one-phase commit
  const bool read_only_;
  std::uint64_t commit_ts_ = 0;
  std::map<std::string, std::optional<std::string>> buffer_;  // key -> value, nullopt = delete
  std::size_t buffer_bytes_ = 0;                              // its keys and values
  std::set<std::string> read_locks_;                          // keys read and guarded by lock()
  bool finished_ = false;
  bool prewrite_sent_ = false;
};

}  // namespace

std::unique_ptr<Transaction> make_transaction(TxnSender& sender, std::uint64_t start_ts, bool try_one_pc) {
  return std::make_unique<TxnImpl>(sender, start_ts, try_one_pc);
}

std::unique_ptr<Transaction> make_read_only_transaction(TxnSender& sender, std::uint64_t ts) {
  return std::make_unique<TxnImpl>(sender, ts, false, true);
}

}  // namespace rdb
