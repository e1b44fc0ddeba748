// host:port parsing for command-line flags.
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace rdb {

struct HostPort {
  std::string host;
  std::uint16_t port = 0;
  std::string to_string() const;
};

// Accepts "host:port" and "[v6]:port"; port 0 is allowed only when allow_zero_port.
Result<HostPort> parse_host_port(std::string_view text, bool allow_zero_port = false);

}  // namespace rdb
