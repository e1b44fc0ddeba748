// HeldPool: keeps the worker pool of a client built with async_threads = 1 busy, so a test
// can show which asynchronous calls complete without a pool thread (they travel on the
// stores' streams) and which wait for one.
//
// It starts a pool-run asynchronous call (cluster_status_async) whose callback blocks until
// release() or the destructor, at most `limit`. Thread safety: one owner thread.
#pragma once

#include <atomic>
#include <chrono>
#include <future>
#include <memory>

#include "rdb/client.h"
#include "support/process.h"

namespace rdb::testing {

class HeldPool {
 public:
  explicit HeldPool(RdbClient& client, std::chrono::seconds limit = std::chrono::seconds(60)) {
    auto released = release_.get_future().share();
    auto held = held_;
    auto ended = ended_;
    client.cluster_status_async([released, held, ended, limit](const Result<ClusterStatus>&) {
      *held = true;
      released.wait_for(limit);
      ended->set_value();
    });
    held_now_ = poll_until([&] { return held_->load(); }, std::chrono::seconds(10));
  }
  ~HeldPool() { release(); }
  HeldPool(const HeldPool&) = delete;
  HeldPool& operator=(const HeldPool&) = delete;

  // Whether the pool thread was taken (false: the test cannot conclude anything).
  bool held() const { return held_now_; }
  // Lets the pool thread go and waits until the blocking callback returned.
  void release() {
    if (released_) {
      return;
    }
    released_ = true;
    release_.set_value();
    if (held_now_) {
      ended_->get_future().wait();
    }
  }

 private:
  std::promise<void> release_;
  std::shared_ptr<std::atomic<bool>> held_ = std::make_shared<std::atomic<bool>>(false);
  std::shared_ptr<std::promise<void>> ended_ = std::make_shared<std::promise<void>>();
  bool held_now_ = false;
  bool released_ = false;
};

}  // namespace rdb::testing
