#include "common/parse.h"

#include <fmt/format.h>

#include <charconv>

namespace rdb {

Result<std::uint64_t> parse_u64(std::string_view text, std::string_view what) {
  std::uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size()) {
    return ServerStatus::corruption(fmt::format("{} is not a number: '{}'", what, text));
  }
  return v;
}

Result<std::chrono::milliseconds> parse_duration(std::string_view text, std::string_view what) {
  auto bad = [&] {
    return Status::invalid_argument(
        fmt::format("{} is not a duration: '{}' (write e.g. 10m, 30s, 1h30m, 250ms, or seconds)", what, text));
  };
  if (text.empty()) {
    return bad();
  }
  if (auto plain = parse_u64(text, what); plain.is_ok()) {
    if (*plain > std::uint64_t{1} << 40) {
      return bad();
    }
    return std::chrono::milliseconds(*plain * 1000);
  }
  std::uint64_t total = 0;
  std::string_view rest = text;
  while (!rest.empty()) {
    std::uint64_t n = 0;
    auto [ptr, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), n);
    if (ec != std::errc() || ptr == rest.data() || n > std::uint64_t{1} << 40) {
      return bad();
    }
    rest.remove_prefix(static_cast<std::size_t>(ptr - rest.data()));
    std::uint64_t unit = 0;
    if (rest.starts_with("ms")) {
      unit = 1;
      rest.remove_prefix(2);
    } else if (rest.starts_with("s")) {
      unit = 1000;
      rest.remove_prefix(1);
    } else if (rest.starts_with("m")) {
      unit = 60'000;
      rest.remove_prefix(1);
    } else if (rest.starts_with("h")) {
      unit = 3'600'000;
      rest.remove_prefix(1);
    } else {
      return bad();
    }
    total += n * unit;
  }
  return std::chrono::milliseconds(total);
}

std::vector<std::string> split_list(std::string_view list) {
  std::vector<std::string> out;
  while (!list.empty()) {
    auto comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    if (!item.empty()) {
      out.emplace_back(item);
    }
    if (comma == std::string_view::npos) {
      break;
    }
    list.remove_prefix(comma + 1);
  }
  return out;
}

}  // namespace rdb
