// DiskSpace: whether the store's disk is too full to take more writes, and the
// reserved-space file that lets a store restart on a disk that filled up.
//
// full() compares the file system's available bytes with the configured minimum,
// re-reading statvfs at most every 100 ms, so it is cheap on every write. A full
// disk refuses writes at the door (RegionError.disk_full); reads go on.
// The placeholder (like TiKV's): at start, a file of `reserve_bytes` is created
// in the data dir when the disk has room for it twice; when a store starts on a
// full disk it deletes the file, freeing room for RocksDB to open and recover,
// and the operator frees space before it fills again.
// Thread safety: full() may be called from any thread; a probe must be too.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>

#include "common/result.h"

namespace rdb {

class DiskSpace {
 public:
  DiskSpace(std::string data_dir, std::uint64_t min_free_bytes)
      : dir_(std::move(data_dir)), min_free_(min_free_bytes) {}
  // Available bytes come from `probe`, read on every call, instead of statvfs: for tests
  // that fill and free a disk at a chosen moment.
  using Probe = std::function<std::uint64_t()>;
  DiskSpace(std::uint64_t min_free_bytes, Probe probe) : min_free_(min_free_bytes), probe_(std::move(probe)) {}

  bool full();
  std::uint64_t available_bytes();
  std::uint64_t min_free_bytes() const { return min_free_; }

  // Creates the placeholder if missing and there is room; deletes it when the disk
  // is full (so the store can start). Returns what it did, for the log.
  Result<std::string> manage_placeholder(std::uint64_t reserve_bytes);
  std::string placeholder_path() const { return dir_ + "/space_placeholder_file"; }

 private:
  std::string dir_;
  std::uint64_t min_free_;
  Probe probe_;
  std::mutex mu_;
  std::chrono::steady_clock::time_point read_at_{};
  std::uint64_t available_ = ~std::uint64_t{0};
};

}  // namespace rdb
