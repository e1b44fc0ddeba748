#include "common/logging.h"

#include <fmt/format.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace rdb {

Status init_logging(std::string_view process_name, std::string_view level) {
  auto parsed = spdlog::level::from_str(std::string(level));
  if (parsed == spdlog::level::off && level != "off") {
    return Status::invalid_argument(
        fmt::format("unknown log level '{}' (use trace, debug, info, warn, error, critical or off)", level));
  }
  auto logger = spdlog::stderr_color_mt(std::string(process_name));
  logger->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%n] [%^%l%$] %v");
  logger->set_level(parsed);
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(logger);
  return Status::ok();
}

std::string printable_key(std::string_view key, std::size_t max) {
  if (key.empty()) {
    return "\"\"";
  }
  std::string out;
  for (std::size_t i = 0; i < key.size() && i < max; ++i) {
    auto c = static_cast<unsigned char>(key[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      out += fmt::format("\\x{:02x}", c);
    }
  }
  if (key.size() > max) {
    out += fmt::format("...(+{} bytes)", key.size() - max);
  }
  return out;
}

}  // namespace rdb
