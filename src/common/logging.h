// Process-wide logging set-up over spdlog.
//
// Call init_logging() once at the start of main(), before other threads exist.
// Afterwards spdlog's free functions (spdlog::info, ...) are thread-safe.
#pragma once

#include <string_view>

#include "common/status.h"

namespace rdb {

// level: trace, debug, info, warn, error, critical or off.
Status init_logging(std::string_view process_name, std::string_view level);

}  // namespace rdb
