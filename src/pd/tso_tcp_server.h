// TsoTcpServer: PD's plain-TCP TSO endpoint (rdb-pd --tso-addr).
//
// Why: on gRPC a TSO round trip costs both ends a message's worth of gRPC work and
// thread hand-offs (PD's callback reactor, the client's completion queue), and on a
// small machine that, not the allocation, bounds timestamps/s (docs/performance.md).
// Here each connection has one thread that reads a frame (common/tso_frame.h), serves
// it through the same function as the gRPC stream (PdService::serve_tso: cluster id,
// leadership and count checks, NOT_LEADER with the leader's address) and writes the
// answer: one wake-up per request.
//
// Untrusted input: a frame with another magic, a length over kMaxTsoRequestBytes or a
// payload that does not parse closes its connection (counted as a bad frame); an
// error status from `serve` (allocation failed) closes it too, as it ends a gRPC
// stream. At most `max_connections` are served at once; more are closed as they
// arrive (counted as refused). Plaintext only: with TLS, TSO stays on gRPC.
//
// Thread safety: the counters may be read from any thread; the destructor stops
// accepting, closes every connection and joins every thread.
#pragma once

#include <grpcpp/support/status.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/result.h"
#include "pdpb.pb.h"

namespace rdb {

class TsoTcpServer {
 public:
  using Serve = std::function<grpc::Status(const pdpb::TsoRequest&, pdpb::TsoResponse*)>;
  struct Options {
    std::size_t max_connections = 256;
  };

  // Listens on `addr` ("host:port"; port 0 picks one). INVALID_ARGUMENT for a malformed
  // address, UNAVAILABLE when it cannot be bound.
  static Result<std::unique_ptr<TsoTcpServer>> start(const std::string& addr, Serve serve, Options options);
  static Result<std::unique_ptr<TsoTcpServer>> start(const std::string& addr, Serve serve) {
    return start(addr, std::move(serve), Options{});
  }
  ~TsoTcpServer();
  TsoTcpServer(const TsoTcpServer&) = delete;
  TsoTcpServer& operator=(const TsoTcpServer&) = delete;

  std::uint16_t port() const { return port_; }
  std::uint64_t requests_served() const { return requests_.load(); }
  std::uint64_t bad_frames() const { return bad_frames_.load(); }
  std::uint64_t connections_refused() const { return refused_.load(); }

 private:
  struct Connection {
    int fd = -1;
    std::thread thread;
    std::atomic<bool> done{false};
  };
  TsoTcpServer(int listen_fd, std::uint16_t port, Serve serve, Options options);
  void accept_loop();
  void serve_connection(Connection& c);
  // Joins and closes connections whose thread has ended. Called with mu_ held.
  void reap_locked();

  const int listen_fd_;
  const std::uint16_t port_;
  const Serve serve_;
  const Options options_;
  std::mutex mu_;
  std::list<Connection> connections_;  // guarded by mu_
  bool stopping_ = false;              // guarded by mu_
  std::atomic<std::uint64_t> requests_{0};
  std::atomic<std::uint64_t> bad_frames_{0};
  std::atomic<std::uint64_t> refused_{0};
  std::thread acceptor_;
};

}  // namespace rdb
