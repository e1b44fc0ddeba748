#include "pd/bound_store.h"

#include <fmt/format.h>

#include "common/parse.h"

namespace rdb {

Result<std::uint64_t> MetaBoundStore::load() {
  RDB_ASSIGN_OR_RETURN(auto text, engine_.meta_get(key_));
  if (!text) {
    return std::uint64_t{0};
  }
  return parse_u64(*text, fmt::format("persisted bound '{}'", key_));
}

Status MetaBoundStore::save(std::uint64_t bound) {
  return engine_.meta_put(key_, std::to_string(bound));
}

}  // namespace rdb
