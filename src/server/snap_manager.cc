#include "server/snap_manager.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "server/snapshot_data.h"
#include "storage/mvcc_codec.h"
#include "storage/versioned_codec.h"
#include "txnpb.pb.h"

namespace rdb {
namespace {

namespace fs = std::filesystem;

// A generation that failed is not retried sooner than this (Raft asks on every heartbeat).
constexpr auto kRetryGenerationAfter = std::chrono::seconds(1);

std::uint32_t crc_update(std::uint32_t crc, const char* data, std::size_t n) {
  while (n > 0) {
    auto step = static_cast<uInt>(std::min<std::size_t>(n, 1U << 30));
    crc = static_cast<std::uint32_t>(::crc32(crc, reinterpret_cast<const Bytef*>(data), step));
    data += step;
    n -= step;
  }
  return crc;
}

Result<std::uint32_t> file_crc(const std::string& path) {
  std::uint32_t crc = static_cast<std::uint32_t>(::crc32(0, nullptr, 0));
  Status s = stream_snapshot_files({path}, 1 << 20, nullptr, [&crc](std::string_view chunk) {
    crc = crc_update(crc, chunk.data(), chunk.size());
    return true;
  });
  RDB_RETURN_IF_ERROR(s);
  return crc;
}

bool same_position(const raft::SnapshotMetadata& a, const raft::SnapshotMetadata& b) {
  return a.index() == b.index() && a.term() == b.term();
}

void remove_paths(const std::vector<std::string>& paths) {
  for (const auto& p : paths) {
    std::error_code ec;
    fs::remove(p, ec);
  }
}

}  // namespace

std::uint32_t snapshot_crc32(std::string_view bytes) {
  return crc_update(static_cast<std::uint32_t>(::crc32(0, nullptr, 0)), bytes.data(), bytes.size());
}

Status stream_snapshot_files(const std::vector<std::string>& paths, std::size_t chunk_bytes, RateLimiter* limiter,
                             const std::function<bool(std::string_view)>& sink) {
  std::string buf(chunk_bytes, '\0');
  for (const auto& path : paths) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      return ServerStatus::io_error(fmt::format("cannot open snapshot file '{}': {}", path, std::strerror(errno)));
    }
    for (;;) {
      ssize_t n = ::read(fd, buf.data(), buf.size());
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n < 0) {
        Status s =
            ServerStatus::io_error(fmt::format("cannot read snapshot file '{}': {}", path, std::strerror(errno)));
        ::close(fd);
        return s;
      }
      if (n == 0) {
        break;
      }
      if ((limiter != nullptr && !limiter->acquire(static_cast<std::uint64_t>(n))) ||
          !sink(std::string_view(buf.data(), static_cast<std::size_t>(n)))) {
        ::close(fd);
        return Status::unavailable("the snapshot stream was stopped");
      }
    }
    ::close(fd);
  }
  return Status::ok();
}

// ---------------------------------------------------------------------------- manager

SnapManager::SnapManager(StorageEngine& engine, Options options) : engine_(engine), options_(std::move(options)) {}

SnapManager::~SnapManager() {
  stop();
}

Status SnapManager::open(const std::set<std::string>& keep) {
  std::error_code ec;
  fs::create_directories(options_.dir, ec);
  if (ec) {
    return ServerStatus::io_error(fmt::format("cannot create snapshot dir '{}': {}", options_.dir, ec.message()));
  }
  std::size_t removed = 0;
  for (const auto& entry : fs::directory_iterator(options_.dir, ec)) {
    if (keep.count(entry.path().string()) == 0) {
      fs::remove(entry.path(), ec);
      ++removed;
    }
  }
  if (removed > 0) {
    spdlog::info("removed {} snapshot files left by an earlier run", removed);
  }
  std::lock_guard lock(mu_);
  stopping_ = false;
  if (!generator_.joinable()) {
    generator_ = std::thread([this] { run_generator(); });
  }
  return Status::ok();
}

void SnapManager::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    jobs_.clear();
  }
  cv_.notify_all();
  if (generator_.joinable()) {
    generator_.join();
  }
}

