#include "common/tcp_socket.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "common/address.h"
#include "common/socket_io.h"

namespace rdb {
namespace {

Status errno_status(const std::string& what) {
  return Status::unavailable(fmt::format("{}: {}", what, std::strerror(errno)));
}

void put_u32(char* out, std::uint32_t v) {
  out[0] = static_cast<char>(v >> 24);
  out[1] = static_cast<char>(v >> 16);
  out[2] = static_cast<char>(v >> 8);
  out[3] = static_cast<char>(v);
}

std::uint32_t get_u32(const char* in) {
  auto b = [&](int i) { return static_cast<std::uint32_t>(static_cast<unsigned char>(in[i])); };
  return (b(0) << 24) | (b(1) << 16) | (b(2) << 8) | b(3);
}

}  // namespace

Result<AddrInfoList> resolve_tcp(const HostPort& hp, bool passive) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = passive ? AI_PASSIVE : 0;
  std::string host = hp.host;
  if (host.size() > 1 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  addrinfo* found = nullptr;
  std::string port = std::to_string(hp.port);
  if (int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    return Status::unavailable(fmt::format("cannot resolve '{}': {}", hp.host, ::gai_strerror(rc)));
  }
  return AddrInfoList(found);
}

Result<int> tcp_listen(const std::string& addr, std::uint16_t* bound_port, bool nonblocking) {
  auto hp = parse_host_port(addr, true);
  if (!hp.is_ok()) {
    return Status::invalid_argument(fmt::format("'{}': {}", addr, hp.status().message()));
  }
  RDB_ASSIGN_OR_RETURN(auto list, resolve_tcp(*hp, true));
  Status last = Status::unavailable(fmt::format("cannot listen on {}", addr));
  for (addrinfo* a = list.get(); a != nullptr; a = a->ai_next) {
    int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), a->ai_protocol);
    if (fd < 0) {
      last = errno_status("socket");
      continue;
    }
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, a->ai_addr, a->ai_addrlen) != 0 || ::listen(fd, 128) != 0) {
      last = errno_status(fmt::format("cannot listen on {}", addr));
      ::close(fd);
      continue;
    }
    sockaddr_storage bound{};
    socklen_t len = sizeof bound;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
    *bound_port = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                                    : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
    return fd;
  }
  return last;
}

Result<int> tcp_connect(const std::string& addr, std::chrono::milliseconds timeout, bool nonblocking) {
  RDB_ASSIGN_OR_RETURN(HostPort hp, parse_host_port(addr));
  RDB_ASSIGN_OR_RETURN(auto list, resolve_tcp(hp, false));
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  Status last = Status::unavailable(fmt::format("no address for '{}'", addr));
  for (addrinfo* a = list.get(); a != nullptr; a = a->ai_next) {
    int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      last = errno_status("socket");
      continue;
    }
    if (::connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
      if (errno != EINPROGRESS) {
        last = errno_status(fmt::format("cannot connect to {}", addr));
        ::close(fd);
        continue;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      pollfd p{fd, POLLOUT, 0};
      int err = 0;
      socklen_t len = sizeof err;
      if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) != 1 ||
          ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
        last = Status::unavailable(
            fmt::format("cannot connect to {}: {}", addr, err != 0 ? std::strerror(err) : "timed out"));
        ::close(fd);
        continue;
      }
    }
    if (!nonblocking) {
      ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    return fd;
  }
  return last;
}

std::string encode_frame(std::uint32_t magic, std::string_view payload) {
  std::string out(8 + payload.size(), '\0');
  put_u32(out.data(), magic);
  put_u32(out.data() + 4, static_cast<std::uint32_t>(payload.size()));
  std::memcpy(out.data() + 8, payload.data(), payload.size());
  return out;
}

Status read_frame(int fd, std::uint32_t magic, std::size_t max_payload, std::string* payload) {
  char header[8];
  if (!recv_all(fd, header, sizeof header)) {
    return Status::unavailable("the connection ended");
  }
  if (get_u32(header) != magic) {
    return Status::invalid_argument(fmt::format("a frame starts with {:#010x}, not {:#010x}", get_u32(header), magic));
  }
  const std::uint32_t length = get_u32(header + 4);
  if (length > max_payload) {
    return Status::invalid_argument(fmt::format("a frame of {} bytes is over the limit of {}", length, max_payload));
  }
  payload->resize(length);
  if (length > 0 && !recv_all(fd, payload->data(), length)) {
    return Status::unavailable("the connection ended inside a frame");
  }
  return Status::ok();
}

}  // namespace rdb
