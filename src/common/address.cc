#include "common/address.h"

#include <fmt/format.h>

#include <charconv>

namespace rdb {

std::string HostPort::to_string() const {
  if (host.find(':') != std::string::npos) {
    return fmt::format("[{}]:{}", host, port);
  }
  return fmt::format("{}:{}", host, port);
}

Result<HostPort> parse_host_port(std::string_view text, bool allow_zero_port) {
  auto colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == text.size()) {
    return Status::invalid_argument(fmt::format("address '{}' is not of the form HOST:PORT", text));
  }
  std::string_view host = text.substr(0, colon);
  std::string_view port_text = text.substr(colon + 1);
  if (host.front() == '[') {
    if (host.back() != ']' || host.size() < 3) {
      return Status::invalid_argument(fmt::format("address '{}' has a malformed [IPv6] host", text));
    }
    host = host.substr(1, host.size() - 2);
  }
  unsigned port = 0;
  auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || ptr != port_text.data() + port_text.size() || port > 65535 ||
      (port == 0 && !allow_zero_port)) {
    return Status::invalid_argument(fmt::format("address '{}' has an invalid port '{}' (1-65535{})", text, port_text,
                                                allow_zero_port ? ", or 0 for any" : ""));
  }
  return HostPort{std::string(host), static_cast<std::uint16_t>(port)};
}

}  // namespace rdb
