#include "client/async_runner.h"

#include <algorithm>

namespace rdb {

AsyncRunner::AsyncRunner(std::size_t threads) {
  for (std::size_t i = 0; i < std::max<std::size_t>(threads, 1); ++i) {
    workers_.emplace_back([this] { work(); });
  }
  timer_ = std::thread([this] { tick(); });
}

AsyncRunner::~AsyncRunner() {
  stop_timer();
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  for (auto& t : workers_) {
    t.join();
  }
}

void AsyncRunner::stop_timer() {
  {
    std::lock_guard lock(mu_);
    if (timer_stopped_) {
      return;
    }
    timer_stopped_ = true;
    timers_.clear();
  }
  timer_cv_.notify_all();
  timer_.join();  // a timer task running now finishes first
}

void AsyncRunner::post(Task task) {
  {
    std::lock_guard lock(mu_);
    queue_.push_back(std::move(task));
  }
  work_cv_.notify_one();
}

void AsyncRunner::at(Clock::time_point when, Task task) {
  bool earliest = false;
  {
    std::lock_guard lock(mu_);
    if (timer_stopped_) {
      return;
    }
    earliest = timers_.empty() || when < timers_.begin()->first;
    timers_.emplace(when, std::move(task));
  }
  if (earliest) {
    timer_cv_.notify_one();
  }
}

std::size_t AsyncRunner::pending() const {
  std::lock_guard lock(mu_);
  return queue_.size() + running_;
}

void AsyncRunner::work() {
  std::unique_lock lock(mu_);
  for (;;) {
    work_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) {
      return;  // stopping, and everything posted ran
    }
    Task task = std::move(queue_.front());
    queue_.pop_front();
    ++running_;
    lock.unlock();
    task();
    task = nullptr;  // whatever it captured goes before the lock is taken again
    lock.lock();
    --running_;
  }
}

void AsyncRunner::tick() {
  std::unique_lock lock(mu_);
  while (!timer_stopped_) {
    if (timers_.empty()) {
      timer_cv_.wait(lock);
      continue;
    }
    auto first = timers_.begin();
    if (Clock::now() < first->first) {
      // A copy: while this waits (unlocked) the entry may go (stop_timer clears them all).
      const Clock::time_point when = first->first;
      timer_cv_.wait_until(lock, when);
      continue;
    }
    Task task = std::move(first->second);
    timers_.erase(first);
    lock.unlock();
    task();
    task = nullptr;
    lock.lock();
  }
}

}  // namespace rdb
