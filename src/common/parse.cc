#include "common/parse.h"

#include <fmt/format.h>

#include <charconv>

namespace rdb {

Result<std::uint64_t> parse_u64(std::string_view text, std::string_view what) {
  std::uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size()) {
    return Status::corruption(fmt::format("{} is not a number: '{}'", what, text));
  }
  return v;
}

}  // namespace rdb
