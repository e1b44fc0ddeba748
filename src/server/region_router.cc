#include "server/region_router.h"

#include <fmt/format.h>

namespace rdb {

void RegionRouter::set_store_id(std::uint64_t store_id) {
  std::lock_guard lock(mu_);
  store_id_ = store_id;
}

void RegionRouter::set_region(const metapb::Region& region) {
  std::lock_guard lock(mu_);
  region_ = region;
}

std::uint64_t RegionRouter::store_id() const {
  std::lock_guard lock(mu_);
  return store_id_;
}

std::vector<metapb::Region> RegionRouter::regions() const {
  std::lock_guard lock(mu_);
  if (!region_) {
    return {};
  }
  return {*region_};
}

std::optional<kvrpc::RegionError> RegionRouter::check(const kvrpc::Context& ctx,
                                                      const std::vector<std::string_view>& keys) const {
  std::lock_guard lock(mu_);
  kvrpc::RegionError err;
  if (!region_ || ctx.region_id() != region_->id()) {
    err.set_message(fmt::format("region {} is not on store {}", ctx.region_id(), store_id_));
    err.mutable_region_not_found()->set_region_id(ctx.region_id());
    return err;
  }
  if (ctx.has_peer() && ctx.peer().store_id() != 0 && ctx.peer().store_id() != store_id_) {
    err.set_message(fmt::format("request was meant for store {}, this is store {}", ctx.peer().store_id(), store_id_));
    err.mutable_store_not_match()->set_request_store_id(ctx.peer().store_id());
    err.mutable_store_not_match()->set_actual_store_id(store_id_);
    return err;
  }
  const auto& have = region_->region_epoch();
  const auto& want = ctx.region_epoch();
  if (have.conf_ver() != want.conf_ver() || have.version() != want.version()) {
    err.set_message(fmt::format("region {} epoch is (conf_ver {}, version {}), request has ({}, {})", region_->id(),
                                have.conf_ver(), have.version(), want.conf_ver(), want.version()));
    *err.mutable_epoch_not_match()->add_current_regions() = *region_;
    return err;
  }
  for (std::string_view key : keys) {
    bool inside = key >= region_->start_key() && (region_->end_key().empty() || key < region_->end_key());
    if (!inside) {
      err.set_message(fmt::format("key is outside region {}", region_->id()));
      auto* k = err.mutable_key_not_in_region();
      k->set_key(std::string(key));
      k->set_region_id(region_->id());
      k->set_start_key(region_->start_key());
      k->set_end_key(region_->end_key());
      return err;
    }
  }
  return std::nullopt;
}

}  // namespace rdb
