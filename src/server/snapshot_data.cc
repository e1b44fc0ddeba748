#include "server/snapshot_data.h"

#include <fmt/format.h>

namespace rdb {
namespace {

constexpr std::uint64_t kChecksumSeed = 1469598103934665603ULL;

std::uint64_t checksum_add(std::uint64_t h, const std::string& s) {
  for (unsigned char c : s) {  // FNV-1a
    h = (h ^ c) * 1099511628211ULL;
  }
  return (h ^ 0xff) * 1099511628211ULL;
}

std::uint64_t checksum_of(const raftsvc::SnapshotData& data) {
  std::uint64_t h = kChecksumSeed;
  for (const auto* list : {&data.raw(), &data.cas()}) {
    for (const auto& kv : *list) {
      h = checksum_add(checksum_add(h, kv.key()), kv.value());
    }
  }
  return h;
}

}  // namespace

const std::string& max_key() {
  static const std::string k(8 * 1024 + 1, '\xff');
  return k;
}

std::string range_end(const metapb::Region& r) {
  return r.end_key().empty() ? max_key() : r.end_key();
}

bool key_in_region(const std::string& key, const metapb::Region& r) {
  return key >= r.start_key() && (r.end_key().empty() || key < r.end_key());
}

Result<std::string> build_snapshot_data(StorageEngine& engine, const metapb::Region& region) {
  raftsvc::SnapshotData data;
  *data.mutable_region() = region;
  for (auto [cf, out] :
       {std::pair{ColumnFamily::kRaw, data.mutable_raw()}, std::pair{ColumnFamily::kCas, data.mutable_cas()}}) {
    RDB_ASSIGN_OR_RETURN(auto pairs, engine.scan_cf(cf, region.start_key(), range_end(region), 0));
    for (auto& kv : pairs) {
      auto* e = out->Add();
      e->set_key(std::move(kv.key));
      e->set_value(std::move(kv.value));
    }
  }
  data.set_checksum(checksum_of(data));
  return data.SerializeAsString();
}

Result<raftsvc::SnapshotData> verify_snapshot_data(const std::string& bytes, std::uint64_t region_id,
                                                   const metapb::Peer& to_peer) {
  raftsvc::SnapshotData data;
  if (!data.ParseFromString(bytes)) {
    return Status::invalid_argument(
        fmt::format("region {}: snapshot data ({} bytes) does not parse", region_id, bytes.size()));
  }
  const metapb::Region& r = data.region();
  if (r.id() != region_id) {
    return Status::invalid_argument(
        fmt::format("snapshot for region {} carries the data of region {}", region_id, r.id()));
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
  for (const auto* list : {&data.raw(), &data.cas()}) {
    for (const auto& kv : *list) {
      if (!key_in_region(kv.key(), r)) {
        return Status::invalid_argument(fmt::format("region {}: snapshot holds a key outside its range", region_id));
      }
    }
  }
  if (checksum_of(data) != data.checksum()) {
    return Status::corruption(fmt::format("region {}: snapshot checksum mismatch", region_id));
  }
  return data;
}

void write_snapshot_data(const raftsvc::SnapshotData& data, WriteBatch& wb) {
  const metapb::Region& region = data.region();
  wb.delete_range(ColumnFamily::kRaw, region.start_key(), range_end(region));
  wb.delete_range(ColumnFamily::kCas, region.start_key(), range_end(region));
  for (const auto& kv : data.raw()) {
    wb.put(ColumnFamily::kRaw, kv.key(), kv.value());
  }
  for (const auto& kv : data.cas()) {
    wb.put(ColumnFamily::kCas, kv.key(), kv.value());
  }
}

}  // namespace rdb
