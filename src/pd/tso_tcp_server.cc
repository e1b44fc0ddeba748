#include "pd/tso_tcp_server.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "common/socket_io.h"
#include "common/tcp_socket.h"
#include "common/tso_frame.h"

namespace rdb {

Result<std::unique_ptr<TsoTcpServer>> TsoTcpServer::start(const std::string& addr, Serve serve, Options options) {
  std::uint16_t port = 0;
  RDB_ASSIGN_OR_RETURN(int fd, tcp_listen(addr, &port));
  return std::unique_ptr<TsoTcpServer>(new TsoTcpServer(fd, port, std::move(serve), options));
}

TsoTcpServer::TsoTcpServer(int listen_fd, std::uint16_t port, Serve serve, Options options)
    : listen_fd_(listen_fd), port_(port), serve_(std::move(serve)), options_(options), acceptor_([this] {
        accept_loop();
      }) {}

TsoTcpServer::~TsoTcpServer() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    for (auto& c : connections_) {
      ::shutdown(c.fd, SHUT_RDWR);  // ends a connection thread's blocking read or write
    }
  }
  ::shutdown(listen_fd_, SHUT_RDWR);  // ends the acceptor's accept()
  acceptor_.join();
  std::lock_guard lock(mu_);
  for (auto& c : connections_) {
    c.thread.join();
    ::close(c.fd);
  }
  connections_.clear();
  ::close(listen_fd_);
}

void TsoTcpServer::reap_locked() {
  for (auto it = connections_.begin(); it != connections_.end();) {
    if (it->done.load()) {
      it->thread.join();
      ::close(it->fd);
      it = connections_.erase(it);
    } else {
      ++it;
    }
  }
}

void TsoTcpServer::accept_loop() {
  for (;;) {
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    const int accept_errno = errno;
    std::unique_lock lock(mu_);
    if (stopping_) {
      if (fd >= 0) {
        ::close(fd);
      }
      return;
    }
    if (fd < 0) {
      if (accept_errno != EINTR && accept_errno != ECONNABORTED) {
        // Out of descriptors or memory: let connections end before accepting again.
        spdlog::warn("TSO endpoint: accept failed: {}", std::strerror(accept_errno));
        lock.unlock();
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      continue;
    }
    reap_locked();
    if (connections_.size() >= options_.max_connections) {
      ++refused_;
      ::close(fd);
      continue;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    auto& c = connections_.emplace_back();
    c.fd = fd;
    c.thread = std::thread([this, &c] { serve_connection(c); });
  }
}

void TsoTcpServer::serve_connection(Connection& c) {
  std::string payload;
  std::string out;
  pdpb::TsoRequest req;
  pdpb::TsoResponse resp;
  for (;;) {
    Status s = read_frame(c.fd, kTsoFrameMagic, kMaxTsoRequestBytes, &payload);
    if (!s.is_ok()) {
      if (s.code() == StatusCode::kInvalidArgument) {
        ++bad_frames_;
        spdlog::debug("TSO endpoint: closing a connection: {}", s.message());
      }
      break;
    }
    if (!req.ParseFromString(payload)) {
      ++bad_frames_;
      spdlog::debug("TSO endpoint: closing a connection: a frame is not a TsoRequest");
      break;
    }
    resp.Clear();
    if (grpc::Status st = serve_(req, &resp); !st.ok()) {
      break;  // as the gRPC stream ends with this status
    }
    ++requests_;
    resp.SerializeToString(&out);
    if (!send_all(c.fd, encode_frame(kTsoFrameMagic, out))) {
      break;
    }
  }
  ::shutdown(c.fd, SHUT_RDWR);
  c.done = true;  // closed and joined by the acceptor (or the destructor)
}

}  // namespace rdb
