#include "server/snapshot_data.h"

#include <fmt/format.h>

#include <set>

#include "storage/mvcc_codec.h"

namespace rdb {

const std::string& max_key() {
  static const std::string k(8 * 1024 + 1, '\xff');
  return k;
}

std::string range_end(const metapb::Region& r) {
  return r.end_key().empty() ? max_key() : r.end_key();
}

bool key_in_region(std::string_view key, const metapb::Region& r) {
  return key >= r.start_key() && (r.end_key().empty() || key < r.end_key());
}

void delete_region_data(const metapb::Region& r, WriteBatch& wb) {
  for (ColumnFamily cf : mvcc::kDataFamilies) {
    auto [start, end] = mvcc::family_range(cf, r.start_key(), r.end_key());
    wb.delete_range(cf, start, end);
  }
}

bool stored_key_in_region(ColumnFamily cf, std::string_view stored_key, const metapb::Region& r) {
  auto user_key = mvcc::user_key_of(cf, stored_key);
  return user_key.is_ok() && key_in_region(*user_key, r);
}

std::optional<ColumnFamily> snapshot_cf(const std::string& name) {
  for (ColumnFamily cf : mvcc::kDataFamilies) {
    if (name == snapshot_cf_name(cf)) {
      return cf;
    }
  }
  return std::nullopt;
}

const char* snapshot_cf_name(ColumnFamily cf) {
  switch (cf) {
    case ColumnFamily::kCas:
      return "cas";
    case ColumnFamily::kTxnLock:
      return "txn_lock";
    case ColumnFamily::kTxnWrite:
      return "txn_write";
    default:
      return "raw";
  }
}

Result<raftsvc::SnapshotDescriptor> verify_snapshot_descriptor(const std::string& bytes, std::uint64_t region_id,
                                                               const metapb::Peer& to_peer) {
  raftsvc::SnapshotDescriptor d;
  if (!d.ParseFromString(bytes)) {
    return Status::invalid_argument(
        fmt::format("region {}: snapshot descriptor ({} bytes) does not parse", region_id, bytes.size()));
  }
  const metapb::Region& r = d.region();
  if (r.id() != region_id) {
    return Status::invalid_argument(
        fmt::format("snapshot for region {} describes the data of region {}", region_id, r.id()));
  }
  if (!r.end_key().empty() && r.start_key() >= r.end_key()) {
    return Status::invalid_argument(fmt::format("region {}: snapshot range is empty", region_id));
  }
  bool holds_peer = false;
  for (const auto& p : r.peers()) {
    holds_peer = holds_peer || (p.id() == to_peer.id() && p.store_id() == to_peer.store_id());
  }
  if (!holds_peer) {
    return Status::invalid_argument(fmt::format("region {}: snapshot's region does not contain peer {} on store {}",
                                                region_id, to_peer.id(), to_peer.store_id()));
  }
  std::set<ColumnFamily> seen;
  for (const auto& f : d.files()) {
    auto cf = snapshot_cf(f.cf());
    if (!cf) {
      return Status::invalid_argument(
          fmt::format("region {}: snapshot file of unknown key space '{}'", region_id, f.cf().substr(0, 16)));
    }
    if (!seen.insert(*cf).second) {
      return Status::invalid_argument(fmt::format("region {}: two snapshot files for key space {}", region_id, f.cf()));
    }
    if (f.size() == 0 || f.keys() == 0) {
      return Status::invalid_argument(
          fmt::format("region {}: empty snapshot file for key space {}", region_id, f.cf()));
    }
  }
  return d;
}

}  // namespace rdb
