#include "server/split_checker.h"

#include <spdlog/spdlog.h>

namespace rdb {

Result<SplitCheck> check_region_split(StorageEngine& engine, const EngineSnapshot& view, const metapb::Region& region,
                                      const SplitLimits& limits) {
  SplitCheck out;
  std::uint64_t part_bytes = 0;
  std::uint64_t part_keys = 0;
  std::vector<std::string> cuts;
  auto walked = engine.visit_range(view, {ColumnFamily::kRaw, ColumnFamily::kCas}, region.start_key(), region.end_key(),
                                   [&](ColumnFamily, std::string_view key, std::string_view value) {
                                     bool part_full = part_bytes >= limits.bytes || part_keys >= limits.keys;
                                     // A key in both key spaces comes twice: cut only at a new key.
                                     if (part_full && key > region.start_key() && (cuts.empty() || key > cuts.back())) {
                                       if (static_cast<int>(cuts.size()) == limits.max_split_keys) {
                                         out.complete = false;
                                         return false;
                                       }
                                       cuts.emplace_back(key);
                                       part_bytes = 0;
                                       part_keys = 0;
                                     }
                                     part_bytes += key.size() + value.size();
                                     part_keys += 1;
                                     out.bytes += key.size() + value.size();
                                     out.keys += 1;
                                     return true;
                                   });
  RDB_RETURN_IF_ERROR(walked);
  bool too_big = out.bytes * 2 > limits.bytes * 3 || out.keys * 2 > limits.keys * 3;
  if (!too_big && out.complete) {
    return out;
  }
  if (out.complete && !cuts.empty() && part_bytes * 2 < limits.bytes && part_keys * 2 < limits.keys) {
    cuts.pop_back();  // a small tail joins the part before it (at most 1.5 times a limit)
  }
  out.split_keys = std::move(cuts);
  return out;
}

SplitCheckWorker::SplitCheckWorker(StorageEngine& engine, SplitLimits limits)
    : engine_(engine), limits_(limits), thread_([this] { run(); }) {}

SplitCheckWorker::~SplitCheckWorker() {
  stop();
}

void SplitCheckWorker::submit(metapb::Region region, Done done) {
  // The view is taken now, by the caller (the Raft loop): the region's range and
  // its data then agree.
  auto view = engine_.snapshot();
  {
    std::lock_guard lock(mu_);
    if (stopping_) {
      return;
    }
    tasks_.push_back({std::move(region), std::move(view), std::move(done)});
  }
  cv_.notify_one();
}

void SplitCheckWorker::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    tasks_.clear();
  }
  cv_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
}

void SplitCheckWorker::run() {
  for (;;) {
    Task task;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !tasks_.empty(); });
      if (stopping_) {
        return;
      }
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    task.done(task.region, check_region_split(engine_, *task.view, task.region, limits_));
  }
}

}  // namespace rdb
