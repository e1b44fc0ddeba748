#include "server/change_feed_hub.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <random>

namespace rdb {

ChangeFeedHub::ChangeFeedHub(Options options) : options_(options) {
  std::random_device rd;
  next_id_ = ((static_cast<std::uint64_t>(rd()) << 32) | rd()) >> 1;  // room to count up
  next_id_ = next_id_ == 0 ? 1 : next_id_;
}

Result<std::uint64_t> ChangeFeedHub::add(std::string start, std::string end, Clock::time_point now) {
  std::lock_guard lock(mu_);
  drop_idle(now);
  if (feeds_.size() >= options_.max_feeds) {
    return ServerStatus::busy(
        fmt::format("this store already serves {} change feeds (--max-change-feeds)", feeds_.size()));
  }
  std::uint64_t id = next_id_++;
  Feed& f = feeds_[id];
  f.start = std::move(start);
  f.end = std::move(end);
  f.last_poll = now;
  feeds_count_.store(feeds_.size(), std::memory_order_release);
  return id;
}

void ChangeFeedHub::lose(Feed& f, std::string why) {
  if (!f.lost.empty()) {
    return;
  }
  bytes_ -= f.bytes;
  f.bytes = 0;
  f.changes.clear();
  f.lost = std::move(why);
}

void ChangeFeedHub::publish(const std::vector<FeedChange>& changes, Clock::time_point now) {
  if (changes.empty()) {
    return;
  }
  std::lock_guard lock(mu_);
  drop_idle(now);
  for (auto& [id, f] : feeds_) {
    if (!f.lost.empty()) {
      continue;
    }
    for (const auto& c : changes) {
      if (!contains(f, c.key)) {
        continue;
      }
      std::size_t n = cost(c);
      if (bytes_ + n > options_.memory_limit) {
        spdlog::warn("change feed {}: lost, its changes do not fit in --change-feed-memory ({} bytes buffered)", id,
                     bytes_);
        lose(f, fmt::format("the store's change feed memory ({} bytes, --change-feed-memory) is full: the feed "
                            "fell behind",
                            options_.memory_limit));
        break;
      }
      auto [it, fresh] = f.changes.try_emplace({c.commit_ts, c.key}, c);
      if (fresh) {
        f.bytes += n;
        bytes_ += n;
      }
    }
  }
}

void ChangeFeedHub::lose_range(const std::string& start, const std::string& end, const std::string& why) {
  std::lock_guard lock(mu_);
  for (auto& [id, f] : feeds_) {
    bool overlaps = (end.empty() || f.start < end) && (f.end.empty() || start < f.end);
    if (overlaps) {
      lose(f, why);
    }
  }
}

Result<ChangeFeedHub::Taken> ChangeFeedHub::take(std::uint64_t id, std::uint64_t after, std::uint64_t version,
                                                 std::size_t max_bytes, Clock::time_point now) {
  std::lock_guard lock(mu_);
  drop_idle(now);
  auto it = feeds_.find(id);
  if (it == feeds_.end()) {
    return ServerStatus::not_found(
        fmt::format("no change feed {} here (dropped when idle, or the store restarted)", id));
  }
  Feed& f = it->second;
  f.last_poll = now;
  Taken out;
  if (!f.lost.empty()) {
    out.lost = f.lost;
    return out;
  }
  // What the poller has: dropped for good.
  auto keep = f.changes.lower_bound({after + 1, std::string()});
  for (auto drop = f.changes.begin(); drop != keep; ++drop) {
    std::size_t n = cost(drop->second);
    f.bytes -= n;
    bytes_ -= n;
  }
  f.changes.erase(f.changes.begin(), keep);
  out.resolved_ts = version;
  std::size_t answered = 0;
  for (auto c = f.changes.begin(); c != f.changes.end() && c->first.first <= version; ++c) {
    if (answered >= max_bytes && !out.changes.empty() && c->first.first != out.changes.back().commit_ts) {
      out.resolved_ts = out.changes.back().commit_ts;  // cut between two timestamps
      break;
    }
    answered += cost(c->second);
    out.changes.push_back(c->second);
  }
  return out;
}

Result<std::pair<std::string, std::string>> ChangeFeedHub::range_of(std::uint64_t id) const {
  std::lock_guard lock(mu_);
  auto it = feeds_.find(id);
  if (it == feeds_.end()) {
    return ServerStatus::not_found(
        fmt::format("no change feed {} here (dropped when idle, or the store restarted)", id));
  }
  return std::make_pair(it->second.start, it->second.end);
}

void ChangeFeedHub::remove(std::uint64_t id) {
  std::lock_guard lock(mu_);
  auto it = feeds_.find(id);
  if (it == feeds_.end()) {
    return;
  }
  bytes_ -= it->second.bytes;
  feeds_.erase(it);
  feeds_count_.store(feeds_.size(), std::memory_order_release);
}

std::size_t ChangeFeedHub::bytes() const {
  std::lock_guard lock(mu_);
  return bytes_;
}

void ChangeFeedHub::drop_idle(Clock::time_point now) {
  if (now < next_idle_check_) {
    return;
  }
  next_idle_check_ = now + std::chrono::seconds(1);
  for (auto it = feeds_.begin(); it != feeds_.end();) {
    if (now - it->second.last_poll >= options_.idle_timeout) {
      spdlog::info("change feed {}: dropped, nobody polled it for {} ms", it->first, options_.idle_timeout.count());
      bytes_ -= it->second.bytes;
      it = feeds_.erase(it);
    } else {
      ++it;
    }
  }
  feeds_count_.store(feeds_.size(), std::memory_order_release);
}

}  // namespace rdb
