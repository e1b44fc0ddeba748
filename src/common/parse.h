// Strict number parsing for persisted metadata and flags; comma-separated flag lists.
// Thread safety: pure functions.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace rdb {

// The whole of `text` must be a base-10 unsigned 64-bit number; `what` names it in the error.
Result<std::uint64_t> parse_u64(std::string_view text, std::string_view what);

// A duration as operators write it: "10m", "30s", "1h", "250ms", or a plain number of
// seconds; units may be combined ("1h30m"). INVALID_ARGUMENT naming `what` otherwise.
Result<std::chrono::milliseconds> parse_duration(std::string_view text, std::string_view what);

// "a,b,,c" -> {"a", "b", "c"}: the non-empty items of a comma-separated list.
std::vector<std::string> split_list(std::string_view list);

}  // namespace rdb
