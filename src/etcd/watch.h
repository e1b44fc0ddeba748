// etcd's Watch on rdb's change scans: every committed put and delete in a watched range,
// exactly once, in revision (commit timestamp) order.
//
// A watcher follows its range window by window: it remembers `delivered`, the revision up
// to which every event was sent, reads the changes in (delivered, V] for a resolved
// timestamp V (no commit at or below V can still appear there), sends them sorted by
// revision and moves `delivered` to V. Windows neither overlap nor leave gaps, so nothing
// is lost, repeated or reordered — across region splits, leader changes and gateway
// restarts (a client resuming from its last revision + 1 reads exactly the rest).
// Live windows come from a change feed (RdbClient::open_change_feed: the region leaders
// keep the commits they apply in the range, and answer them up to V once no lock at or
// below V is left). History — a start revision in the past, or the commits before a feed
// (re)opened — is read by scanning the range's versions (Transaction::changes on a
// snapshot at V). A lost feed (a split, a leader move, a store restart) is opened again
// and the gap scanned.
//
// WatchSession is one Watch stream's state, independent of gRPC (it sends through a
// callback): create (key, range, prefix, start_revision, prev_kv, filters,
// progress_notify, fragment, a client-chosen watch_id), cancel, progress requests, and
// etcd's compacted answer (compact_revision + canceled) for a start below the GC safe point
// or a watcher that compaction overtook.
// Thread safety: handle(), poll() and progress() may be called from different threads;
// sends are serialized. Ownership: borrows the client and layout; they outlive it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "etcd/kv.h"
#include "etcd_rpc.grpc.pb.h"
#include "rdb/client.h"

namespace rdb::etcd {

struct WatchOptions {
  std::chrono::milliseconds poll_interval{50};
  // etcd's default (--experimental-watch-progress-notify-interval): a watcher that asked
  // for progress notifications and saw no event for this long is told how far it is.
  std::chrono::milliseconds progress_notify_interval{std::chrono::minutes(10)};
  // A window with more changes than this is ended earlier and read again (memory stays
  // bounded; one revision is one transaction, bounded by rdb's transaction limits).
  std::size_t max_window_changes = 20'000;
  // A revision's events above this size are sent in fragments when the watcher asked.
  std::size_t max_response_bytes = std::size_t{1} << 20;
  // Watchers on one stream (etcd has no limit; each polls a change feed per region here).
  std::size_t max_watchers_per_stream = 1'000;
  // Watch streams the gateway serves at once (each holds two threads); more are refused.
  std::size_t max_streams = 1'024;
};

// The events of one watcher's window as responses, one per revision (as etcd sends a
// watcher that keeps up: clients such as etcd3's election observer take each response
// as one step). A revision above `max_bytes` is split into fragments, all but the last
// marked, when the watcher asked for that. Headers are left to the caller.
std::vector<etcdserverpb::WatchResponse> batch_events(std::int64_t watch_id, std::vector<etcdserverpb::Event>&& events,
                                                      std::size_t max_bytes, bool fragment);

class WatchSession {
 public:
  using Send = std::function<bool(const etcdserverpb::WatchResponse&)>;
  WatchSession(EtcdKv& kv, RdbClient& client, const KeyLayout& layout, WatchOptions options, Send send);

  // A request from the stream. False when the stream should end (a send failed).
  bool handle(const etcdserverpb::WatchRequest& req);
  // Reads one window for every watcher and sends what it found. False when a send failed.
  // *behind: a window was cut short (too many changes at once): poll again at once.
  // One thread at a time (it owns the feeds).
  bool poll(bool* behind = nullptr);
  bool empty() const;

 private:
  struct Watcher {
    std::int64_t id = 0;
    EtcdRange range;
    bool prev_kv = false;
    bool no_put = false;
    bool no_delete = false;
    bool progress_notify = false;
    bool fragment = false;
    std::uint64_t delivered = 0;  // every event at or below this revision was sent
    std::chrono::steady_clock::time_point last_sent;
    std::uint64_t serial = 0;  // this watcher, not an earlier one with its id
  };
  struct Feed {
    std::uint64_t serial = 0;
    std::unique_ptr<ChangeFeed> feed;
  };
  bool create(const etcdserverpb::WatchCreateRequest& req);
  bool cancel(std::int64_t id);
  bool progress();
  // The changes of (after, upto] in the watcher's range, or the window shrunk to fit
  // max_window_changes (*upto lowered); an error as rdb reported it.
  Result<std::vector<TxnChange>> read_window(const Watcher& w, std::uint64_t after, std::uint64_t* upto);
  // The next window: from the watcher's feed (opened when missing; the commits before it
  // opened are scanned first), or scanned up to `now` when no feed can be had.
  Result<std::vector<TxnChange>> next_window(const Watcher& w, std::uint64_t now, std::uint64_t* upto);
  std::pair<std::string, std::string> data_range(const Watcher& w) const;
  std::vector<etcdserverpb::Event> to_events(const Watcher& w, const std::vector<TxnChange>& changes) const;
  bool send_compacted(std::int64_t id, std::uint64_t compact_revision);
  bool send(etcdserverpb::WatchResponse& resp, std::int64_t revision);

  EtcdKv& kv_;
  RdbClient& client_;
  const KeyLayout& layout_;
  WatchOptions options_;
  Send send_;
  mutable std::mutex mu_;  // watchers_, next_id_
  std::mutex send_mu_;
  std::map<std::int64_t, Watcher> watchers_;
  std::int64_t next_id_ = 0;
  std::uint64_t next_serial_ = 1;       // guarded by mu_
  std::map<std::int64_t, Feed> feeds_;  // by watcher id; poll()'s thread only
};

class WatchService final : public etcdserverpb::Watch::Service {
 public:
  WatchService(EtcdKv& kv, RdbClient& client, const KeyLayout& layout, WatchOptions options)
      : kv_(kv), client_(client), layout_(layout), options_(options) {}
  grpc::Status Watch(
      grpc::ServerContext* ctx,
      grpc::ServerReaderWriter<etcdserverpb::WatchResponse, etcdserverpb::WatchRequest>* stream) override;

 private:
  EtcdKv& kv_;
  RdbClient& client_;
  const KeyLayout& layout_;
  WatchOptions options_;
  std::atomic<std::size_t> streams_{0};
};

}  // namespace rdb::etcd
