// ChangeFeedHub: the store's live change feeds (kvrpc KvChangeFeed*). A feed covers a key
// range; from its registration on it keeps every commit the store applies there (puts and
// deletes, with their commit timestamps) until its poller has read past them.
//
// The store thread publishes a batch's commits *before* it writes the batch: whoever no
// longer sees a commit's lock in the engine finds its change already in every feed. That is
// what lets a poll at timestamp V, once it found no lock at or below V in the range (and
// after a linearizable read point), answer every change at or below V.
//
// Memory is bounded by configuration, not by traffic: the changes buffered by all feeds
// together stay within `memory_limit` bytes. A feed whose next change does not fit is lost
// (its buffer freed): its poller registers again and reads what it missed by scanning
// (KvScanChanges), which needs no buffer. So is a feed whose range gets a snapshot (the
// commits inside a snapshot are never applied one by one here). At most `max_feeds`
// feeds; a feed nobody polled for `idle_timeout` is dropped.
// Thread safety: every method may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"

namespace rdb {

// One committed put or delete, as a feed keeps it.
struct FeedChange {
  std::string key;
  std::uint64_t commit_ts = 0;
  bool deleted = false;
  std::string value;  // a put's value
};

class ChangeFeedHub {
 public:
  using Clock = std::chrono::steady_clock;
  struct Options {
    std::size_t max_feeds = 1024;
    std::size_t memory_limit = 256u << 20;
    std::chrono::milliseconds idle_timeout{60000};
  };
  explicit ChangeFeedHub(Options options);

  // Whether any feed is registered: the applier collects changes only then.
  bool active() const { return feeds_count_.load(std::memory_order_acquire) > 0; }

  // A new feed of [start, end) (end "" = unbounded); BUSY at max_feeds.
  Result<std::uint64_t> add(std::string start, std::string end, Clock::time_point now = Clock::now());
  // Every feed whose range holds a change keeps it (a change published twice, as after a
  // failed write applied again, is kept once).
  void publish(const std::vector<FeedChange>& changes, Clock::time_point now = Clock::now());
  // Loses every feed overlapping [start, end): commits arrived there without being published.
  void lose_range(const std::string& start, const std::string& end, const std::string& why);

  struct Taken {
    std::vector<FeedChange> changes;  // by commit timestamp, then key
    std::uint64_t resolved_ts = 0;    // `version`, or the last timestamp answered when cut
    std::string lost;                 // non-empty: the feed is gone (and why); nothing else is set
  };
  // Drops the feed's changes at or below `after`, then answers those in (after, version],
  // at most about `max_bytes` of them (a timestamp's changes are never split). Answers the
  // same when repeated, so a lost answer can be asked for again. NOT_FOUND: no such feed.
  Result<Taken> take(std::uint64_t id, std::uint64_t after, std::uint64_t version, std::size_t max_bytes,
                     Clock::time_point now = Clock::now());
  // The feed's key range (NOT_FOUND: no such feed).
  Result<std::pair<std::string, std::string>> range_of(std::uint64_t id) const;
  void remove(std::uint64_t id);

  std::size_t feed_count() const { return feeds_count_.load(); }
  std::size_t bytes() const;

 private:
  struct Feed {
    std::string start, end;
    std::map<std::pair<std::uint64_t, std::string>, FeedChange> changes;  // by (commit_ts, key)
    std::size_t bytes = 0;
    std::string lost;
    Clock::time_point last_poll;
  };
  static std::size_t cost(const FeedChange& c) { return c.key.size() + c.value.size() + 64; }
  static bool contains(const Feed& f, const std::string& key) {
    return key >= f.start && (f.end.empty() || key < f.end);
  }
  void lose(Feed& f, std::string why);
  void drop_idle(Clock::time_point now);  // mu_ held

  const Options options_;
  mutable std::mutex mu_;
  std::map<std::uint64_t, Feed> feeds_;  // guarded by mu_
  std::size_t bytes_ = 0;                // guarded by mu_: all feeds' buffers
  std::uint64_t next_id_ = 1;            // guarded by mu_; random start: ids of an earlier run never come back
  Clock::time_point next_idle_check_{};  // guarded by mu_
  std::atomic<std::size_t> feeds_count_{0};
};

}  // namespace rdb
