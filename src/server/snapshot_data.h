// What a region snapshot says about itself, and the checks a receiver runs on it.
//
// A snapshot's data travels as table files (see snap_manager.h); MsgSnap carries
// only a SnapshotDescriptor: the region as of the snapshot's index and, for each
// file, its key space, size, CRC32 and key count. verify_snapshot_descriptor() is
// what a receiver runs on bytes from the network before anything is stepped or
// deleted: they must parse, name the region the message names, hold the receiving
// peer, cover a valid range and list sane files.
// Free functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/result.h"
#include "metapb.pb.h"
#include "raftsvc.pb.h"
#include "storage/write_batch.h"

namespace rdb {

// Above every valid key (keys are at most 8 KiB): the end of an unbounded range.
const std::string& max_key();
// The exclusive end of a region's range, max_key() for an unbounded one.
std::string range_end(const metapb::Region& r);
bool key_in_region(std::string_view key, const metapb::Region& r);
// Deletes every key of the region's range in each data family (mvcc::kDataFamilies).
void delete_region_data(const metapb::Region& r, WriteBatch& wb);
// Whether a key stored in data family `cf` belongs to the region's range.
bool stored_key_in_region(ColumnFamily cf, std::string_view stored_key, const metapb::Region& r);

// The key spaces a snapshot carries, by their names in SnapshotFile.cf.
std::optional<ColumnFamily> snapshot_cf(const std::string& name);
const char* snapshot_cf_name(ColumnFamily cf);

// Parses `bytes` and checks them against the receiver: INVALID_ARGUMENT naming what
// was wrong (does not parse; region is not `region_id`, does not hold `to_peer`, or
// has an empty range; a file of an unknown or repeated key space, or empty).
Result<raftsvc::SnapshotDescriptor> verify_snapshot_descriptor(const std::string& bytes, std::uint64_t region_id,
                                                               const metapb::Peer& to_peer);

}  // namespace rdb
