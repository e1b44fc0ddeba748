// Blocking whole-buffer I/O on a connected stream socket: retries short transfers and
// EINTR, never raises SIGPIPE. Stateless; safe from any thread on its own descriptor.
#pragma once

#include <cstddef>
#include <string_view>

namespace rdb {

// Sends all of `data`; false when the peer is gone or the socket failed (errno says why).
bool send_all(int fd, std::string_view data);
// Receives exactly `n` bytes into `data`; false on EOF first or a socket error.
bool recv_all(int fd, char* data, std::size_t n);

}  // namespace rdb
