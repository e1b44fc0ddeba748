#include "server/tcp_transport.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/address.h"
#include "common/tcp_socket.h"
#include "server/http_proxy.h"

namespace rdb {

namespace {

constexpr std::size_t kReadChunk = std::size_t{256} * 1024;
constexpr int kReadsPerTurn = 4;  // per connection per serve(): a busy peer does not starve the others
constexpr auto kInitialBackoff = std::chrono::milliseconds(100);
constexpr auto kMaxBackoff = std::chrono::milliseconds(2000);

Status errno_status(const std::string& what) {
  return Status::unavailable(fmt::format("{}: {}", what, std::strerror(errno)));
}

// Keepalive so a peer host that vanished (no FIN ever arrives) is noticed in about 15 s.
void tune_socket(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
  int idle = 10;
  int interval = 2;
  int count = 3;
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
}

bool wait_for(int fd, short events, std::chrono::steady_clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  pollfd p{fd, events, 0};
  return left.count() > 0 && ::poll(&p, 1, static_cast<int>(left.count())) > 0;
}

// An HTTP CONNECT tunnel to `target` through `proxy`, connected on `fd`.
Status tunnel(int fd, const std::string& target, const HttpProxy& proxy, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string request = fmt::format("CONNECT {} HTTP/1.1\r\nHost: {}\r\n", target, target);
  if (!proxy.credentials.empty()) {
    request += fmt::format("Proxy-Authorization: Basic {}\r\n", base64(proxy.credentials));
  }
  request += "\r\n";
  for (std::size_t at = 0; at < request.size();) {
    ssize_t n = ::send(fd, request.data() + at, request.size() - at, MSG_NOSIGNAL);
    if (n > 0) {
      at += static_cast<std::size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR) && wait_for(fd, POLLOUT, deadline)) {
      continue;
    } else {
      return errno_status(fmt::format("proxy CONNECT to {}", target));
    }
  }
  std::string head;
  while (head.find("\r\n\r\n") == std::string::npos) {
    if (head.size() > 4096 || !wait_for(fd, POLLIN, deadline)) {
      return Status::unavailable(fmt::format("the proxy did not answer CONNECT to {}", target));
    }
    char c = 0;
    ssize_t n = ::recv(fd, &c, 1, 0);  // byte by byte: nothing past the answer's head is read
    if (n <= 0 && !(n < 0 && (errno == EAGAIN || errno == EINTR))) {
      return Status::unavailable(fmt::format("the proxy closed the CONNECT to {}", target));
    }
    if (n == 1) {
      head.push_back(c);
    }
  }
  if (head.rfind("HTTP/1.", 0) != 0 || head.size() < 12 || head.compare(9, 3, "200") != 0) {
    return Status::unavailable(
        fmt::format("the proxy refused CONNECT to {}: {}", target, head.substr(0, head.find('\r'))));
  }
  return Status::ok();
}

struct Connection {
  int fd = -1;
  std::string proxy;  // the proxy's address when tunnelled through one, else empty
};

// A connected, non-blocking socket to `target` — through the HTTP proxy gRPC would use for it,
// so Raft traffic leaves the way the store's gRPC traffic does (the chaos harness cuts links in
// such a proxy) — or why not, within `timeout`.
Result<Connection> connect_to(const std::string& target, std::chrono::milliseconds timeout) {
  RDB_ASSIGN_OR_RETURN(HostPort target_hp, parse_host_port(target));
  const std::optional<HttpProxy> proxy = http_proxy_for(target_hp.host);
  const std::string& addr = proxy ? proxy->address : target;
  RDB_ASSIGN_OR_RETURN(int fd, tcp_connect(addr, timeout, /*nonblocking=*/true));
  if (proxy) {
    if (Status t = tunnel(fd, target, *proxy, timeout); !t.is_ok()) {
      ::close(fd);
      return t;
    }
  }
  tune_socket(fd);
  return Connection{fd, proxy ? proxy->address : std::string()};
}

}  // namespace

