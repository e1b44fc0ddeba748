#include "server/concurrency_manager.h"

#include <algorithm>

namespace rdb {

ConcurrencyManager::Guard::~Guard() {
  if (owner_ != nullptr) {
    owner_->release(keys_);
  }
}

void ConcurrencyManager::Guard::mark_memory_locks(std::uint64_t region, std::uint64_t term) {
  if (owner_ != nullptr) {
    owner_->mark(keys_, region, term);
    memory_locked_ = true;
  }
}

std::optional<ConcurrencyManager::Guard> ConcurrencyManager::latch(std::vector<std::string> keys,
                                                                   Clock::time_point deadline) {
  std::unique_lock lock(mu_);
  auto all_free = [&] {
    return std::none_of(keys.begin(), keys.end(), [&](const std::string& k) { return latches_.count(k) > 0; });
  };
  if (!released_.wait_until(lock, deadline, all_free)) {
    return std::nullopt;
  }
  for (const auto& k : keys) {
    latches_.emplace(k, Latch{});
  }
  return Guard(*this, std::move(keys));
}

void ConcurrencyManager::release(const std::vector<std::string>& keys) {
  {
    std::lock_guard lock(mu_);
    for (const auto& k : keys) {
      auto it = latches_.find(k);
      if (it == latches_.end()) {
        continue;
      }
      if (it->second.memory_lock) {
        --memory_locks_;
      }
      latches_.erase(it);
    }
  }
  released_.notify_all();
}

void ConcurrencyManager::mark(const std::vector<std::string>& keys, std::uint64_t region, std::uint64_t term) {
  std::lock_guard lock(mu_);
  for (const auto& k : keys) {
    auto it = latches_.find(k);
    if (it != latches_.end()) {
      if (!it->second.memory_lock) {
        ++memory_locks_;
      }
      it->second = Latch{true, region, term};
    }
  }
}

bool ConcurrencyManager::blocks(const Latch& latch, const StillLeading& live) const {
  return latch.memory_lock && (!live || live(latch.region, latch.term));
}

namespace {
void raise(std::atomic<std::uint64_t>& value, std::uint64_t to) {
  std::uint64_t seen = value.load();
  while (seen < to && !value.compare_exchange_weak(seen, to)) {
  }
}
}  // namespace

void ConcurrencyManager::update_max_ts(std::uint64_t ts) {
  raise(max_ts_, ts);
}

std::optional<std::uint64_t> ConcurrencyManager::next_commit_ts(std::uint64_t start_ts, std::uint64_t limit) {
  std::uint64_t seen = max_ts_.load();
  for (;;) {
    const std::uint64_t commit_ts = std::max(seen, start_ts) + 1;
    if (commit_ts > limit) {
      return std::nullopt;
    }
    if (max_ts_.compare_exchange_weak(seen, commit_ts)) {
      return commit_ts;
    }
  }
}

void ConcurrencyManager::update_gc_safe_point(std::uint64_t ts) {
  raise(gc_safe_point_, ts);
}

bool ConcurrencyManager::any_memory_lock_locked(const std::vector<std::string>& keys, const StillLeading& live) const {
  if (memory_locks_ == 0) {
    return false;
  }
  return std::any_of(keys.begin(), keys.end(), [&](const std::string& k) {
    auto it = latches_.find(k);
    return it != latches_.end() && blocks(it->second, live);
  });
}

bool ConcurrencyManager::any_memory_lock_in_range_locked(const std::string& start, const std::string& end,
                                                         const StillLeading& live) const {
  if (memory_locks_ == 0) {
    return false;
  }
  for (auto it = latches_.lower_bound(start); it != latches_.end() && (end.empty() || it->first < end); ++it) {
    if (blocks(it->second, live)) {
      return true;
    }
  }
  return false;
}

template <typename Clear>
bool ConcurrencyManager::wait_until_clear(Clock::time_point deadline, Clear&& clear) {
  // Leadership ends without a release: look again every few milliseconds.
  constexpr auto kRecheck = std::chrono::milliseconds(20);
  std::unique_lock lock(mu_);
  for (;;) {
    if (clear()) {
      return true;
    }
    auto now = Clock::now();
    if (now >= deadline) {
      return false;
    }
    released_.wait_until(lock, std::min(deadline, now + kRecheck));
  }
}

bool ConcurrencyManager::wait_for_memory_locks(const std::vector<std::string>& keys, Clock::time_point deadline,
                                               const StillLeading& live) {
  return wait_until_clear(deadline, [&] { return !any_memory_lock_locked(keys, live); });
}

bool ConcurrencyManager::wait_for_memory_locks_in_range(const std::string& start, const std::string& end,
                                                        Clock::time_point deadline, const StillLeading& live) {
  return wait_until_clear(deadline, [&] { return !any_memory_lock_in_range_locked(start, end, live); });
}

std::string ConcurrencyManager::describe_blocking(const std::string& start, const std::string& end,
                                                  const std::vector<std::string>& keys,
                                                  const StillLeading& live) const {
  std::lock_guard lock(mu_);
  auto describe = [](const std::string& key, const Latch& l) {
    return "key " + key + " (region " + std::to_string(l.region) + ", leader term " + std::to_string(l.term) + ")";
  };
  if (!keys.empty()) {
    for (const auto& k : keys) {
      auto it = latches_.find(k);
      if (it != latches_.end() && blocks(it->second, live)) {
        return describe(k, it->second);
      }
    }
    return "";
  }
  for (auto it = latches_.lower_bound(start); it != latches_.end() && (end.empty() || it->first < end); ++it) {
    if (blocks(it->second, live)) {
      return describe(it->first, it->second);
    }
  }
  return "";
}

bool ConcurrencyManager::synced(std::uint64_t region_id, std::uint64_t term, std::uint64_t epoch_version) const {
  std::lock_guard lock(mu_);
  auto it = synced_.find(region_id);
  return it != synced_.end() && it->second == std::make_pair(term, epoch_version);
}

void ConcurrencyManager::mark_synced(std::uint64_t region_id, std::uint64_t term, std::uint64_t epoch_version) {
  std::lock_guard lock(mu_);
  synced_[region_id] = {term, epoch_version};
}

std::size_t ConcurrencyManager::latched_keys() const {
  std::lock_guard lock(mu_);
  return latches_.size();
}

}  // namespace rdb
