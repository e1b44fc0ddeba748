#include "floor.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>
#include <vector>

#include "common/socket_io.h"

namespace rdb::bench {
namespace {

using Clock = std::chrono::steady_clock;

Status errno_status(const std::string& what) {
  return Status::unavailable(fmt::format("{}: {}", what, std::strerror(errno)));
}

// Closes a descriptor when it goes out of scope.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

void no_delay(int fd) {
  int one = 1;
  (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

}  // namespace

Result<LatencyHistogram> measure_fdatasync(const std::string& dir, std::chrono::nanoseconds duration,
                                           std::size_t block_bytes) {
  if (block_bytes == 0) {
    return Status::invalid_argument("the fdatasync block must be at least one byte");
  }
  constexpr off_t kWrapBytes = 64 << 20;
  const std::string path = fmt::format("{}/rdb-bench-floor-{}.tmp", dir, ::getpid());
  Fd fd(::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600));
  if (fd.get() < 0) {
    return errno_status(fmt::format("cannot create the scratch file {}", path));
  }
  struct Remove {
    const std::string& path;
    ~Remove() { ::unlink(path.c_str()); }
  } remove{path};
  const std::vector<char> block(block_bytes, 'w');
  LatencyHistogram hist;
  off_t offset = 0;
  const auto end = Clock::now() + duration;
  do {
    if (offset + static_cast<off_t>(block_bytes) > kWrapBytes) {
      if (::ftruncate(fd.get(), 0) != 0) {
        return errno_status(fmt::format("cannot truncate {}", path));
      }
      offset = 0;
    }
    const auto started = Clock::now();
    ssize_t w = ::pwrite(fd.get(), block.data(), block.size(), offset);
    if (w != static_cast<ssize_t>(block.size())) {
      return w < 0 ? errno_status(fmt::format("cannot append to {}", path))
                   : Status::unavailable(fmt::format("a short write to {} (is the disk full?)", path));
    }
    if (::fdatasync(fd.get()) != 0) {
      return errno_status(fmt::format("fdatasync of {} failed", path));
    }
    hist.record(static_cast<std::uint64_t>(std::chrono::nanoseconds(Clock::now() - started).count()));
    offset += w;
  } while (Clock::now() < end);
  return hist;
}

Result<LatencyHistogram> measure_loopback_rtt(std::chrono::nanoseconds duration, std::size_t message_bytes) {
  if (message_bytes == 0) {
    return Status::invalid_argument("the round-trip message must be at least one byte");
  }
  Fd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (listener.get() < 0) {
    return errno_status("cannot open a socket");
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;  // an ephemeral port
  socklen_t len = sizeof addr;
  if (::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listener.get(), 1) != 0 ||
      ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return errno_status("cannot listen on 127.0.0.1");
  }
  Fd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (client.get() < 0 || ::connect(client.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return errno_status(fmt::format("cannot connect to 127.0.0.1:{}", ntohs(addr.sin_port)));
  }
  Fd server(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));  // queued: connect completed
  if (server.get() < 0) {
    return errno_status("cannot accept the loopback connection");
  }
  no_delay(client.get());
  no_delay(server.get());
  // The echo ends when the client side shuts down its writes (recv_all sees EOF).
  std::thread echo([fd = server.get(), message_bytes] {
    std::vector<char> buf(message_bytes);
    while (recv_all(fd, buf.data(), buf.size()) && send_all(fd, {buf.data(), buf.size()})) {
    }
  });
  std::vector<char> out(message_bytes, 'r');
  std::vector<char> in(message_bytes);
  LatencyHistogram hist;
  Status failed;
  const auto end = Clock::now() + duration;
  do {
    const auto started = Clock::now();
    errno = 0;  // EOF leaves it untouched
    if (!send_all(client.get(), {out.data(), out.size()}) || !recv_all(client.get(), in.data(), in.size())) {
      failed = errno == 0 ? Status::unavailable("the loopback round trip broke: the echo closed the connection")
                          : errno_status("the loopback round trip broke");
      break;
    }
    hist.record(static_cast<std::uint64_t>(std::chrono::nanoseconds(Clock::now() - started).count()));
  } while (Clock::now() < end);
  (void)::shutdown(client.get(), SHUT_WR);
  echo.join();
  if (!failed.is_ok()) {
    return failed;
  }
  return hist;
}

}  // namespace rdb::bench