Result<raft::Snapshot> SnapManager::snapshot_for(std::uint64_t region_id, std::uint64_t min_index,
                                                 const metapb::RegionEpoch& epoch,
                                                 const std::function<Source()>& make) {
  std::unique_lock lock(mu_);
  auto it = generated_.find(region_id);
  if (it != generated_.end() && it->second.meta.index() >= min_index &&
      it->second.descriptor.region().region_epoch().conf_ver() == epoch.conf_ver() &&
      it->second.descriptor.region().region_epoch().version() == epoch.version()) {
    raft::Snapshot snap;
    *snap.mutable_metadata() = it->second.meta;
    snap.set_data(it->second.descriptor.SerializeAsString());
    return snap;
  }
  auto failed = failed_at_.find(region_id);
  bool backing_off = failed != failed_at_.end() && std::chrono::steady_clock::now() < failed->second;
  if (generating_.count(region_id) == 0 && !backing_off && !stopping_ && generator_.joinable()) {
    generating_.insert(region_id);
    lock.unlock();
    Source source = make();
    lock.lock();
    jobs_.push_back({region_id, std::move(source)});
    cv_.notify_all();
  }
  return raft::snapshot_temporarily_unavailable();
}

std::optional<std::vector<std::string>> SnapManager::files_to_send(std::uint64_t region_id,
                                                                   const raft::SnapshotMetadata& meta) {
  std::lock_guard lock(mu_);
  auto it = generated_.find(region_id);
  if (it == generated_.end() || !same_position(it->second.meta, meta)) {
    return std::nullopt;
  }
  return it->second.paths;
}

void SnapManager::run_generator() {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
    if (stopping_) {
      return;
    }
    Job job = std::move(jobs_.front());
    jobs_.pop_front();
    lock.unlock();
    auto started = std::chrono::steady_clock::now();
    auto result = generate(job.region_id, job.source);
    job.source.view.reset();  // let the engine drop what only this view pinned
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    lock.lock();
    generating_.erase(job.region_id);
    if (discard_.erase(job.region_id) > 0) {
      if (result.is_ok()) {
        remove_paths(result->paths);
      }
      continue;
    }
    if (!result.is_ok()) {
      spdlog::error("region {}: cannot generate a snapshot: {}", job.region_id, result.status().to_string());
      failed_at_[job.region_id] = std::chrono::steady_clock::now() + kRetryGenerationAfter;
      continue;
    }
    failed_at_.erase(job.region_id);
    Generated g = std::move(result).value();
    std::uint64_t bytes = 0;
    std::uint64_t keys = 0;
    for (const auto& f : g.descriptor.files()) {
      bytes += f.size();
      keys += f.keys();
    }
    spdlog::info("region {}: generated a snapshot at index {}: {} keys, {} bytes in {} files, {:.2f} s", job.region_id,
                 g.meta.index(), keys, bytes, g.paths.size(), secs);
    if (auto old = generated_.find(job.region_id); old != generated_.end()) {
      remove_paths(old->second.paths);  // a sender still streaming it keeps its open file
    }
    generated_[job.region_id] = std::move(g);
  }
}

Result<SnapManager::Generated> SnapManager::generate(std::uint64_t region_id, const Source& source) {
  Generated g;
  g.meta = source.meta;
  *g.descriptor.mutable_region() = source.region;
  for (ColumnFamily cf : mvcc::kDataFamilies) {
    std::string path = fmt::format("{}/gen_{}_{}_{}_{}.sst", options_.dir, region_id, source.meta.term(),
                                   source.meta.index(), snapshot_cf_name(cf));
    auto [start, end] = mvcc::family_range(cf, source.region.start_key(), source.region.end_key());
    auto info = engine_.export_sst(*source.view, cf, start, end, path);
    if (!info.is_ok()) {
      remove_paths(g.paths);
      std::error_code ec;
      fs::remove(path, ec);
      return info.status();
    }
    if (info->keys == 0) {
      continue;
    }
    g.paths.push_back(path);
    auto crc = file_crc(path);
    if (!crc.is_ok()) {
      remove_paths(g.paths);
      return crc.status();
    }
    auto* f = g.descriptor.add_files();
    f->set_cf(snapshot_cf_name(cf));
    f->set_size(info->bytes);
    f->set_crc32(*crc);
    f->set_keys(info->keys);
  }
  return g;
}