struct TcpRaftTransport::Outgoing : Endpoint {
  explicit Outgoing(std::uint64_t id) : Endpoint(Kind::kOutgoing), store_id(id) {}
  enum class State { kIdle, kConnecting, kConnected, kFallback };
  const std::uint64_t store_id;
  std::mutex mu;
  State state = State::kIdle;
  int fd = -1;
  std::deque<raftsvc::RaftMessage> pending;  // while not connected
  std::string out;                           // framed, not yet written from out_off
  std::size_t out_off = 0;
  bool polling_out = false;  // EPOLLOUT is registered
  Clock::time_point retry_at{};
  std::chrono::milliseconds backoff = kInitialBackoff;
  Clock::time_point fallback_until{};
};

struct TcpRaftTransport::Incoming : Endpoint {
  Incoming(int f, std::size_t max_frame) : Endpoint(Kind::kIncoming), fd(f), reader(max_frame) {}
  int fd;
  RaftFrameReader reader;
  bool closed = false;
};

TcpRaftTransport::TcpRaftTransport(RaftAddressResolver resolver, RaftTransport& fallback, Options options)
    : resolver_(std::move(resolver)), fallback_(fallback), options_(options), read_buf_(kReadChunk) {}

Result<std::unique_ptr<TcpRaftTransport>> TcpRaftTransport::listen(const std::string& listen_addr,
                                                                   RaftAddressResolver resolver,
                                                                   RaftTransport& fallback, Options options) {
  auto hp = parse_host_port(listen_addr, true);
  if (!hp.is_ok()) {
    return Status::invalid_argument(fmt::format("--raft-addr '{}': {}", listen_addr, hp.status().message()));
  }
  std::unique_ptr<TcpRaftTransport> t(new TcpRaftTransport(std::move(resolver), fallback, options));
  RDB_ASSIGN_OR_RETURN(t->listen_fd_, tcp_listen(listen_addr, &t->port_, /*nonblocking=*/true));
  t->epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  t->wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (t->epoll_fd_ < 0 || t->wake_fd_ < 0) {
    return errno_status("epoll/eventfd");
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = &t->wake_endpoint_;
  ::epoll_ctl(t->epoll_fd_, EPOLL_CTL_ADD, t->wake_fd_, &ev);
  ev.data.ptr = &t->listen_endpoint_;
  ::epoll_ctl(t->epoll_fd_, EPOLL_CTL_ADD, t->listen_fd_, &ev);
  t->connector_ = std::thread([p = t.get()] { p->connect_loop(); });
  return t;
}

TcpRaftTransport::~TcpRaftTransport() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  connect_cv_.notify_all();
  if (connector_.joinable()) {
    connector_.join();
  }
  for (auto& [id, o] : outgoing_) {
    std::lock_guard lock(o->mu);
    if (o->fd >= 0) {
      ::close(o->fd);
    }
  }
  for (auto& in : incoming_) {
    if (!in->closed) {
      ::close(in->fd);
    }
  }
  for (int fd : {listen_fd_, wake_fd_, epoll_fd_}) {
    if (fd >= 0) {
      ::close(fd);
    }
  }
}

void TcpRaftTransport::set_store(RaftStore& store) {
  set_receiver({[&store](raftsvc::RaftMessage m) { store.deliver(std::move(m)); },
                [&store](const raft::Rejection& why) { store.dropped_messages().drop(0, why); }});
}

TcpRaftTransport::Outgoing& TcpRaftTransport::outgoing(std::uint64_t store_id) {
  std::lock_guard lock(mu_);
  auto& slot = outgoing_[store_id];
  if (!slot) {
    slot = std::make_unique<Outgoing>(store_id);
  }
  return *slot;
}

void TcpRaftTransport::request_connect() {
  {
    std::lock_guard lock(mu_);
    connect_wanted_ = true;
  }
  connect_cv_.notify_one();
}

