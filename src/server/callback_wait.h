// await_callback: waits, up to a deadline, for the value an asynchronous RaftStore
// call hands its callback. Used by the synchronous gRPC handlers.
// Thread safety: the callback may run on any thread; the waiter owns nothing shared.
#pragma once

#include <chrono>
#include <future>
#include <memory>
#include <optional>

namespace rdb {

// Starts the call (`start` receives the callback) and waits for its value until
// `deadline`; nullopt if it did not come in time (the call may still complete).
template <typename T, typename Start>
std::optional<T> await_callback(Start&& start, std::chrono::system_clock::time_point deadline) {
  auto done = std::make_shared<std::promise<T>>();
  auto value = done->get_future();
  start([done](T v) { done->set_value(std::move(v)); });
  if (value.wait_until(deadline) != std::future_status::ready) {
    return std::nullopt;
  }
  return value.get();
}

}  // namespace rdb
