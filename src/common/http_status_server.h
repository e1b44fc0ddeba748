// A tiny HTTP/1.0 server for the status port (/metrics, /status).
//
// Serves GET requests for a fixed set of paths from one background thread;
// each handler is called on that thread and must be thread-safe with respect to
// the rest of the process. Not for user traffic: one request per connection,
// small bodies. The server stops and joins its thread on destruction.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "common/address.h"
#include "common/result.h"

namespace rdb {

class HttpStatusServer {
 public:
  struct Route {
    std::string content_type;
    std::function<std::string()> body;
  };

  // Binds `addr` (port 0 picks a free port) and starts serving.
  static Result<std::unique_ptr<HttpStatusServer>> start(const HostPort& addr, std::map<std::string, Route> routes);

  ~HttpStatusServer();
  HttpStatusServer(const HttpStatusServer&) = delete;
  HttpStatusServer& operator=(const HttpStatusServer&) = delete;

  std::uint16_t port() const { return port_; }

 private:
  HttpStatusServer(int listen_fd, int wake_read_fd, int wake_write_fd, std::uint16_t port,
                   std::map<std::string, Route> routes);
  void serve();
  void handle(int fd);

  int listen_fd_;
  int wake_read_fd_;
  int wake_write_fd_;
  std::uint16_t port_;
  std::map<std::string, Route> routes_;
  std::thread thread_;
};

}  // namespace rdb
