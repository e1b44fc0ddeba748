// Plain-TCP sockets for rdb's own framed protocols (PD's TSO endpoint): listening,
// connecting with a timeout, and length-prefixed frames on a blocking socket.
//
// A frame is an 8-byte header — a 4-byte magic naming the protocol and a 4-byte
// payload length, both big-endian — then the payload. A reader checks both before it
// allocates anything, so a peer cannot make it reserve more than `max_payload` bytes.
// Thread safety: stateless functions; a descriptor is used by one reader and one
// writer at a time.
#pragma once

#include <netdb.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/address.h"
#include "common/result.h"

namespace rdb {

struct AddrInfoDeleter {
  void operator()(addrinfo* a) const { ::freeaddrinfo(a); }
};
using AddrInfoList = std::unique_ptr<addrinfo, AddrInfoDeleter>;

// The stream-socket addresses of `hp` ("[v6]" brackets allowed); `passive` for binding.
// UNAVAILABLE naming the host when it does not resolve.
Result<AddrInfoList> resolve_tcp(const HostPort& hp, bool passive);

// A listening socket bound to "host:port" (port 0 picks one); the port actually bound
// goes to *bound_port. INVALID_ARGUMENT for a malformed address, UNAVAILABLE when it
// cannot be bound. `nonblocking` for a socket served from an event loop.
Result<int> tcp_listen(const std::string& addr, std::uint16_t* bound_port, bool nonblocking = false);

// A connected socket to "host:port" with TCP_NODELAY and keep-alive, or why not within
// `timeout`; blocking unless `nonblocking` (for a socket served from an event loop).
Result<int> tcp_connect(const std::string& addr, std::chrono::milliseconds timeout, bool nonblocking = false);

// The header and payload of one frame, ready to send.
std::string encode_frame(std::uint32_t magic, std::string_view payload);

// Reads one frame into *payload. UNAVAILABLE when the connection ended or failed,
// INVALID_ARGUMENT naming what was wrong when the header has another magic or a
// payload longer than `max_payload` (the caller should then close the connection:
// the stream has lost its framing).
Status read_frame(int fd, std::uint32_t magic, std::size_t max_payload, std::string* payload);

}  // namespace rdb
