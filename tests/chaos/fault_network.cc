#include "fault_network.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

namespace rdb::chaos {
namespace {

constexpr int kPollMs = 50;  // how quickly a cut closes open tunnels

// Forward small writes at once: Nagle + delayed ACKs would add ~40 ms to Raft round trips.
void no_delay(int fd) {
  int one = 1;
  (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

int dial(const std::string& address) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos) {
    return -1;
  }
  std::string host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[') {
    host = host.substr(1, host.size() - 2);
  }
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (::getaddrinfo(host.c_str(), address.substr(colon + 1).c_str(), &hints, &found) != 0) {
    return -1;
  }
  int fd = ::socket(found->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  no_delay(fd);
  if (fd >= 0 && ::connect(fd, found->ai_addr, found->ai_addrlen) != 0) {
    ::close(fd);
    fd = -1;
  }
  ::freeaddrinfo(found);
  return fd;
}

bool write_all(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
    if (n <= 0) {
      return false;
    }
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

// Reads the CONNECT request head; returns the target and any bytes read past it.
bool read_connect(int fd, std::string& target, std::string& rest) {
  std::string head;
  char buf[4096];
  while (head.find("\r\n\r\n") == std::string::npos) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 5000) <= 0 || head.size() > 16384) {
      return false;
    }
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      return false;
    }
    head.append(buf, static_cast<std::size_t>(n));
  }
  auto end = head.find("\r\n\r\n");
  rest = head.substr(end + 4);
  if (head.rfind("CONNECT ", 0) != 0) {
    return false;
  }
  auto space = head.find(' ', 8);
  if (space == std::string::npos) {
    return false;
  }
  target = head.substr(8, space - 8);
  return true;
}

}  // namespace

FaultNetwork::~FaultNetwork() {
  stopping_ = true;
  std::map<std::string, std::unique_ptr<Proxy>> proxies;
  {
    std::lock_guard lock(mu_);
    proxies.swap(proxies_);
  }
  for (auto& [name, p] : proxies) {
    p->acceptor.join();
    ::close(p->listen_fd);
  }
  std::vector<std::unique_ptr<Tunnel>> tunnels;
  {
    std::lock_guard lock(mu_);
    tunnels.swap(tunnels_);
  }
  for (auto& t : tunnels) {
    t->thread.join();
  }
}

Result<std::string> FaultNetwork::proxy_for(const std::string& name) {
  std::lock_guard lock(mu_);
  if (auto it = proxies_.find(name); it != proxies_.end()) {
    return it->second->address;
  }
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 64) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    if (fd >= 0) {
      ::close(fd);
    }
    return ServerStatus::io_error(fmt::format("cannot start the proxy of '{}': {}", name, std::strerror(errno)));
  }
  auto proxy = std::make_unique<Proxy>();
  proxy->name = name;
  proxy->listen_fd = fd;
  proxy->address = fmt::format("127.0.0.1:{}", ntohs(addr.sin_port));
  Proxy* raw = proxy.get();
  proxy->acceptor = std::thread([this, raw] { accept_loop(raw); });
  std::string address = proxy->address;
  proxies_.emplace(name, std::move(proxy));
  return address;
}

Result<std::vector<std::string>> FaultNetwork::env_for(const std::string& name) {
  RDB_ASSIGN_OR_RETURN(std::string proxy, proxy_for(name));
  // gRPC honours grpc_proxy first; empty no-proxy lists so loopback is proxied too.
  return std::vector<std::string>{"grpc_proxy=http://" + proxy, "no_grpc_proxy=", "no_proxy=", "NO_PROXY="};
}

void FaultNetwork::register_address(const std::string& address, const std::string& name) {
  std::lock_guard lock(mu_);
  names_[address] = name;
}

void FaultNetwork::cut(const std::string& from, const std::string& to) {
  std::lock_guard lock(mu_);
  cut_.emplace(from, to);
}

void FaultNetwork::isolate(const std::string& name) {
  std::lock_guard lock(mu_);
  for (const auto& [address, other] : names_) {
    if (other != name) {
      cut_.emplace(name, other);
      cut_.emplace(other, name);
    }
  }
}

void FaultNetwork::heal() {
  std::lock_guard lock(mu_);
  cut_.clear();
}

bool FaultNetwork::is_cut(const std::string& from, const std::string& to) const {
  std::lock_guard lock(mu_);
  return cut_.count({from, to}) != 0;
}

std::string FaultNetwork::name_of(const std::string& address) const {
  std::lock_guard lock(mu_);
  auto it = names_.find(address);
  return it == names_.end() ? address : it->second;
}

void FaultNetwork::reap_finished_tunnels() {
  std::vector<std::unique_ptr<Tunnel>> finished;
  {
    std::lock_guard lock(mu_);
    for (auto it = tunnels_.begin(); it != tunnels_.end();) {
      if ((*it)->done) {
        finished.push_back(std::move(*it));
        it = tunnels_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& t : finished) {
    t->thread.join();
  }
}

void FaultNetwork::accept_loop(Proxy* proxy) {
  while (!stopping_) {
    pollfd p{proxy->listen_fd, POLLIN, 0};
    if (::poll(&p, 1, kPollMs) <= 0) {
      reap_finished_tunnels();
      continue;
    }
    int client = ::accept4(proxy->listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) {
      continue;
    }
    no_delay(client);
    auto tunnel = std::make_unique<Tunnel>();
    Tunnel* raw = tunnel.get();
    std::lock_guard lock(mu_);
    tunnel->thread = std::thread([this, from = proxy->name, client, raw] { serve_tunnel(from, client, raw); });
    tunnels_.push_back(std::move(tunnel));
  }
}

void FaultNetwork::serve_tunnel(const std::string& from, int client_fd, Tunnel* self) {
  std::string target;
  std::string rest;
  int server_fd = -1;
  if (read_connect(client_fd, target, rest)) {
    std::string to = name_of(target);
    if (is_cut(from, to)) {
      ++tunnels_refused_;
      const char* refuse = "HTTP/1.0 503 Service Unavailable\r\n\r\n";
      (void)write_all(client_fd, refuse, std::strlen(refuse));
    } else if ((server_fd = dial(target)) < 0) {
      const char* down = "HTTP/1.0 502 Bad Gateway\r\n\r\n";
      (void)write_all(client_fd, down, std::strlen(down));
    } else {
      ++tunnels_opened_;
      const char* ok = "HTTP/1.0 200 Connection established\r\n\r\n";
      bool alive = write_all(client_fd, ok, std::strlen(ok)) && write_all(server_fd, rest.data(), rest.size());
      char buf[65536];
      // The target's name is looked up again each round: a tunnel opened before its target
      // was registered (a PD member dialling a peer during start-up) must be cut all the same.
      while (alive && !stopping_ && !is_cut(from, name_of(target))) {
        pollfd p[2] = {{client_fd, POLLIN, 0}, {server_fd, POLLIN, 0}};
        if (::poll(p, 2, kPollMs) < 0) {
          break;
        }
        for (int i = 0; i < 2 && alive; ++i) {
          if ((p[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) {
            continue;
          }
          int src = i == 0 ? client_fd : server_fd;
          int dst = i == 0 ? server_fd : client_fd;
          ssize_t n = ::recv(src, buf, sizeof buf, 0);
          alive = n > 0 && write_all(dst, buf, static_cast<std::size_t>(n));
        }
      }
    }
  }
  if (server_fd >= 0) {
    ::close(server_fd);
  }
  ::close(client_fd);
  self->done = true;
}

}  // namespace rdb::chaos
