#include "common/http_status_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/socket_io.h"

namespace rdb {

Result<std::unique_ptr<HttpStatusServer>> HttpStatusServer::start(const HostPort& addr,
                                                                  std::map<std::string, Route> routes) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* res = nullptr;
  std::string port_text = std::to_string(addr.port);
  if (int rc = getaddrinfo(addr.host.c_str(), port_text.c_str(), &hints, &res); rc != 0) {
    return Status::invalid_argument(
        fmt::format("status address {}: cannot resolve host: {}", addr.to_string(), gai_strerror(rc)));
  }
  int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    freeaddrinfo(res);
    return ServerStatus::io_error(fmt::format("status server socket: {}", std::strerror(errno)));
  }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (::bind(fd, res->ai_addr, res->ai_addrlen) != 0 || ::listen(fd, 64) != 0) {
    int err = errno;
    freeaddrinfo(res);
    ::close(fd);
    return Status::unavailable(
        fmt::format("cannot listen on status address {}: {}", addr.to_string(), std::strerror(err)));
  }
  freeaddrinfo(res);
  sockaddr_storage bound{};
  socklen_t len = sizeof(bound);
  getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
  std::uint16_t port = bound.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                                                   : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    ::close(fd);
    return ServerStatus::io_error(fmt::format("status server pipe: {}", std::strerror(errno)));
  }
  return std::unique_ptr<HttpStatusServer>(new HttpStatusServer(fd, pipe_fds[0], pipe_fds[1], port, std::move(routes)));
}

HttpStatusServer::HttpStatusServer(int listen_fd, int wake_read_fd, int wake_write_fd, std::uint16_t port,
                                   std::map<std::string, Route> routes)
    : listen_fd_(listen_fd),
      wake_read_fd_(wake_read_fd),
      wake_write_fd_(wake_write_fd),
      port_(port),
      routes_(std::move(routes)),
      thread_([this] { serve(); }) {}

HttpStatusServer::~HttpStatusServer() {
  char byte = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_write_fd_, &byte, 1);
  thread_.join();
  ::close(listen_fd_);
  ::close(wake_read_fd_);
  ::close(wake_write_fd_);
}

void HttpStatusServer::serve() {
  for (;;) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_read_fd_, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) {
        continue;
      }
      return;
    }
    if (fds[1].revents != 0) {
      return;
    }
    if (fds[0].revents & POLLIN) {
      int conn = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (conn >= 0) {
        handle(conn);
        ::close(conn);
      }
    }
  }
}

void HttpStatusServer::handle(int fd) {
  // Read the request head, bounded in size and time so a slow peer cannot wedge the thread.
  std::string request;
  char buf[2048];
  while (request.find("\r\n\r\n") == std::string::npos && request.find("\n\n") == std::string::npos &&
         request.size() < 16384) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 2000) <= 0) {
      return;
    }
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) {
      break;
    }
    request.append(buf, static_cast<std::size_t>(n));
  }
  auto line_end = request.find_first_of("\r\n");
  std::string line = request.substr(0, line_end);
  auto sp1 = line.find(' ');
  auto sp2 = sp1 == std::string::npos ? std::string::npos : line.find(' ', sp1 + 1);
  std::string method = line.substr(0, sp1);
  std::string path = sp1 == std::string::npos ? "" : line.substr(sp1 + 1, sp2 - sp1 - 1);
  if (auto q = path.find('?'); q != std::string::npos) {
    path.resize(q);
  }
  std::string status = "200 OK";
  std::string type = "text/plain; charset=utf-8";
  std::string body;
  if (method != "GET") {
    status = "405 Method Not Allowed";
    body = "only GET is supported\n";
  } else if (auto it = routes_.find(path); it != routes_.end()) {
    type = it->second.content_type;
    body = it->second.body();
  } else {
    status = "404 Not Found";
    body = "not found; try:";
    for (const auto& [p, r] : routes_) {
      body += " " + p;
    }
    body += "\n";
  }
  std::string head = fmt::format("HTTP/1.0 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                                 status, type, body.size());
  if (send_all(fd, head)) {
    send_all(fd, body);
  }
}

}  // namespace rdb
