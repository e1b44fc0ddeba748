// Process-wide logging set-up over spdlog.
//
// Call init_logging() once at the start of main(), before other threads exist.
// Afterwards spdlog's free functions (spdlog::info, ...) are thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "common/status.h"

namespace rdb {

// level: trace, debug, info, warn, error, critical or off.
Status init_logging(std::string_view process_name, std::string_view level);

// A key as a log line can show it: printable bytes as they are, others as \xNN, cut to
// `max` bytes (the rest counted). An empty key is shown as "" (the key space's ends).
std::string printable_key(std::string_view key, std::size_t max = 48);

}  // namespace rdb
