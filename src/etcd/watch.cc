#include "etcd/watch.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <thread>

#include "etcd/errors.h"

namespace rdb::etcd {

using etcdserverpb::Event;
using etcdserverpb::WatchCreateRequest;
using etcdserverpb::WatchRequest;
using etcdserverpb::WatchResponse;

namespace {

constexpr std::uint32_t kChangesPage = 1024;
// etcd's text for a client-chosen watch id already in use on the stream.
constexpr const char* kDuplicateWatchId = "mvcc: duplicate watch ID provided on the WatchStream";

bool compacted(const Status& s) {
  return s.code() == StatusCode::kInvalidArgument && s.message().find("GC safe point") != std::string::npos;
}

}  // namespace

std::vector<WatchResponse> batch_events(std::int64_t watch_id, std::vector<Event>&& events, std::size_t max_bytes,
                                        bool fragment) {
  std::vector<WatchResponse> out;
  WatchResponse current;
  std::size_t current_bytes = 0;
  auto flush = [&](bool more_of_this_revision) {
    if (current.events_size() > 0) {
      current.set_watch_id(watch_id);
      current.set_fragment(more_of_this_revision);
      out.push_back(std::move(current));
      current = WatchResponse();
      current_bytes = 0;
    }
  };
  for (std::size_t i = 0; i < events.size(); ++i) {
    std::size_t size = events[i].ByteSizeLong();
    if (fragment && current_bytes > 0 && current_bytes + size > max_bytes) {
      flush(true);  // the same revision goes on in the next fragment
    }
    current_bytes += size;
    *current.add_events() = std::move(events[i]);
    if (i + 1 == events.size() || events[i + 1].kv().mod_revision() != current.events(0).kv().mod_revision()) {
      flush(false);
    }
  }
  return out;
}

WatchSession::WatchSession(EtcdKv& kv, RdbClient& client, const KeyLayout& layout, WatchOptions options, Send send)
    : kv_(kv), client_(client), layout_(layout), options_(options), send_(std::move(send)) {}

bool WatchSession::empty() const {
  std::lock_guard lock(mu_);
  return watchers_.empty();
}

bool WatchSession::send(WatchResponse& resp, std::int64_t revision) {
  kv_.fill_header(resp.mutable_header(), revision);
  return send_(resp);
}

bool WatchSession::handle(const WatchRequest& req) {
  switch (req.request_union_case()) {
    case WatchRequest::kCreateRequest:
      return create(req.create_request());
    case WatchRequest::kCancelRequest:
      return cancel(req.cancel_request().watch_id());
    case WatchRequest::kProgressRequest:
      return progress();
    case WatchRequest::REQUEST_UNION_NOT_SET:
      break;
  }
  return true;  // etcd ignores a request it does not know
}

bool WatchSession::create(const WatchCreateRequest& req) {
  std::lock_guard lock(mu_);
  WatchResponse resp;
  auto refuse = [&](std::int64_t id, const std::string& why) {
    resp.set_watch_id(id);
    resp.set_created(true);
    resp.set_canceled(true);
    resp.set_cancel_reason(why);
    return send(resp, 0);
  };
  std::int64_t id = req.watch_id();
  if (id != 0 && watchers_.count(id) != 0) {
    return refuse(id, kDuplicateWatchId);
  }
  if (id == 0) {  // etcd's AutoWatchID: the next id free on this stream
    while (watchers_.count(next_id_) != 0) {
      ++next_id_;
    }
    id = next_id_++;
  }
  if (watchers_.size() >= options_.max_watchers_per_stream) {
    return refuse(id, fmt::format("rdb-etcd: this stream already has {} watchers (the gateway's limit)",
                                  options_.max_watchers_per_stream));
  }
  Watcher w;
  w.id = id;
  // As etcd: no key is the smallest key "\0"; a range end "\0" is every key from key on.
  w.range = EtcdRange{req.key().empty() ? std::string(1, '\0') : req.key(), req.range_end()};
  if (w.range.key.size() > layout_.max_key_size() || w.range.range_end.size() > layout_.max_key_size()) {
    return refuse(id, fmt::format("rdb-etcd: the gateway takes keys of at most {} bytes", layout_.max_key_size()));
  }
  w.prev_kv = req.prev_kv();
  w.progress_notify = req.progress_notify();
  w.fragment = req.fragment();
  for (int f : req.filters()) {
    w.no_put = w.no_put || f == WatchCreateRequest::NOPUT;
    w.no_delete = w.no_delete || f == WatchCreateRequest::NODELETE;
  }
  auto now = client_.get_tso(1);
  if (!now.is_ok()) {
    return refuse(id, "rdb-etcd: " + now.status().to_string());
  }
  if (req.start_revision() > 0) {
    auto safe = client_.update_gc_safe_point(0);
    if (!safe.is_ok()) {
      return refuse(id, "rdb-etcd: " + safe.status().to_string());
    }
    if (static_cast<std::uint64_t>(req.start_revision()) < safe->current) {
      // As etcd: created, then canceled with the revision compacted to.
      resp.set_watch_id(id);
      resp.set_created(true);
      if (!send(resp, static_cast<std::int64_t>(*now))) {
        return false;
      }
      return send_compacted(id, safe->current);
    }
    w.delivered = static_cast<std::uint64_t>(req.start_revision()) - 1;
  } else {
    w.delivered = *now;  // from the next revision on
  }
  w.last_sent = std::chrono::steady_clock::now();
  resp.set_watch_id(id);
  resp.set_created(true);
  if (!send(resp, static_cast<std::int64_t>(*now))) {
    return false;
  }
  w.serial = next_serial_++;
  watchers_.emplace(id, std::move(w));
  return true;
}

bool WatchSession::send_compacted(std::int64_t id, std::uint64_t compact_revision) {
  WatchResponse resp;
  resp.set_watch_id(id);
  resp.set_canceled(true);
  resp.set_compact_revision(static_cast<std::int64_t>(compact_revision));
  resp.set_cancel_reason(err_compacted().error_message());
  return send(resp, static_cast<std::int64_t>(compact_revision));
}

bool WatchSession::cancel(std::int64_t id) {
  std::lock_guard lock(mu_);
  if (watchers_.erase(id) == 0) {
    return true;  // as etcd: nothing to say about an unknown id
  }
  WatchResponse resp;
  resp.set_watch_id(id);
  resp.set_canceled(true);
  return send(resp, 0);
}

bool WatchSession::progress() {
  std::lock_guard lock(mu_);
  // Every watcher of the stream has been sent everything up to the smallest `delivered`.
  std::uint64_t revision = 0;
  if (watchers_.empty()) {
    auto now = client_.get_tso(1);
    revision = now.is_ok() ? *now : 0;
  } else {
    revision = std::min_element(watchers_.begin(), watchers_.end(), [](const auto& a, const auto& b) {
                 return a.second.delivered < b.second.delivered;
               })->second.delivered;
  }
  WatchResponse resp;
  resp.set_watch_id(-1);  // etcd's answer to a progress request belongs to no watcher
  return send(resp, static_cast<std::int64_t>(revision));
}

std::pair<std::string, std::string> WatchSession::data_range(const Watcher& w) const {
  if (w.range.single()) {
    std::string start = layout_.data_key(w.range.key);
    std::string end = start + '\0';
    return {std::move(start), std::move(end)};
  }
  return layout_.data_range(w.range);
}

Result<std::vector<TxnChange>> WatchSession::next_window(const Watcher& w, std::uint64_t now, std::uint64_t* upto) {
  auto [start, end] = data_range(w);
  if (!end.empty() && start >= end) {
    *upto = now;
    return std::vector<TxnChange>();
  }
  auto it = feeds_.find(w.id);
  if (it == feeds_.end() || it->second.serial != w.serial) {
    auto opened = client_.open_change_feed(start, end, w.prev_kv);
    if (!opened.is_ok()) {
      spdlog::warn("watch {}: no change feed ({}); scanning this window", w.id, opened.status().to_string());
      feeds_.erase(w.id);
      *upto = now;
      return read_window(w, w.delivered, upto);
    }
    it = feeds_.insert_or_assign(w.id, Feed{w.serial, std::move(*opened)}).first;
  }
  ChangeFeed& feed = *it->second.feed;
  if (w.delivered < feed.floor()) {
    // The commits before the feed opened: scanned (the window may shrink).
    *upto = feed.floor();
    return read_window(w, w.delivered, upto);
  }
  auto changes = feed.next(w.delivered, upto);
  if (!changes.is_ok()) {
    // Lost (a split, a leader move, ...): this window is scanned; the next poll opens a new feed.
    spdlog::info("watch {}: {}; scanning this window, then a new feed", w.id, changes.status().to_string());
    feeds_.erase(it);
    *upto = now;
    return read_window(w, w.delivered, upto);
  }
  return changes;
}

Result<std::vector<TxnChange>> WatchSession::read_window(const Watcher& w, std::uint64_t after, std::uint64_t* upto) {
  auto [start, end] = data_range(w);
  if (!end.empty() && start >= end) {
    return std::vector<TxnChange>();
  }
  for (;;) {
    RDB_ASSIGN_OR_RETURN(auto snap, client_.snapshot_at(*upto));
    std::vector<TxnChange> out;
    std::string from = start;
    bool shrunk = false;
    std::uint64_t oldest = *upto;  // the earliest commit seen in this window so far
    for (;;) {
      std::string next;
      RDB_ASSIGN_OR_RETURN(auto page, snap->changes(from, end, after, kChangesPage, w.prev_kv, &next));
      for (auto& c : page) {
        oldest = std::min(oldest, c.commit_ts);
        out.push_back(std::move(c));
      }
      if (out.size() > options_.max_window_changes && *upto - after > 1) {
        // Too many at once: end the window before the newest commits. Ending it at the
        // earliest commit seen (or just below, when that is the end already) shrinks it
        // fast; a window of one timestamp — one transaction — is read whole.
        *upto = oldest < *upto ? oldest : *upto - 1;
        shrunk = true;
        break;
      }
      if (next.empty()) {
        break;
      }
      from = std::move(next);
    }
    (void)snap->rollback();
    if (!shrunk) {
      return out;
    }
  }
}

std::vector<Event> WatchSession::to_events(const Watcher& w, const std::vector<TxnChange>& changes) const {
  std::vector<Event> events;
  events.reserve(changes.size());
  for (const auto& c : changes) {
    if ((c.deleted && w.no_delete) || (!c.deleted && w.no_put)) {
      continue;
    }
    Event e;
    std::string key = layout_.etcd_key(c.key);
    if (c.deleted) {
      e.set_type(Event::DELETE);
      e.mutable_kv()->set_key(key);
      e.mutable_kv()->set_mod_revision(static_cast<std::int64_t>(c.commit_ts));
    } else {
      Current cur;
      cur.key = key;
      cur.mod_revision = static_cast<std::int64_t>(c.commit_ts);
      if (!cur.record.ParseFromString(c.value)) {
        spdlog::error("watch: the record of etcd key '{}' at {} does not parse; event skipped", key, c.commit_ts);
        continue;
      }
      e.set_type(Event::PUT);
      *e.mutable_kv() = to_key_value(cur);
    }
    if (w.prev_kv && c.previous) {
      Current prev;
      prev.key = key;
      prev.mod_revision = static_cast<std::int64_t>(c.previous->commit_ts);
      if (prev.record.ParseFromString(c.previous->value)) {
        *e.mutable_prev_kv() = to_key_value(prev);
      }
    }
    events.push_back(std::move(e));
  }
  // Revision order; within one revision (one transaction), key order.
  std::stable_sort(events.begin(), events.end(),
                   [](const Event& a, const Event& b) { return a.kv().mod_revision() < b.kv().mod_revision(); });
  return events;
}

bool WatchSession::poll(bool* behind) {
  std::vector<Watcher> todo;
  {
    std::lock_guard lock(mu_);
    todo.reserve(watchers_.size());
    for (const auto& [id, w] : watchers_) {
      todo.push_back(w);
    }
  }
  // Feeds of watchers gone (canceled, compacted) go too: their stores stop keeping changes.
  std::erase_if(feeds_, [&](const auto& f) {
    return std::none_of(todo.begin(), todo.end(),
                        [&](const Watcher& w) { return w.id == f.first && w.serial == f.second.serial; });
  });
  if (todo.empty()) {
    return true;
  }
  auto now = client_.get_tso(1);
  if (!now.is_ok()) {
    spdlog::warn("watch: no timestamp for the next window: {}", now.status().to_string());
    return true;  // the next poll tries again
  }
  for (const Watcher& w : todo) {
    if (*now <= w.delivered) {
      continue;  // a start revision in the future: nothing can be there yet
    }
    std::uint64_t upto = *now;
    auto changes = next_window(w, *now, &upto);
    std::lock_guard lock(mu_);
    auto it = watchers_.find(w.id);
    if (it == watchers_.end() || it->second.delivered != w.delivered) {
      continue;  // canceled (or replaced by a new watcher with its id) meanwhile
    }
    Watcher& live = it->second;
    if (!changes.is_ok()) {
      if (compacted(changes.status())) {
        auto safe = client_.update_gc_safe_point(0);
        std::uint64_t compact_revision = safe.is_ok() ? safe->current : w.delivered + 1;
        watchers_.erase(it);
        if (!send_compacted(w.id, compact_revision)) {
          return false;
        }
        continue;
      }
      spdlog::warn("watch {}: the window after {} could not be read (tried again next poll): {}", w.id, w.delivered,
                   changes.status().to_string());
      continue;
    }
    auto events = to_events(w, *changes);
    auto steady_now = std::chrono::steady_clock::now();
    if (!events.empty()) {
      for (auto& resp : batch_events(w.id, std::move(events), options_.max_response_bytes, w.fragment)) {
        if (!send(resp, static_cast<std::int64_t>(upto))) {
          return false;
        }
      }
      live.last_sent = steady_now;
    } else if (live.progress_notify && steady_now - live.last_sent >= options_.progress_notify_interval) {
      WatchResponse resp;
      resp.set_watch_id(w.id);
      if (!send(resp, static_cast<std::int64_t>(upto))) {
        return false;
      }
      live.last_sent = steady_now;
    }
    live.delivered = upto;
    if (behind != nullptr && upto < *now) {
      *behind = true;
    }
  }
  return true;
}

grpc::Status WatchService::Watch(grpc::ServerContext* ctx,
                                 grpc::ServerReaderWriter<WatchResponse, WatchRequest>* stream) {
  if (streams_.fetch_add(1) >= options_.max_streams) {
    streams_.fetch_sub(1);
    return {grpc::StatusCode::RESOURCE_EXHAUSTED,
            fmt::format("rdb-etcd: this gateway already serves {} watch streams (--max-watch-streams)",
                        options_.max_streams)};
  }
  struct Release {
    std::atomic<std::size_t>& n;
    ~Release() { n.fetch_sub(1); }
  } release{streams_};
  WatchSession session(kv_, client_, layout_, options_, [stream](const WatchResponse& r) { return stream->Write(r); });
  std::mutex mu;
  std::condition_variable wake;
  bool done = false;
  std::thread poller([&] {
    std::unique_lock lock(mu);
    while (!done) {
      lock.unlock();
      bool behind = false;
      bool alive = session.poll(&behind);
      lock.lock();
      if (!alive) {
        ctx->TryCancel();  // the client stopped reading: end the stream (Read returns)
        return;
      }
      if (!behind) {
        wake.wait_for(lock, options_.poll_interval, [&] { return done; });
      }
    }
  });
  WatchRequest req;
  while (stream->Read(&req)) {
    if (!session.handle(req)) {
      break;
    }
  }
  {
    std::lock_guard lock(mu);
    done = true;
  }
  wake.notify_all();
  poller.join();
  return grpc::Status::OK;
}

}  // namespace rdb::etcd
