// ConcurrencyManager: what a store's region leaders know about transactions in flight
// that is not in any Raft log — per-key latches, memory locks and max_ts.
//
// - Latches: a transactional write holds its keys from before it is proposed until it
//   has applied here (or its caller gave up), so two commands on one key are never in
//   flight together on this store, and a doomed one can be answered from the engine
//   without a Raft round. Acquired all at once (no partial holds, so no deadlock).
// - max_ts: the highest timestamp any transactional read served here asked for. A 1PC
//   commit timestamp is chosen above it, so no read ever served misses a commit at or
//   below its timestamp.
// - Memory locks: a 1PC command marks its latched keys before it reads max_ts; a read
//   raises max_ts before it looks for marks and waits while one covers its keys. Either
//   the read sees the mark (and waits for the commit to apply), or the writer sees the
//   read's timestamp (and commits above it).
// - Term sync: the reads a previous leader served are not in max_ts; before a region's
//   first 1PC in a leader term (and region epoch) max_ts is raised to a fresh TSO
//   timestamp (mark_synced).
// max_ts is store-wide (a conservative bound for every region here).
// Thread safety: every method is thread-safe. Guards release on destruction.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace rdb {

class ConcurrencyManager {
 public:
  using Clock = std::chrono::system_clock;

  // Holds latches on a set of keys until destroyed.
  class Guard {
   public:
    Guard(ConcurrencyManager& owner, std::vector<std::string> keys) : owner_(&owner), keys_(std::move(keys)) {}
    Guard(Guard&& other) noexcept : owner_(other.owner_), keys_(std::move(other.keys_)) { other.owner_ = nullptr; }
    Guard& operator=(Guard&&) = delete;
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;
    ~Guard();
    // Marks the latched keys as memory-locked by a 1PC command of `region`'s leader in
    // `term`: reads of them wait until release, or until that leadership is over.
    void mark_memory_locks(std::uint64_t region, std::uint64_t term);
    bool memory_locked() const { return memory_locked_; }

   private:
    ConcurrencyManager* owner_;
    std::vector<std::string> keys_;
    bool memory_locked_ = false;
  };
  // Whether this store still leads `region` in `term` (a memory lock of an earlier
  // leadership no longer matters: the entry, if it survives, applies before any read
  // point of a later term).
  using StillLeading = std::function<bool(std::uint64_t region, std::uint64_t term)>;

  // Latches every key (distinct); nullopt when they did not all come free before `deadline`.
  std::optional<Guard> latch(std::vector<std::string> keys, Clock::time_point deadline);

  void update_max_ts(std::uint64_t ts);
  // A 1PC commit timestamp: above max_ts and start_ts, and taken (max_ts rises to it), so
  // two 1PC commits on this store never share a timestamp (an etcd revision is one
  // transaction). nullopt, leaving max_ts alone, when it would exceed `limit`.
  std::optional<std::uint64_t> next_commit_ts(std::uint64_t start_ts, std::uint64_t limit);
  std::uint64_t max_ts() const { return max_ts_.load(); }

  // The GC safe point this store knows (only grows): reads below it are refused, as the
  // versions they would see may be gone.
  void update_gc_safe_point(std::uint64_t ts);
  std::uint64_t gc_safe_point() const { return gc_safe_point_.load(); }

  // Waits until no key in `keys` is memory-locked by a leadership that is still on
  // (`live`; null: every mark counts); false at the deadline.
  bool wait_for_memory_locks(const std::vector<std::string>& keys, Clock::time_point deadline,
                             const StillLeading& live = nullptr);
  // The same for every key in [start, end) (an empty end: no upper bound).
  bool wait_for_memory_locks_in_range(const std::string& start, const std::string& end, Clock::time_point deadline,
                                      const StillLeading& live = nullptr);

  // Describes the first memory lock in [start, end) (or on `keys` when given) that still
  // blocks reads, for the log of a read that waited out its deadline ("" when none does).
  std::string describe_blocking(const std::string& start, const std::string& end, const std::vector<std::string>& keys,
                                const StillLeading& live) const;

  // Whether max_ts covers the reads of earlier leaders of this region in this term/epoch.
  bool synced(std::uint64_t region_id, std::uint64_t term, std::uint64_t epoch_version) const;
  void mark_synced(std::uint64_t region_id, std::uint64_t term, std::uint64_t epoch_version);

  // For tests and metrics.
  std::size_t latched_keys() const;

 private:
  struct Latch {
    bool memory_lock = false;
    std::uint64_t region = 0;
    std::uint64_t term = 0;
  };
  void release(const std::vector<std::string>& keys);
  void mark(const std::vector<std::string>& keys, std::uint64_t region, std::uint64_t term);
  bool blocks(const Latch& latch, const StillLeading& live) const;
  bool any_memory_lock_locked(const std::vector<std::string>& keys, const StillLeading& live) const;
  bool any_memory_lock_in_range_locked(const std::string& start, const std::string& end,
                                       const StillLeading& live) const;
  // Waits (re-checking leadership every few ms) until `clear` holds; false at the deadline.
  template <typename Clear>
  bool wait_until_clear(Clock::time_point deadline, Clear&& clear);

  std::atomic<std::uint64_t> max_ts_{0};
  std::atomic<std::uint64_t> gc_safe_point_{0};
  mutable std::mutex mu_;
  std::condition_variable released_;
  std::map<std::string, Latch, std::less<>> latches_;
  std::size_t memory_locks_ = 0;                                             // how many latches are marked
  std::map<std::uint64_t, std::pair<std::uint64_t, std::uint64_t>> synced_;  // region -> (term, epoch version)
};

}  // namespace rdb
