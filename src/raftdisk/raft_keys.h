// The layout of the "raft" column family: the one place that knows it.
//
// Every key of a region starts with 0x01 + the region id (8 bytes, big-endian),
// then a suffix:
//   0x01 + index (8 bytes)  a log entry (raftpb.Entry)
//   0x02                    RaftLocalState: hard state, last index
//   0x03                    RaftApplyState: applied index, truncation, conf state
//   0x04                    the region's metadata (metapb.Region); kept after the
//                           peer is destroyed as a tombstone naming a newer region
//   0x05                    SnapshotIngest: a received snapshot being ingested
//   0x06                    MergeState: the region is a merge's source, prepared
// so one region's keys are contiguous (a destroyed peer's go with one range
// deletion) and a scan of [region_prefix_range) visits every region's state.
// Pure functions; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace rdb::raft_keys {

std::string log_key(std::uint64_t region_id, std::uint64_t index);
std::string local_state_key(std::uint64_t region_id);
std::string apply_state_key(std::uint64_t region_id);
std::string region_state_key(std::uint64_t region_id);
std::string snapshot_ingest_key(std::uint64_t region_id);
std::string merge_state_key(std::uint64_t region_id);
// [start, end) holding every region's keys.
std::pair<std::string, std::string> all_regions_range();
// [start, end) holding every key of one region.
std::pair<std::string, std::string> region_range(std::uint64_t region_id);
// The region a key of this family belongs to (0 for a key too short to say).
std::uint64_t region_id_of(std::string_view key);
bool is_region_state_key(std::string_view key);
bool is_snapshot_ingest_key(std::string_view key);

// The insert-hint group of a key (RocksEngineOptions::raft_insert_hint_group): the
// length of its group's prefix, or 0 for a key in no group. A region's log keys form
// one group (written in increasing order), its local state another and its apply
// state a third (each rewritten again and again), so RocksDB inserts each next to
// the group's previous insert instead of searching its memtable from the top.
std::size_t insert_hint_group(std::string_view key);
// Where a range deletion of a region's log from `index` on starts: after every log key
// below `index`, not after log_key(index), and in no insert-hint group (a range
// deletion must not start inside one: see RocksEngineOptions).
std::string log_range_start(std::uint64_t region_id, std::uint64_t index);

}  // namespace rdb::raft_keys
