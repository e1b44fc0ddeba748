// RegionRouter: decides whether this store can serve a request's region.
//
// Holds the regions this store serves (in this release at most one peer per
// store, covering a key range) and checks each request's Context and keys
// against them, producing the structured RegionError a client needs to
// re-route: RegionNotFound, EpochNotMatch (with the current region) or
// KeyNotInRegion. Thread safety: all methods are internally synchronised;
// set_region() may run while requests are being checked.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string_view>
#include <vector>

#include "kvrpc.pb.h"

namespace rdb {

class RegionRouter {
 public:
  explicit RegionRouter(std::uint64_t store_id) : store_id_(store_id) {}

  void set_store_id(std::uint64_t store_id);
  void set_region(const metapb::Region& region);
  std::uint64_t store_id() const;
  std::vector<metapb::Region> regions() const;

  // nullopt when the request may be served.
  std::optional<kvrpc::RegionError> check(const kvrpc::Context& ctx, const std::vector<std::string_view>& keys) const;

 private:
  mutable std::mutex mu_;
  std::uint64_t store_id_;
  std::optional<metapb::Region> region_;
};

}  // namespace rdb
