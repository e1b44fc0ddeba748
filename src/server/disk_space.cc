#include "server/disk_space.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace rdb {

std::uint64_t DiskSpace::available_bytes() {
  if (probe_) {
    return probe_();
  }
  std::lock_guard lock(mu_);
  auto now = std::chrono::steady_clock::now();
  if (now - read_at_ >= std::chrono::milliseconds(100)) {
    struct statvfs fs {};
    if (::statvfs(dir_.c_str(), &fs) == 0) {
      available_ = static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize;
    }
    read_at_ = now;
  }
  return available_;
}

bool DiskSpace::full() {
  return min_free_ > 0 && available_bytes() < min_free_;
}

Result<std::string> DiskSpace::manage_placeholder(std::uint64_t reserve_bytes) {
  const std::string path = placeholder_path();
  std::error_code ec;
  bool exists = std::filesystem::exists(path, ec);
  struct statvfs fs {};
  if (::statvfs(dir_.c_str(), &fs) != 0) {
    return ServerStatus::io_error(fmt::format("cannot read the free space of {}: {}", dir_, std::strerror(errno)));
  }
  std::uint64_t available = static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize;
  if (exists && available < std::max(min_free_, std::uint64_t{1} << 20)) {
    std::filesystem::remove(path, ec);
    return fmt::format(
        "the disk is full ({} bytes free): deleted the reserved-space file {} so the store can start; "
        "free some space",
        available, path);
  }
  if (exists || reserve_bytes == 0) {
    return std::string();
  }
  if (available < 2 * reserve_bytes) {
    return fmt::format("not enough free space ({} bytes) to reserve {} bytes in {}", available, reserve_bytes, path);
  }
  int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
  if (fd < 0) {
    return ServerStatus::io_error(fmt::format("cannot create {}: {}", path, std::strerror(errno)));
  }
  int rc = ::posix_fallocate(fd, 0, static_cast<off_t>(reserve_bytes));
  ::close(fd);
  if (rc != 0) {
    std::filesystem::remove(path, ec);
    return ServerStatus::io_error(
        fmt::format("cannot reserve {} bytes in {}: {}", reserve_bytes, path, std::strerror(rc)));
  }
  return fmt::format("reserved {} bytes in {} (deleted automatically if the disk fills up)", reserve_bytes, path);
}

}  // namespace rdb
