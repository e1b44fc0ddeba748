// http_get: one small HTTP/1.0 GET to a status port (another process's /metrics), for PD's
// dashboard. Not a general HTTP client: no TLS, no redirects, no chunked encoding.
//
// The whole exchange is bounded by `timeout` (connect, send, receive) and the body by
// `max_bytes` (a larger answer is an error, not a truncated body). Returns the body of a 200
// answer; anything else is UNAVAILABLE naming the address and what went wrong.
// Thread safety: a free function; call from any thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

#include "common/address.h"
#include "common/result.h"

namespace rdb {

Result<std::string> http_get(const HostPort& addr, const std::string& path, std::chrono::milliseconds timeout,
                             std::size_t max_bytes = 4 << 20);

}  // namespace rdb
