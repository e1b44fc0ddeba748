// SlowStores: stores this client saw hang, avoided until they answer again.
//
// A store that answers nothing for the client's attempt timeout while requests
// wait on it is marked; routing then goes through another replica of the region.
// The mark is lifted only by an answer from the store: any reply to a request, or
// a probe (a cheap StoreInfo call, made by one caller at most once per
// `probe_every` while the mark stands) — never a user's request, so a store that
// is still hung costs no more failed writes.
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
  explicit SlowStores(Clock::duration probe_every) : probe_every_(probe_every) {}

  void mark(const std::string& addr) {
    std::lock_guard lock(mu_);
    next_probe_.try_emplace(addr, Clock::now() + probe_every_);
  }
  void answered(const std::string& addr) {
    std::lock_guard lock(mu_);
    next_probe_.erase(addr);
  }
  bool is_slow(const std::string& addr) const {
    std::lock_guard lock(mu_);
    return next_probe_.count(addr) != 0;
  }
  // True for one caller per `probe_every` while `addr` is marked: that caller probes it.
  bool take_probe_turn(const std::string& addr) {
    std::lock_guard lock(mu_);
    auto it = next_probe_.find(addr);
    if (it == next_probe_.end() || Clock::now() < it->second) {
      return false;
    }
    it->second = Clock::now() + probe_every_;
    return true;
  }

 private:
  Clock::duration probe_every_;
  mutable std::mutex mu_;
  std::map<std::string, Clock::time_point> next_probe_;
};

}  // namespace rdb
