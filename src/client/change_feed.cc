// The client's side of a change feed (see ChangeFeed in rdb/client.h): one store-side feed
// per region of the range, registered with its leader and polled at fresh timestamps.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "client/txn_sender.h"
#include "common/limits.h"

namespace rdb {
namespace {

using Clock = std::chrono::steady_clock;

class FeedImpl final : public ChangeFeed {
 public:
  struct Part {
    std::string start;  // routes its polls
    std::uint64_t id = 0;
  };
  FeedImpl(TxnSender& sender, bool with_prev, std::vector<Part> parts, std::uint64_t floor)
      : s_(sender), with_prev_(with_prev), parts_(std::move(parts)), floor_(floor) {}
  ~FeedImpl() override {
    for (const auto& p : parts_) {
      kvrpc::KvChangeFeedCancelRequest req;
      req.set_feed_id(p.id);
      req.set_start_key(p.start);
      s_.kv_change_feed_cancel(req);  // best effort: the store drops an idle feed anyway
    }
  }

  std::uint64_t floor() const override { return floor_; }

  void next_async(std::uint64_t after, Callback<Batch> done) override {
    s_.post([this, after, done = std::move(done)] {
      Batch batch;
      auto changes = next(after, &batch.resolved);
      if (!changes.is_ok()) {
        return done(changes.status());
      }
      batch.changes = std::move(changes).value();
      done(std::move(batch));
    });
  }

  Result<std::vector<TxnChange>> next(std::uint64_t after, std::uint64_t* resolved) override {
    if (after < floor_) {
      return Status::invalid_argument(
          fmt::format("changes after {} asked of a feed that has them only after {}", after, floor_));
    }
    RDB_ASSIGN_OR_RETURN(std::uint64_t version, s_.timestamp());
    *resolved = after;
    if (version <= after) {
      return std::vector<TxnChange>();  // nothing can have committed after `after` yet
    }
    std::uint64_t upto = version;
    std::vector<TxnChange> out;
    for (const auto& p : parts_) {
      kvrpc::KvChangeFeedPollRequest req;
      req.set_feed_id(p.id);
      req.set_version(version);
      req.set_after(after);
      req.set_with_prev(with_prev_);
      RDB_ASSIGN_OR_RETURN(auto resp, poll(req, p.start));
      if (resp.resolved_ts() <= after || resp.resolved_ts() > version) {
        // A store's answer outside the window would move the reader backwards or past V.
        return Status::internal(fmt::format("a store answered a change feed poll of ({}, {}] resolved at {}", after,
                                            version, resp.resolved_ts()));
      }
      upto = std::min(upto, resp.resolved_ts());
      for (auto& c : *resp.mutable_changes()) {
        if (c.commit_ts() <= after) {
          continue;  // already had (a store that dropped nothing): never twice
        }
        TxnChange change{std::move(*c.mutable_key()), c.commit_ts(), c.deleted(), std::move(*c.mutable_value()), {}};
        if (c.has_prev()) {
          change.previous = TxnVersion{change.key, std::move(*c.mutable_prev_value()), c.prev_commit_ts()};
        }
        out.push_back(std::move(change));
      }
    }
    // A part cut short: the others' changes above its cut come again next time (the
    // stores keep what is above `after`).
    std::erase_if(out, [&](const TxnChange& c) { return c.commit_ts > upto; });
    std::sort(out.begin(), out.end(), [](const TxnChange& a, const TxnChange& b) {
      return a.commit_ts != b.commit_ts ? a.commit_ts < b.commit_ts : a.key < b.key;
    });
    *resolved = upto;
    return out;
  }

 private:
  // One part's poll, settling the locks it meets the way a read at `version` would.
  Result<kvrpc::KvChangeFeedPollResponse> poll(const kvrpc::KvChangeFeedPollRequest& req, const std::string& start) {
    auto deadline = Clock::now() + s_.timeout();
    for (;;) {
      RDB_ASSIGN_OR_RETURN(auto resp, s_.kv_change_feed_poll(req, start));
      if (!resp.lost().empty()) {
        return Status::unavailable("change feed lost: " + resp.lost());
      }
      if (!resp.has_error()) {
        return resp;
      }
      if (!resp.error().has_locked()) {
        return Status::internal(fmt::format("a change feed poll was refused: {}", resp.error().DebugString()));
      }
      if (Clock::now() >= deadline) {
        return Status::deadline_exceeded(
            fmt::format("a change feed poll kept meeting locks, the last on '{}'", resp.error().locked().key()));
      }
      // A read of the locked key at `version` resolves the lock or waits it out.
      auto snap = make_read_only_transaction(s_, req.version());
      RDB_RETURN_IF_ERROR(snap->get(resp.error().locked().key()).status());
    }
  }

  TxnSender& s_;
  const bool with_prev_;
  std::vector<Part> parts_;
  const std::uint64_t floor_;
};

}  // namespace

Result<std::unique_ptr<ChangeFeed>> open_change_feed(TxnSender& sender, const std::string& start,
                                                     const std::string& end, bool with_prev) {
  RDB_RETURN_IF_ERROR(validate_range(start, end, false));
  std::vector<FeedImpl::Part> parts;
  std::uint64_t max_ts = 0;
  // Cancels what was registered when a later part fails.
  auto cancel_all = [&] {
    for (const auto& p : parts) {
      kvrpc::KvChangeFeedCancelRequest req;
      req.set_feed_id(p.id);
      req.set_start_key(p.start);
      sender.kv_change_feed_cancel(req);
    }
  };
  std::string from = start;
  for (;;) {
    kvrpc::KvChangeFeedRegisterRequest req;
    req.set_start_key(from);
    req.set_end_key(end);
    auto resp = sender.kv_change_feed_register(req);
    if (!resp.is_ok()) {
      cancel_all();
      return resp.status();
    }
    parts.push_back({from, resp->feed_id()});
    max_ts = std::max(max_ts, resp->max_ts());
    if (resp->end_key().empty() || resp->end_key() == end || resp->end_key() <= from) {
      break;
    }
    from = resp->end_key();
  }
  // The floor is a timestamp PD handed out at or above every commit applied before the
  // feeds were in place (a 1PC's may run ahead of PD's by a little).
  auto deadline = Clock::now() + sender.timeout();
  for (;;) {
    auto ts = sender.timestamp();
    if (!ts.is_ok()) {
      cancel_all();
      return ts.status();
    }
    if (*ts >= max_ts) {
      return std::unique_ptr<ChangeFeed>(std::make_unique<FeedImpl>(sender, with_prev, std::move(parts), *ts));
    }
    if (Clock::now() >= deadline) {
      cancel_all();
      return Status::deadline_exceeded(
          fmt::format("PD's timestamps stayed below a store's max_ts {} until the deadline", max_ts));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

}  // namespace rdb
