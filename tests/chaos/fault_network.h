// Network partitions between real processes, without root: each store dials its
// peers and the PD through its own HTTP CONNECT proxy (rdb-server is started with
// `grpc_proxy` pointing at it, see env_for()). The proxy knows who is dialling
// (one proxy per node) and whom (the CONNECT target, mapped to a node name), so a
// link can be cut in one direction: a cut link refuses new tunnels and closes open
// ones within ~50 ms. Clients in the test process dial stores directly, so an
// isolated leader still hears its clients — the case where stale reads and lost
// writes would show.
//
// Raft messages, snapshots and PD heartbeats from node A travel only on A's
// outbound connections (responses carry no Raft traffic), so cutting A->B loses
// exactly A's messages to B.
// Thread safety: all methods may be called from any thread. Tunnel threads are
// joined by the destructor.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/result.h"

namespace rdb::chaos {

class FaultNetwork {
 public:
  FaultNetwork() = default;
  ~FaultNetwork();
  FaultNetwork(const FaultNetwork&) = delete;
  FaultNetwork& operator=(const FaultNetwork&) = delete;

  // Starts the outbound proxy of node `name` (idempotent); returns its address.
  Result<std::string> proxy_for(const std::string& name);
  // Environment entries that make a child process's gRPC dial through `name`'s proxy.
  Result<std::vector<std::string>> env_for(const std::string& name);
  // Names the node listening at `address` ("host:port"); unknown targets are never cut.
  void register_address(const std::string& address, const std::string& name);

  // Loses every message `from` sends to `to` (one way).
  void cut(const std::string& from, const std::string& to);
  // Cuts both directions between `name` and every other known node.
  void isolate(const std::string& name);
  void heal();

  bool is_cut(const std::string& from, const std::string& to) const;
  std::uint64_t tunnels_opened() const { return tunnels_opened_.load(); }
  std::uint64_t tunnels_refused() const { return tunnels_refused_.load(); }

 private:
  struct Proxy {
    std::string name;
    int listen_fd = -1;
    std::string address;
    std::thread acceptor;
  };
  struct Tunnel {
    std::thread thread;
    std::atomic<bool> done{false};
  };

  void accept_loop(Proxy* proxy);
  void serve_tunnel(const std::string& from, int client_fd, Tunnel* self);
  std::string name_of(const std::string& address) const;
  void reap_finished_tunnels();

  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Proxy>> proxies_;
  std::map<std::string, std::string> names_;  // address -> node name
  std::set<std::pair<std::string, std::string>> cut_;
  std::vector<std::unique_ptr<Tunnel>> tunnels_;
  std::atomic<bool> stopping_{false};
  std::atomic<std::uint64_t> tunnels_opened_{0};
  std::atomic<std::uint64_t> tunnels_refused_{0};
};

}  // namespace rdb::chaos
