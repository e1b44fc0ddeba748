#include "pd/bound_store.h"

#include <fmt/format.h>

#include <charconv>

namespace rdb {

Result<std::uint64_t> MetaBoundStore::load() {
  RDB_ASSIGN_OR_RETURN(auto text, engine_.meta_get(key_));
  if (!text) {
    return std::uint64_t{0};
  }
  std::uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(text->data(), text->data() + text->size(), v);
  if (ec != std::errc() || ptr != text->data() + text->size()) {
    return Status::corruption(fmt::format("persisted bound '{}' is not a number: '{}'", key_, *text));
  }
  return v;
}

Status MetaBoundStore::save(std::uint64_t bound) {
  return engine_.meta_put(key_, std::to_string(bound));
}

}  // namespace rdb
