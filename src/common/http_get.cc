#include "common/http_get.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

namespace rdb {
namespace {

using Clock = std::chrono::steady_clock;

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) {
      ::close(fd);
    }
  }
};

// Waits until `fd` is ready for `events` or `deadline` passes.
bool wait_ready(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      return false;
    }
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, static_cast<int>(left));
    if (n > 0) {
      return true;
    }
    if (n < 0 && errno != EINTR) {
      return false;
    }
  }
}

}  // namespace

Result<std::string> http_get(const HostPort& addr, const std::string& path, std::chrono::milliseconds timeout,
                             std::size_t max_bytes) {
  const auto deadline = Clock::now() + timeout;
  const std::string where = fmt::format("http://{}{}", addr.to_string(), path);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (int rc = ::getaddrinfo(addr.host.c_str(), std::to_string(addr.port).c_str(), &hints, &res); rc != 0) {
    return Status::unavailable(fmt::format("{}: cannot resolve: {}", where, ::gai_strerror(rc)));
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> owned(res, &::freeaddrinfo);
  Fd sock{::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)};
  if (sock.fd < 0) {
    return Status::unavailable(fmt::format("{}: socket: {}", where, std::strerror(errno)));
  }
  if (::connect(sock.fd, res->ai_addr, res->ai_addrlen) != 0) {
    if (errno != EINPROGRESS || !wait_ready(sock.fd, POLLOUT, deadline)) {
      return Status::unavailable(fmt::format("{}: cannot connect", where));
    }
    int err = 0;
    socklen_t len = sizeof(err);
    if (::getsockopt(sock.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
      return Status::unavailable(fmt::format("{}: cannot connect: {}", where, std::strerror(err)));
    }
  }
  const std::string request = fmt::format("GET {} HTTP/1.0\r\nHost: {}\r\n\r\n", path, addr.to_string());
  for (std::size_t sent = 0; sent < request.size();) {
    if (!wait_ready(sock.fd, POLLOUT, deadline)) {
      return Status::unavailable(fmt::format("{}: timed out sending", where));
    }
    ssize_t n = ::send(sock.fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
      return Status::unavailable(fmt::format("{}: send: {}", where, std::strerror(errno)));
    }
    sent += n > 0 ? static_cast<std::size_t>(n) : 0;
  }
  std::string answer;
  char buf[16384];
  for (;;) {
    if (!wait_ready(sock.fd, POLLIN, deadline)) {
      return Status::unavailable(fmt::format("{}: no complete answer within {} ms", where, timeout.count()));
    }
    ssize_t n = ::recv(sock.fd, buf, sizeof(buf), 0);
    if (n == 0) {
      break;
    }
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) {
        continue;
      }
      return Status::unavailable(fmt::format("{}: recv: {}", where, std::strerror(errno)));
    }
    answer.append(buf, static_cast<std::size_t>(n));
    if (answer.size() > max_bytes + 4096) {
      return Status::unavailable(fmt::format("{}: the answer is larger than {} bytes", where, max_bytes));
    }
  }
  auto header_end = answer.find("\r\n\r\n");
  if (header_end == std::string::npos || answer.compare(0, 5, "HTTP/") != 0) {
    return Status::unavailable(fmt::format("{}: not an HTTP answer", where));
  }
  auto status_at = answer.find(' ');
  if (status_at == std::string::npos || answer.compare(status_at + 1, 3, "200") != 0) {
    return Status::unavailable(
        fmt::format("{}: answered '{}'", where, answer.substr(0, std::min(answer.find("\r\n"), std::size_t{80}))));
  }
  std::string body = answer.substr(header_end + 4);
  if (body.size() > max_bytes) {
    return Status::unavailable(fmt::format("{}: the answer is larger than {} bytes", where, max_bytes));
  }
  return body;
}

}  // namespace rdb
