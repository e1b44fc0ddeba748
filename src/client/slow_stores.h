// SlowStores: stores this client saw hang, to be avoided for a while.
//
// A store that answers nothing for the client's attempt timeout while requests
// wait on it is marked; routing then prefers another replica of the region until
// the mark expires or the store answers something again. Expiry rather than
// probing keeps it passive: after the mark, one request finds out.
// Thread safety: every method may be called from any thread.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <string>

namespace rdb {

class SlowStores {
 public:
  using Clock = std::chrono::steady_clock;
  explicit SlowStores(Clock::duration avoid_for) : avoid_for_(avoid_for) {}

  void mark(const std::string& addr) {
    std::lock_guard lock(mu_);
    until_[addr] = Clock::now() + avoid_for_;
  }
  void answered(const std::string& addr) {
    std::lock_guard lock(mu_);
    until_.erase(addr);
  }
  bool is_slow(const std::string& addr) const {
    std::lock_guard lock(mu_);
    auto it = until_.find(addr);
    return it != until_.end() && Clock::now() < it->second;
  }

 private:
  Clock::duration avoid_for_;
  mutable std::mutex mu_;
  std::map<std::string, Clock::time_point> until_;
};

}  // namespace rdb