void TcpRaftTransport::send(std::vector<raftsvc::RaftMessage> messages) {
  // Messages to one store keep their order: group them, stable.
  std::map<std::uint64_t, std::vector<raftsvc::RaftMessage>> by_store;
  for (auto& m : messages) {
    by_store[m.to_peer().store_id()].push_back(std::move(m));
  }
  for (auto& [store_id, group] : by_store) {
    Outgoing& o = outgoing(store_id);
    std::vector<raftsvc::RaftMessage> to_fallback;
    bool connect = false;
    {
      std::lock_guard lock(o.mu);
      if (o.state == Outgoing::State::kFallback && Clock::now() >= o.fallback_until) {
        o.state = Outgoing::State::kIdle;  // ask again whether it has a Raft address now
      }
      switch (o.state) {
        case Outgoing::State::kFallback:
          to_fallback = std::move(group);
          break;
        case Outgoing::State::kConnected:
          frame_locked(o, group);
          flush_locked(o);
          break;
        case Outgoing::State::kIdle:
        case Outgoing::State::kConnecting:
          for (auto& m : group) {
            if (o.pending.size() >= options_.max_pending_messages) {
              dropped_.fetch_add(1);
              continue;
            }
            o.pending.push_back(std::move(m));
          }
          connect = o.state == Outgoing::State::kIdle;
          break;
      }
    }
    if (!to_fallback.empty()) {
      fallback_.send(std::move(to_fallback));
    }
    if (connect) {
      request_connect();
    }
  }
}

void TcpRaftTransport::send_snapshot(raftsvc::RaftMessage message, std::vector<std::string> files,
                                     std::function<void(bool)> done) {
  fallback_.send_snapshot(std::move(message), std::move(files), std::move(done));
}

void TcpRaftTransport::frame_locked(Outgoing& o, std::vector<raftsvc::RaftMessage>& messages) {
  raftsvc::RaftBatch batch;
  batch.set_cluster_id(cluster_id_.load());
  std::size_t batch_bytes = 0;
  auto emit = [&] {
    if (batch.messages_size() == 0) {
      return;
    }
    if (o.out.size() - o.out_off + batch_bytes > options_.max_buffer_bytes) {
      dropped_.fetch_add(static_cast<std::uint64_t>(batch.messages_size()));
    } else {
      append_raft_frame(batch, o.out);
      sent_.fetch_add(static_cast<std::uint64_t>(batch.messages_size()));
    }
    batch.clear_messages();
    batch_bytes = 0;
  };
  for (auto& m : messages) {
    const std::size_t size = m.ByteSizeLong();
    if (size + 64 > options_.max_frame_bytes) {
      dropped_.fetch_add(1);  // the receiver would refuse the frame (and the connection)
      continue;
    }
    if (batch_bytes > 0 && batch_bytes + size > options_.max_batch_bytes) {
      emit();
    }
    *batch.add_messages() = std::move(m);
    batch_bytes += size + 8;
  }
  emit();
}

void TcpRaftTransport::flush_locked(Outgoing& o) {
  while (o.fd >= 0 && o.out_off < o.out.size()) {
    ssize_t n = ::send(o.fd, o.out.data() + o.out_off, o.out.size() - o.out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      o.out_off += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!o.polling_out) {
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLOUT;
        ev.data.ptr = &o;
        ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, o.fd, &ev);
        o.polling_out = true;
      }
      return;
    }
    spdlog::info("Raft connection to store {} failed: {}", o.store_id, std::strerror(errno));
    close_locked(o);
    return;
  }
  if (o.out_off == o.out.size()) {
    o.out.clear();
    o.out_off = 0;
    if (o.polling_out && o.fd >= 0) {
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.ptr = &o;
      ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, o.fd, &ev);
      o.polling_out = false;
    }
  }
}

