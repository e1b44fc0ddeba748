#include "server/split_checker.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "storage/mvcc_codec.h"

namespace rdb {

Result<SplitCheck> check_region_split(StorageEngine& engine, const EngineSnapshot& view, const metapb::Region& region,
                                      const SplitLimits& limits) {
  SplitCheck out;
  std::uint64_t part_bytes = 0;
  std::uint64_t part_keys = 0;
  std::vector<std::string> cuts;
  // Walks families whose keys sort as user keys do; `user_key` maps a stored key to
  // the user key a cut would be made at.
  auto walk = [&](const std::vector<ColumnFamily>& cfs, const std::string& start, const std::string& end,
                  auto&& user_key) -> Status {
    part_bytes = 0;
    part_keys = 0;
    return engine.visit_range(view, cfs, start, end, [&](ColumnFamily, std::string_view key, std::string_view value) {
      bool part_full = part_bytes >= limits.bytes || part_keys >= limits.keys;
      if (part_full) {
        auto cut = user_key(key);
        // A key in several families (or versions) comes more than once: cut only at a new key.
        if (cut && *cut > region.start_key() && (cuts.empty() || *cut > cuts.back())) {
          if (static_cast<int>(cuts.size()) == limits.max_split_keys) {
            out.complete = false;
            return false;
          }
          cuts.push_back(std::move(*cut));
          part_bytes = 0;
          part_keys = 0;
        }
      }
      part_bytes += key.size() + value.size();
      part_keys += 1;
      out.bytes += key.size() + value.size();
      out.keys += 1;
      return true;
    });
  };
  RDB_RETURN_IF_ERROR(walk({ColumnFamily::kRaw, ColumnFamily::kCas, ColumnFamily::kTxnLock}, region.start_key(),
                           region.end_key(), [](std::string_view key) { return std::optional<std::string>(key); }));
  // Transactional versions sort by user key too, but under another encoding: a second
  // walk, whose cuts join the first's (two parts of mixed data may each be up to a limit).
  std::vector<std::string> first_cuts = std::move(cuts);
  cuts.clear();
  std::uint64_t first_part_bytes = part_bytes;
  std::uint64_t first_part_keys = part_keys;
  auto [write_start, write_end] = mvcc::family_range(ColumnFamily::kTxnWrite, region.start_key(), region.end_key());
  if (out.complete) {
    RDB_RETURN_IF_ERROR(walk({ColumnFamily::kTxnWrite}, write_start, region.end_key().empty() ? "" : write_end,
                             [](std::string_view key) -> std::optional<std::string> {
                               auto user = mvcc::user_key_of(ColumnFamily::kTxnWrite, key);
                               return user.is_ok() ? std::optional<std::string>(std::move(*user)) : std::nullopt;
                             }));
  }
  bool tail_small = part_bytes * 2 < limits.bytes && part_keys * 2 < limits.keys &&
                    first_part_bytes * 2 < limits.bytes && first_part_keys * 2 < limits.keys;
  cuts.insert(cuts.end(), first_cuts.begin(), first_cuts.end());
  std::sort(cuts.begin(), cuts.end());
  cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
  if (cuts.size() > static_cast<std::size_t>(limits.max_split_keys)) {
    cuts.resize(static_cast<std::size_t>(limits.max_split_keys));
    out.complete = false;
  }
  bool too_big = out.bytes * 2 > limits.bytes * 3 || out.keys * 2 > limits.keys * 3;
  if (!too_big && out.complete) {
    return out;
  }
  if (out.complete && !cuts.empty() && tail_small) {
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
