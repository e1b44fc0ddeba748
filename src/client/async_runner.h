// AsyncRunner: the client's threads for asynchronous calls — a worker pool that runs
// blocking work (calls that cannot travel on a store's stream without a thread, retries
// after a routing error), and a timer that runs checks at given times (an in-flight
// request's deadline, a store's silence).
//
// Why a pool and a timer instead of a thread per call: a point request on a store's stream
// holds no thread while it waits, so one caller thread can keep thousands in flight; only
// work that must block takes one of the pool's `threads`.
// Thread safety: post() and at() may be called from any thread, including the runner's own.
// The destructor stops the timer (pending timer tasks are dropped), then runs every task
// already posted, then joins the threads. Internal to the client library.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

namespace rdb {

class AsyncRunner {
 public:
  using Clock = std::chrono::steady_clock;
  using Task = std::function<void()>;

  explicit AsyncRunner(std::size_t threads);
  ~AsyncRunner();
  AsyncRunner(const AsyncRunner&) = delete;
  AsyncRunner& operator=(const AsyncRunner&) = delete;

  // Runs `task` on a pool thread, in the order posted (several run at once).
  void post(Task task);
  // Runs `task` on the timer thread at `when` (at once if it passed). Timer tasks must be
  // quick: post() anything that blocks.
  void at(Clock::time_point when, Task task);
  // Stops the timer: tasks waiting for their time are dropped, later at() calls ignored.
  // Posting still works. For a shutdown that must stop timer tasks before what they touch.
  void stop_timer();
  // Tasks posted and not yet finished.
  std::size_t pending() const;

 private:
  void work();
  void tick();

  mutable std::mutex mu_;
  std::condition_variable work_cv_;
  std::condition_variable timer_cv_;
  std::deque<Task> queue_;                         // guarded by mu_
  std::multimap<Clock::time_point, Task> timers_;  // guarded by mu_
  std::size_t running_ = 0;                        // guarded by mu_
  bool stopping_ = false;                          // guarded by mu_
  bool timer_stopped_ = false;                     // guarded by mu_
  std::vector<std::thread> workers_;
  std::thread timer_;
};

}  // namespace rdb