Result<std::unique_ptr<SnapshotReceiver>> SnapManager::receive(const raftsvc::RaftMessage& msg,
                                                               std::uint64_t total_bytes) {
  const std::uint64_t region_id = msg.region_id();
  const auto& snap = msg.message().snapshot();
  if (snap.metadata().index() == 0) {
    return Status::invalid_argument(fmt::format("region {}: snapshot without an index", region_id));
  }
  RDB_ASSIGN_OR_RETURN(auto d, verify_snapshot_descriptor(snap.data(), region_id, msg.to_peer()));
  std::uint64_t sum = 0;
  for (const auto& f : d.files()) {
    if (f.size() > total_bytes - sum) {
      return Status::invalid_argument(
          fmt::format("region {}: snapshot files add up to more than the {} bytes announced", region_id, total_bytes));
    }
    sum += f.size();
  }
  if (sum != total_bytes) {
    return Status::invalid_argument(
        fmt::format("region {}: snapshot files add up to {} bytes, {} announced", region_id, sum, total_bytes));
  }
  std::uint64_t seq = 0;
  {
    std::lock_guard lock(mu_);
    if (receiving_ >= options_.max_receiving) {
      return ServerStatus::busy(fmt::format("region {}: {} snapshots are already arriving", region_id, receiving_));
    }
    if (options_.disk) {
      // Snapshots still arriving will take their room too.
      std::uint64_t available = options_.disk->available_bytes();
      std::uint64_t reserve = options_.disk->min_free_bytes() + receiving_bytes_;
      if (available < reserve || available - reserve < total_bytes) {
        return ServerStatus::busy(
            fmt::format("region {}: no room for a snapshot of {} bytes ({} bytes free, {} kept free, {} arriving)",
                        region_id, total_bytes, available, options_.disk->min_free_bytes(), receiving_bytes_));
      }
    }
    ++receiving_;
    receiving_bytes_ += total_bytes;
    seq = ++receive_seq_;
  }
  std::vector<SnapshotReceiver::File> files;
  for (const auto& f : d.files()) {
    ColumnFamily cf = *snapshot_cf(f.cf());
    files.push_back(
        {cf, fmt::format("{}/rcv_{}_{}_{}.sst", options_.dir, region_id, seq, f.cf()), f.size(), f.crc32(), f.keys()});
  }
  return std::unique_ptr<SnapshotReceiver>(new SnapshotReceiver(*this, msg, std::move(d), std::move(files)));
}

void SnapManager::receive_ended(std::uint64_t total_bytes) {
  std::lock_guard lock(mu_);
  --receiving_;
  receiving_bytes_ -= total_bytes;
}

void SnapManager::register_received(std::uint64_t region_id, Received r) {
  std::lock_guard lock(mu_);
  if (auto old = received_.find(region_id); old != received_.end()) {
    remove_files(old->second.files);
    received_.erase(old);
  }
  while (!received_.empty() && received_.size() >= options_.max_received) {
    auto oldest = std::min_element(received_.begin(), received_.end(),
                                   [](const auto& a, const auto& b) { return a.second.seq < b.second.seq; });
    spdlog::warn("region {}: dropping a received snapshot Raft never took ({} are kept at most)", oldest->first,
                 options_.max_received);
    remove_files(oldest->second.files);
    received_.erase(oldest);
  }
  r.seq = ++receive_seq_;
  received_[region_id] = std::move(r);
}

bool SnapManager::has_received(std::uint64_t region_id, const raft::SnapshotMetadata& meta) const {
  std::lock_guard lock(mu_);
  auto it = received_.find(region_id);
  return it != received_.end() && same_position(it->second.meta, meta);
}

std::optional<SnapshotFileList> SnapManager::take_received(std::uint64_t region_id,
                                                           const raft::SnapshotMetadata& meta) {
  std::lock_guard lock(mu_);
  auto it = received_.find(region_id);
  if (it == received_.end() || !same_position(it->second.meta, meta)) {
    return std::nullopt;
  }
  SnapshotFileList files = std::move(it->second.files);
  received_.erase(it);
  return files;
}

void SnapManager::forget(std::uint64_t region_id) {
  std::lock_guard lock(mu_);
  if (generating_.count(region_id) != 0) {
    discard_.insert(region_id);
  }
  if (auto it = generated_.find(region_id); it != generated_.end()) {
    remove_paths(it->second.paths);
    generated_.erase(it);
  }
  if (auto it = received_.find(region_id); it != received_.end()) {
    remove_files(it->second.files);
    received_.erase(it);
  }
}

void SnapManager::remove_files(const SnapshotFileList& files) {
  for (const auto& [cf, path] : files) {
    std::error_code ec;
    fs::remove(path, ec);
  }
}

// ---------------------------------------------------------------------------- receiver

SnapshotReceiver::SnapshotReceiver(SnapManager& m, raftsvc::RaftMessage msg, raftsvc::SnapshotDescriptor d,
                                   std::vector<File> files)
    : m_(m), msg_(std::move(msg)), descriptor_(std::move(d)), files_(std::move(files)) {
  for (const auto& f : files_) {
    total_bytes_ += f.size;
  }
}

SnapshotReceiver::~SnapshotReceiver() {
  if (fd_ >= 0) {
    ::close(fd_);
  }
  if (!registered_) {
    for (const auto& f : files_) {
      std::error_code ec;
      fs::remove(f.path + ".tmp", ec);
      fs::remove(f.path, ec);
    }
  }
  m_.receive_ended(total_bytes_);
}

