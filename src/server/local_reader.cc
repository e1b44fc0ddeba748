#include "server/local_reader.h"

#include <mutex>

#include "server/snapshot_data.h"

namespace rdb {

void LocalReader::publish(ReadLease lease) {
  auto entry = std::make_shared<const Entry>(std::move(lease));
  std::unique_lock lock(mu_);
  leases_[entry->lease.region.id()] = std::move(entry);
}

void LocalReader::revoke(std::uint64_t region_id) {
  std::shared_ptr<const Entry> gone;  // freed outside the lock
  std::unique_lock lock(mu_);
  if (auto it = leases_.find(region_id); it != leases_.end()) {
    gone = std::move(it->second);
    leases_.erase(it);
  }
}

std::size_t LocalReader::size() const {
  std::shared_lock lock(mu_);
  return leases_.size();
}

LocalReader::Verdict LocalReader::check(const kvrpc::Context& ctx, std::span<const std::string> keys,
                                        std::uint64_t now_ms, metapb::Region* region) const {
  std::shared_ptr<const Entry> entry;
  {
    std::shared_lock lock(mu_);
    auto it = leases_.find(ctx.region_id());
    if (it == leases_.end()) {
      return Verdict::kAskRaft;
    }
    entry = it->second;
  }
  const ReadLease& l = entry->lease;
  const auto& have = l.region.region_epoch();
  const auto& want = ctx.region_epoch();
  if (now_ms >= l.until_ms || have.conf_ver() != want.conf_ver() || have.version() != want.version() ||
      (ctx.term() != 0 && ctx.term() != l.term)) {
    return Verdict::kAskRaft;
  }
  for (const auto& k : keys) {
    if (!key_in_region(k, l.region)) {
      return Verdict::kAskRaft;
    }
  }
  if (region != nullptr) {
    *region = l.region;
  }
  if (now_ms >= l.renew_from_ms && !entry->renew_asked.load(std::memory_order_relaxed) &&
      !entry->renew_asked.exchange(true, std::memory_order_relaxed)) {
    return Verdict::kServeAndRenew;
  }
  return Verdict::kServe;
}

}  // namespace rdb
