// Strict number parsing for persisted metadata and flags.
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string_view>

#include "common/result.h"

namespace rdb {

// The whole of `text` must be a base-10 unsigned 64-bit number; `what` names it in the error.
Result<std::uint64_t> parse_u64(std::string_view text, std::string_view what);

}  // namespace rdb