Status SnapshotReceiver::open_next() {
  const File& f = files_[current_];
  fd_ = ::open((f.path + ".tmp").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    return ServerStatus::io_error(
        fmt::format("cannot create snapshot file '{}.tmp': {}", f.path, std::strerror(errno)));
  }
  written_ = 0;
  crc_ = static_cast<std::uint32_t>(::crc32(0, nullptr, 0));
  return Status::ok();
}

Status SnapshotReceiver::close_current() {
  const File& f = files_[current_];
  int fd = fd_;
  fd_ = -1;
  if (::fdatasync(fd) != 0) {
    Status s = ServerStatus::io_error(fmt::format("cannot sync snapshot file '{}': {}", f.path, std::strerror(errno)));
    ::close(fd);
    return s;
  }
  ::close(fd);
  if (crc_ != f.crc) {
    return ServerStatus::corruption(fmt::format("region {}: snapshot file for key space {} fails its CRC32 check",
                                                msg_.region_id(), snapshot_cf_name(f.cf)));
  }
  std::error_code ec;
  fs::rename(f.path + ".tmp", f.path, ec);
  if (ec) {
    return ServerStatus::io_error(fmt::format("cannot rename snapshot file '{}.tmp': {}", f.path, ec.message()));
  }
  ++current_;
  return Status::ok();
}

Status SnapshotReceiver::write(std::string_view bytes) {
  while (!bytes.empty()) {
    if (current_ >= files_.size()) {
      return Status::invalid_argument(
          fmt::format("region {}: the snapshot stream carries more bytes than announced", msg_.region_id()));
    }
    if (fd_ < 0) {
      RDB_RETURN_IF_ERROR(open_next());
    }
    const File& f = files_[current_];
    std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(bytes.size(), f.size - written_));
    const char* p = bytes.data();
    std::size_t left = n;
    while (left > 0) {
      ssize_t w = ::write(fd_, p, left);
      if (w < 0 && errno == EINTR) {
        continue;
      }
      if (w < 0) {
        return ServerStatus::io_error(
            fmt::format("cannot write snapshot file '{}.tmp': {}", f.path, std::strerror(errno)));
      }
      p += w;
      left -= static_cast<std::size_t>(w);
    }
    crc_ = crc_update(crc_, bytes.data(), n);
    written_ += n;
    bytes.remove_prefix(n);
    if (written_ == f.size) {
      RDB_RETURN_IF_ERROR(close_current());
    }
  }
  return Status::ok();
}

Result<raftsvc::RaftMessage> SnapshotReceiver::finish() {
  if (current_ < files_.size()) {
    return Status::unavailable(fmt::format("region {}: the snapshot stream ended before its {} files arrived",
                                           msg_.region_id(), files_.size()));
  }
  const metapb::Region& region = descriptor_.region();
  for (const auto& f : files_) {
    std::uint64_t keys = 0;
    Status s = m_.engine_.read_sst(f.path, [&](std::string_view key, std::string_view value) -> Status {
      if (!stored_key_in_region(f.cf, key, region)) {
        return Status::invalid_argument(
            fmt::format("region {}: the snapshot holds a key outside the region's range", region.id()));
      }
      if (f.cf == ColumnFamily::kCas) {
        RDB_RETURN_IF_ERROR(decode_versioned(value).status());
      }
      if (f.cf == ColumnFamily::kTxnLock &&
          !txnpb::LockRecord().ParseFromArray(value.data(), static_cast<int>(value.size()))) {
        return Status::invalid_argument(
            fmt::format("region {}: the snapshot holds a lock that does not parse", region.id()));
      }
      if (f.cf == ColumnFamily::kTxnWrite &&
          !txnpb::WriteRecord().ParseFromArray(value.data(), static_cast<int>(value.size()))) {
        return Status::invalid_argument(
            fmt::format("region {}: the snapshot holds a write record that does not parse", region.id()));
      }
      ++keys;
      return Status::ok();
    });
    RDB_RETURN_IF_ERROR(s);
    if (keys != f.keys) {
      return Status::invalid_argument(
          fmt::format("region {}: snapshot file for key space {} holds {} keys, {} announced", region.id(),
                      snapshot_cf_name(f.cf), keys, f.keys));
    }
  }
  SnapManager::Received r;
  r.meta = msg_.message().snapshot().metadata();
  for (const auto& f : files_) {
    r.files.emplace_back(f.cf, f.path);
  }
  m_.register_received(msg_.region_id(), std::move(r));
  registered_ = true;
  return std::move(msg_);
}

}  // namespace rdb
