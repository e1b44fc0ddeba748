// Split checks: how big a region is, and where to cut it when it grew too big.
//
// Size counts keys and values as written (both key spaces, raw and versioned), not
// their compressed size on disk, so the limits mean what users write. A region is
// cut once it holds more than 1.5 times a limit (TiKV's region-max-size is 1.5 times
// its split size): into parts of about the limit each, so that a region just over the
// limit is not cut into one big and one tiny part.
//
// SplitCheckWorker runs the checks on its own thread: a walk over a large region
// reads it all, which must never stall the store's Raft loop.
// Thread safety: check_region_split() is safe from any thread; SplitCheckWorker's
// methods may be called from any thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/result.h"
#include "metapb.pb.h"
#include "storage/storage_engine.h"

namespace rdb {

struct SplitLimits {
  std::uint64_t bytes = 96ULL << 20;  // --region-split-size
  std::uint64_t keys = 960'000;       // --region-split-keys
  int max_split_keys = 64;            // per batch split; what is left is cut at the next check
};

struct SplitCheck {
  std::uint64_t bytes = 0;  // keys + values walked (the whole region unless the walk stopped early)
  std::uint64_t keys = 0;
  bool complete = true;  // false: stopped at max_split_keys cuts
  // Where to cut, ascending, each strictly inside the region; empty: no split needed.
  std::vector<std::string> split_keys;
};

// Walks the region's data as `view` sees it.
Result<SplitCheck> check_region_split(StorageEngine& engine, const EngineSnapshot& view, const metapb::Region& region,
                                      const SplitLimits& limits);

class SplitCheckWorker {
 public:
  using Done = std::function<void(const metapb::Region&, Result<SplitCheck>)>;
  SplitCheckWorker(StorageEngine& engine, SplitLimits limits);
  ~SplitCheckWorker();
  SplitCheckWorker(const SplitCheckWorker&) = delete;
  SplitCheckWorker& operator=(const SplitCheckWorker&) = delete;

  // Checks `region` as the engine holds it now; `done` runs on the worker thread.
  // Dropped (done not called) once stop() began.
  void submit(metapb::Region region, Done done);
  void stop();

 private:
  void run();

  StorageEngine& engine_;
  const SplitLimits limits_;
  std::mutex mu_;
  std::condition_variable cv_;
  struct Task {
    metapb::Region region;
    std::shared_ptr<const EngineSnapshot> view;
    Done done;
  };
  std::deque<Task> tasks_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace rdb
