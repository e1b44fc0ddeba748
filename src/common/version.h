// The rdb release version, reported by --version, /status and GetMembers.
#pragma once

#include <string_view>

namespace rdb {
inline constexpr std::string_view kRdbVersion = "0.1.0";
}  // namespace rdb