void TcpRaftTransport::close_locked(Outgoing& o) {
  if (o.fd >= 0) {
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, o.fd, nullptr);
    ::close(o.fd);
    o.fd = -1;
  }
  dropped_.fetch_add(o.out_off < o.out.size() ? 1 : 0);
  o.out.clear();
  o.out_off = 0;
  o.polling_out = false;
  o.state = Outgoing::State::kIdle;
  o.retry_at = Clock::now() + o.backoff;
  o.backoff = std::min(o.backoff * 2, kMaxBackoff);
}

void TcpRaftTransport::connect_loop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    connect_cv_.wait_for(lock, kInitialBackoff, [&] { return stopping_ || connect_wanted_; });
    connect_wanted_ = false;
    if (stopping_) {
      break;
    }
    std::vector<Outgoing*> all;
    all.reserve(outgoing_.size());
    for (auto& [id, o] : outgoing_) {
      all.push_back(o.get());
    }
    lock.unlock();
    for (Outgoing* o : all) {
      connect_one(*o);
    }
    lock.lock();
  }
}

void TcpRaftTransport::connect_one(Outgoing& o) {
  {
    std::lock_guard lock(o.mu);
    if (o.state != Outgoing::State::kIdle || o.pending.empty() || Clock::now() < o.retry_at) {
      return;
    }
    o.state = Outgoing::State::kConnecting;
  }
  auto fail = [&](const Status& why) {
    std::lock_guard lock(o.mu);
    spdlog::debug("Raft connection to store {}: {}", o.store_id, why.message());
    o.state = Outgoing::State::kIdle;
    o.retry_at = Clock::now() + o.backoff;
    o.backoff = std::min(o.backoff * 2, kMaxBackoff);
  };
  Result<std::string> addr = resolver_(o.store_id);
  if (!addr.is_ok()) {
    fail(addr.status());
    return;
  }
  if (addr->empty()) {  // the store takes Raft traffic on gRPC only
    std::vector<raftsvc::RaftMessage> forward;
    {
      std::lock_guard lock(o.mu);
      o.state = Outgoing::State::kFallback;
      o.fallback_until = Clock::now() + options_.fallback_recheck;
      forward.assign(std::make_move_iterator(o.pending.begin()), std::make_move_iterator(o.pending.end()));
      o.pending.clear();
    }
    fallback_.send(std::move(forward));
    return;
  }
  Result<Connection> connected = connect_to(*addr, options_.connect_timeout);
  if (!connected.is_ok()) {
    fail(connected.status());
    return;
  }
  spdlog::info("Raft connection to store {} at {} open{}", o.store_id, *addr,
               connected->proxy.empty() ? "" : fmt::format(" (through the proxy at {})", connected->proxy));
  std::lock_guard lock(o.mu);
  o.fd = connected->fd;
  o.state = Outgoing::State::kConnected;
  o.backoff = kInitialBackoff;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = &o;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, o.fd, &ev);
  std::vector<raftsvc::RaftMessage> queued(std::make_move_iterator(o.pending.begin()),
                                           std::make_move_iterator(o.pending.end()));
  o.pending.clear();
  frame_locked(o, queued);
  flush_locked(o);
}

void TcpRaftTransport::wait(std::chrono::milliseconds timeout) {
  epoll_event events[kMaxEvents];
  int n = ::epoll_wait(epoll_fd_, events, kMaxEvents, static_cast<int>(timeout.count()));
  ready_.clear();
  for (int i = 0; i < n; ++i) {
    ready_.push_back({static_cast<Endpoint*>(events[i].data.ptr), events[i].events});
  }
}

void TcpRaftTransport::wake() {
  std::uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);
}

