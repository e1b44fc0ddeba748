// SnapManager: a store's region snapshots, as table files in one directory, so
// that neither side of a snapshot ever holds a region's data in memory.
//
// Leader side: snapshot_for() hands Raft the region's latest generated snapshot,
// or starts generating one and answers "temporarily unavailable" (Raft asks again
// on a later heartbeat). Generation runs on the manager's own thread from an
// engine view taken on the Raft thread at the applied index: an iterator streams
// each key space of the region into a table file. The files are then streamed to
// the follower in chunks (stream_snapshot_files) by the transport.
//
// Receiver side: receive() checks an arriving snapshot's descriptor against the
// message and the free disk space and opens a SnapshotReceiver, which writes the
// bytes to files as they come and checks each file's size and CRC32; finish() then
// reads every key back (in the region's range, well-formed versioned records, the
// announced count) before the snapshot is registered. Raft's Ready later takes the
// files (take_received) and the store ingests them.
//
// Files: gen_<region>_<term>_<index>_<cf>.sst (generated) and
// rcv_<region>_<seq>_<cf>.sst (received; .tmp while arriving). At most one
// generated and one received snapshot per region is kept, and at most
// Options::max_received received ones in all (a snapshot Raft never asked for, e.g.
// for a region that is not created, cannot pile up); open() deletes whatever an
// earlier run left behind that nothing refers to.
// Thread safety: all methods may be called from any thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "common/rate_limiter.h"
#include "common/result.h"
#include "metapb.pb.h"
#include "raft/storage.h"
#include "raftsvc.pb.h"
#include "server/disk_space.h"
#include "storage/storage_engine.h"

namespace rdb {

// Table files to ingest, with the key space each belongs to.
using SnapshotFileList = std::vector<std::pair<ColumnFamily, std::string>>;

class SnapManager;

// One snapshot arriving from the network. Destroying it before finish() succeeded
// deletes what was written.
class SnapshotReceiver {
 public:
  ~SnapshotReceiver();
  SnapshotReceiver(const SnapshotReceiver&) = delete;
  SnapshotReceiver& operator=(const SnapshotReceiver&) = delete;

  // The next bytes of the files, in order. INVALID_ARGUMENT past the announced size
  // or CORRUPTION when a file's CRC32 does not match; IO_ERROR when the disk fails.
  Status write(std::string_view bytes);
  // Every byte arrived: checks the keys and registers the snapshot; returns the
  // message to deliver to the store. UNAVAILABLE when bytes are missing.
  Result<raftsvc::RaftMessage> finish();

 private:
  friend class SnapManager;
  struct File {
    ColumnFamily cf;
    std::string path;  // final name; written as path + ".tmp"
    std::uint64_t size;
    std::uint32_t crc;
    std::uint64_t keys;
  };
  SnapshotReceiver(SnapManager& m, raftsvc::RaftMessage msg, raftsvc::SnapshotDescriptor d, std::vector<File> files);
  Status open_next();
  Status close_current();

  SnapManager& m_;
  raftsvc::RaftMessage msg_;
  raftsvc::SnapshotDescriptor descriptor_;
  std::vector<File> files_;
  std::size_t current_ = 0;
  int fd_ = -1;
  std::uint64_t total_bytes_ = 0;
  std::uint64_t written_ = 0;  // of the current file
  std::uint32_t crc_ = 0;
  bool registered_ = false;
};

class SnapManager {
 public:
  struct Options {
    std::string dir;
    std::shared_ptr<DiskSpace> disk;  // optional: refuse snapshots that would fill it
    std::size_t max_receiving = 4;    // snapshots arriving at once
    std::size_t max_received = 64;    // verified snapshots kept for Raft (oldest dropped beyond)
  };
  SnapManager(StorageEngine& engine, Options options);
  ~SnapManager();
  SnapManager(const SnapManager&) = delete;
  SnapManager& operator=(const SnapManager&) = delete;

