// The data part of a region snapshot: every raw and versioned key of the
// region's range, the region's metadata and a checksum over all of it.
//
// build_snapshot_data() reads it from the engine; verify_snapshot_data() is
// what a receiver runs on bytes from the network before anything is stepped
// or deleted: they must parse, the checksum must match, and the region must be
// the one the message names, contain the receiving peer and cover a valid range.
// write_snapshot_data() replaces the region's range with the snapshot's keys.
// Free functions; thread-safe as far as the engine is.
#pragma once

#include <cstdint>
#include <string>

#include "common/result.h"
#include "metapb.pb.h"
#include "raftsvc.pb.h"
#include "storage/storage_engine.h"

namespace rdb {

// Above every valid key (keys are at most 8 KiB): the end of an unbounded range.
const std::string& max_key();
// The exclusive end of a region's range, max_key() for an unbounded one.
std::string range_end(const metapb::Region& r);
bool key_in_region(const std::string& key, const metapb::Region& r);

Result<std::string> build_snapshot_data(StorageEngine& engine, const metapb::Region& region);

// Parses `bytes` and checks them against the receiver: INVALID_ARGUMENT (data that
// does not parse or whose region is not `region_id`, does not hold `to_peer`, or has
// an empty range) or CORRUPTION (checksum mismatch), naming what was wrong.
Result<raftsvc::SnapshotData> verify_snapshot_data(const std::string& bytes, std::uint64_t region_id,
                                                   const metapb::Peer& to_peer);

// Deletes the region's range in both key spaces and puts the snapshot's keys.
void write_snapshot_data(const raftsvc::SnapshotData& data, WriteBatch& wb);

}  // namespace rdb