void TcpRaftTransport::serve() {
  for (const ReadyEvent& e : ready_) {
    switch (e.endpoint->kind) {
      case Endpoint::Kind::kWake: {
        std::uint64_t count = 0;
        [[maybe_unused]] ssize_t n = ::read(wake_fd_, &count, sizeof count);
        break;
      }
      case Endpoint::Kind::kListener:
        accept_all();
        break;
      case Endpoint::Kind::kIncoming: {
        auto& in = static_cast<Incoming&>(*e.endpoint);
        if (!in.closed) {
          read_incoming(in);
        }
        break;
      }
      case Endpoint::Kind::kOutgoing:
        serve_outgoing(static_cast<Outgoing&>(*e.endpoint), e.events);
        break;
    }
  }
  ready_.clear();
  std::erase_if(incoming_, [](const std::unique_ptr<Incoming>& in) { return in->closed; });
  incoming_count_ = incoming_.size();
}

void TcpRaftTransport::accept_all() {
  for (;;) {
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR) {
        continue;
      }
      return;  // EAGAIN: none left (or a transient error: the listener is polled again)
    }
    std::size_t open = 0;
    for (const auto& in : incoming_) {
      open += in->closed ? 0 : 1;
    }
    if (open >= options_.max_incoming) {
      ::close(fd);
      if (std::uint64_t n = refused_.fetch_add(1); n % 100 == 0) {  // a flood does not flood the log
        spdlog::warn("Raft listener: {} connections are open, the limit; closing new ones ({} refused so far)", open,
                     n + 1);
      }
      continue;
    }
    tune_socket(fd);
    auto in = std::make_unique<Incoming>(fd, options_.max_frame_bytes);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = in.get();
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
    incoming_.push_back(std::move(in));
  }
}

void TcpRaftTransport::close_incoming(Incoming& in) {
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, in.fd, nullptr);
  ::close(in.fd);
  in.closed = true;  // freed at the end of serve(): later events of this turn may name it
}

void TcpRaftTransport::read_incoming(Incoming& in) {
  raftsvc::RaftBatch batch;
  for (int i = 0; i < kReadsPerTurn; ++i) {
    ssize_t n = ::recv(in.fd, read_buf_.data(), read_buf_.size(), MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return;
    }
    if (n <= 0) {
      close_incoming(in);  // the sender closed or broke the connection
      return;
    }
    in.reader.append(std::string_view(read_buf_.data(), static_cast<std::size_t>(n)));
    for (;;) {
      Result<bool> got = in.reader.next(batch);
      if (!got.is_ok() || (*got && (cluster_id_.load() == 0 || batch.cluster_id() != cluster_id_.load()))) {
        std::string why = !got.is_ok() ? std::string(got.status().message())
                          : cluster_id_.load() == 0
                              ? std::string("this store has not joined its cluster yet")
                              : fmt::format("Raft traffic of cluster {} refused by a store of cluster {}",
                                            batch.cluster_id(), cluster_id_.load());
        if (receiver_.refused) {
          receiver_.refused({got.is_ok() ? "cluster_mismatch" : "bad_frame", std::move(why)});
        }
        refused_.fetch_add(1);
        close_incoming(in);
        return;
      }
      if (!*got) {
        break;
      }
      received_.fetch_add(static_cast<std::uint64_t>(batch.messages_size()));
      if (receiver_.deliver) {
        for (auto& m : *batch.mutable_messages()) {
          receiver_.deliver(std::move(m));
        }
      }
      batch.Clear();
    }
    if (static_cast<std::size_t>(n) < read_buf_.size()) {
      return;  // drained
    }
  }
}

void TcpRaftTransport::serve_outgoing(Outgoing& o, std::uint32_t events) {
  std::lock_guard lock(o.mu);
  if (o.fd < 0) {
    return;  // closed since the wait (a later connection gets its own events)
  }
  if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0) {
    // The receiver never writes: readable means closed or failed (or a stray byte, ignored).
    char sink[256];
    ssize_t n = ::recv(o.fd, sink, sizeof sink, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
      spdlog::info("Raft connection to store {} closed by the peer", o.store_id);
      close_locked(o);
      return;
    }
  }
  if ((events & EPOLLOUT) != 0) {
    flush_locked(o);
  }
}

}  // namespace rdb