  // Creates the directory and deletes every file in it but `keep`; starts the generator.
  Status open(const std::set<std::string>& keep);
  // Stops the generator (a generation in progress finishes first).
  void stop();
  const std::string& dir() const { return options_.dir; }

  // ---- leader side
  struct Source {
    metapb::Region region;
    raft::SnapshotMetadata meta;
    std::shared_ptr<const EngineSnapshot> view;
  };
  // The region's generated snapshot if its index is at least `min_index` and it was
  // made at `epoch` (a snapshot from before a membership change may not hold the peer
  // it is for); otherwise starts one from make() (called here, on the caller's
  // thread, so the view is taken at the caller's applied index) and returns
  // snapshot_temporarily_unavailable().
  Result<raft::Snapshot> snapshot_for(std::uint64_t region_id, std::uint64_t min_index,
                                      const metapb::RegionEpoch& epoch, const std::function<Source()>& make);
  // The files of the generated snapshot `meta` of a region, to stream to a follower;
  // nullopt when it was replaced meanwhile.
  std::optional<std::vector<std::string>> files_to_send(std::uint64_t region_id, const raft::SnapshotMetadata& meta);

  // ---- receiver side
  // Checks the first chunk of an arriving snapshot: INVALID_ARGUMENT for a bad
  // descriptor or size, BUSY when too many arrive at once or the disk
  // has no room for it.
  Result<std::unique_ptr<SnapshotReceiver>> receive(const raftsvc::RaftMessage& msg, std::uint64_t total_bytes);
  // Whether a verified snapshot matching `meta` arrived for the region.
  bool has_received(std::uint64_t region_id, const raft::SnapshotMetadata& meta) const;
  // Hands the caller the files of that snapshot (it deletes them once ingested).
  std::optional<SnapshotFileList> take_received(std::uint64_t region_id, const raft::SnapshotMetadata& meta);
  // Deletes the region's snapshots (its peer is gone).
  void forget(std::uint64_t region_id);

  static void remove_files(const SnapshotFileList& files);

 private:
  friend class SnapshotReceiver;
  struct Generated {
    raft::SnapshotMetadata meta;
    raftsvc::SnapshotDescriptor descriptor;
    std::vector<std::string> paths;
  };
  struct Received {
    raft::SnapshotMetadata meta;
    SnapshotFileList files;
    std::uint64_t seq = 0;  // arrival order, to drop the oldest
  };
  struct Job {
    std::uint64_t region_id = 0;
    Source source;
  };

  void run_generator();
  Result<Generated> generate(std::uint64_t region_id, const Source& source);
  void register_received(std::uint64_t region_id, Received r);
  void receive_ended(std::uint64_t total_bytes);

  StorageEngine& engine_;
  const Options options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> jobs_;
  std::set<std::uint64_t> generating_;
  std::set<std::uint64_t> discard_;  // generating for a region that was forgotten meanwhile
  std::map<std::uint64_t, Generated> generated_;
  std::map<std::uint64_t, std::chrono::steady_clock::time_point> failed_at_;
  std::map<std::uint64_t, Received> received_;
  std::size_t receiving_ = 0;
  std::uint64_t receiving_bytes_ = 0;  // announced by the snapshots arriving now
  std::uint64_t receive_seq_ = 0;
  bool stopping_ = false;
  std::thread generator_;
};

// The CRC32 a SnapshotFile carries, of `bytes`.
std::uint32_t snapshot_crc32(std::string_view bytes);

// Streams `paths` (in order) to `sink` in chunks of at most `chunk_bytes`, each one
// paced by `limiter` when given. Stops at the first chunk `sink` refuses (false).
Status stream_snapshot_files(const std::vector<std::string>& paths, std::size_t chunk_bytes, RateLimiter* limiter,
                             const std::function<bool(std::string_view)>& sink);

}  // namespace rdb
