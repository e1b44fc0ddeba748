#include "server/snapshot_data.h"

#include <fmt/format.h>

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

std::optional<ColumnFamily> snapshot_cf(const std::string& name) {
  if (name == "raw") {
    return ColumnFamily::kRaw;
  }
  if (name == "cas") {
    return ColumnFamily::kCas;
  }
  return std::nullopt;
}

const char* snapshot_cf_name(ColumnFamily cf) {
  return cf == ColumnFamily::kCas ? "cas" : "raw";
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
  bool seen[2] = {false, false};
  for (const auto& f : d.files()) {
    auto cf = snapshot_cf(f.cf());
    if (!cf) {
      return Status::invalid_argument(
          fmt::format("region {}: snapshot file of unknown key space '{}'", region_id, f.cf().substr(0, 16)));
    }
    bool& s = seen[*cf == ColumnFamily::kCas ? 1 : 0];
    if (s) {
      return Status::invalid_argument(fmt::format("region {}: two snapshot files for key space {}", region_id, f.cf()));
    }
    s = true;
    if (f.size() == 0 || f.keys() == 0) {
      return Status::invalid_argument(
          fmt::format("region {}: empty snapshot file for key space {}", region_id, f.cf()));
    }
  }
  return d;
}

}  // namespace rdb
