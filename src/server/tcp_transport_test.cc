#include "server/tcp_transport.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>
#include <thread>

#include "support/process.h"

namespace rdb {
namespace {

using namespace std::chrono_literals;

constexpr std::uint64_t kCluster = 42;

raftsvc::RaftMessage to_store(std::uint64_t store, std::uint64_t index, std::size_t payload = 8) {
  raftsvc::RaftMessage m;
  m.set_region_id(1);
  m.mutable_to_peer()->set_store_id(store);
  m.mutable_from_peer()->set_store_id(store == 1 ? 2 : 1);
  m.mutable_message()->set_index(index);
  if (payload > 0) {
    m.mutable_message()->add_entries()->set_data(std::string(payload, 'v'));
  }
  return m;
}

// Records what a transport hands to its fallback (the gRPC transport in a store).
class RecordingFallback final : public RaftTransport {
 public:
  void send(std::vector<raftsvc::RaftMessage> messages) override {
    std::lock_guard lock(mu);
    sent += messages.size();
  }
  void send_snapshot(raftsvc::RaftMessage, std::vector<std::string>, std::function<void(bool)> done) override {
    {
      std::lock_guard lock(mu);
      ++snapshots;
    }
    done(true);
  }
  std::mutex mu;
  std::size_t sent = 0;
  int snapshots = 0;
};

// Store id -> Raft address, changed by the test while transports run.
class Directory {
 public:
  void set(std::uint64_t store, std::string addr) {
    std::lock_guard lock(mu_);
    addrs_[store] = std::move(addr);
  }
  TcpRaftTransport::RaftAddressResolver resolver() {
    return [this](std::uint64_t store) -> Result<std::string> {
      std::lock_guard lock(mu_);
      auto it = addrs_.find(store);
      if (it == addrs_.end()) {
        return Status::unavailable("unknown store");
      }
      return it->second;
    };
  }

 private:
  std::mutex mu_;
  std::map<std::uint64_t, std::string> addrs_;
};

// A transport and the loop that serves it, as a store's Raft loop would.
class Node {
 public:
  Node(Directory& dir, RaftTransport& fallback, TcpRaftTransport::Options options = {}) {
    auto t = TcpRaftTransport::listen("127.0.0.1:0", dir.resolver(), fallback, options);
    EXPECT_TRUE(t.is_ok()) << t.status().to_string();
    transport = std::move(t).value();
    transport->set_cluster_id(kCluster);
    transport->set_receiver({[this](const raftsvc::RaftMessage& m) {
                               std::lock_guard lock(mu);
                               got.push_back(m.message().index());
                             },
                             [this](const raft::Rejection& why) {
                               std::lock_guard lock(mu);
                               refusals.emplace_back(why.reason);
                             }});
    loop_ = std::thread([this] {
      while (!stop_) {
        transport->wait(50ms);
        transport->serve();
      }
    });
  }
  ~Node() {
    stop_ = true;
    transport->wake();
    loop_.join();
  }
  std::string addr() const { return "127.0.0.1:" + std::to_string(transport->port()); }
  std::size_t received() {
    std::lock_guard lock(mu);
    return got.size();
  }
  std::vector<std::uint64_t> indexes() {
    std::lock_guard lock(mu);
    return got;
  }
  std::vector<std::string> refused() {
    std::lock_guard lock(mu);
    return refusals;
  }

  std::unique_ptr<TcpRaftTransport> transport;
  std::mutex mu;
  std::vector<std::uint64_t> got;
  std::vector<std::string> refusals;

 private:
  std::atomic<bool> stop_{false};
  std::thread loop_;
};

int raw_connect(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  return fd;
}

// True once the peer closed `fd` (read returns EOF or a reset) within the deadline.
bool closed_by_peer(int fd) {
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char c = 0;
  return ::recv(fd, &c, 1, 0) <= 0;
}

// An HTTP CONNECT proxy for one connection at a time: answers `status` ("200" relays the
// tunnel both ways until either end closes) and records each target asked for.
class ConnectProxy {
 public:
  explicit ConnectProxy(std::string status) : status_(std::move(status)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(fd_, 8), 0);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { run(); });
  }
  ~ConnectProxy() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
  }
  std::string url(const std::string& userinfo = "") const {
    return "http://" + userinfo + "127.0.0.1:" + std::to_string(port_);
  }
  std::vector<std::string> targets() {
    std::lock_guard lock(mu_);
    return targets_;
  }
  std::vector<std::string> heads() {
    std::lock_guard lock(mu_);
    return heads_;
  }

 private:
  void run() {
    while (!stop_) {
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) {
        return;
      }
      std::string head;
      char ch = 0;
      while (head.find("\r\n\r\n") == std::string::npos && ::recv(c, &ch, 1, 0) == 1) {
        head.push_back(ch);
      }
      std::string target = head.substr(8, head.find(' ', 8) - 8);
      {
        std::lock_guard lock(mu_);
        targets_.push_back(target);
        heads_.push_back(head);
      }
      std::string answer = "HTTP/1.0 " + status_ + " x\r\n\r\n";
      ::send(c, answer.data(), answer.size(), MSG_NOSIGNAL);
      if (status_ == "200") {
        relay(c, raw_connect(static_cast<std::uint16_t>(std::stoi(target.substr(target.rfind(':') + 1)))));
      }
      ::close(c);
    }
  }
  void relay(int a, int b) {
    pollfd p[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
    char buf[65536];
    while (!stop_ && ::poll(p, 2, 100) >= 0) {
      for (int i = 0; i < 2; ++i) {
        if ((p[i].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
          ssize_t n = ::recv(p[i].fd, buf, sizeof buf, 0);
          if (n <= 0 || ::send(p[1 - i].fd, buf, static_cast<std::size_t>(n), MSG_NOSIGNAL) != n) {
            ::close(b);
            return;
          }
        }
      }
    }
    ::close(b);
  }
  std::string status_;
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<std::string> heads_;
  std::vector<std::string> targets_;
  std::thread thread_;
};

// Set while a test runs (before any transport connects), unset after.
class ScopedProxyEnv {
 public:
  explicit ScopedProxyEnv(const std::string& url, const std::string& no_proxy = "") {
    ::setenv("grpc_proxy", url.c_str(), 1);
    ::setenv("no_grpc_proxy", no_proxy.c_str(), 1);
  }
  ~ScopedProxyEnv() {
    ::unsetenv("grpc_proxy");
    ::unsetenv("no_grpc_proxy");
  }
};

TEST(TcpRaftTransportTest, ConnectionsGoThroughGrpcProxyAndARefusalDeliversNothing) {
  Directory dir;
  RecordingFallback fallback;
  {
    ConnectProxy proxy("200");
    ScopedProxyEnv env(proxy.url());
    Node a(dir, fallback);
    Node b(dir, fallback);
    dir.set(2, b.addr());
    a.transport->send({to_store(2, 1), to_store(2, 2)});
    ASSERT_TRUE(testing::poll_until([&] { return b.received() == 2; }, 10s));
    EXPECT_EQ(proxy.targets(), std::vector<std::string>{b.addr()});
  }
  ConnectProxy cut("503");  // the chaos harness's answer for a cut link
  ScopedProxyEnv env(cut.url());
  Node a(dir, fallback);
  Node b(dir, fallback);
  dir.set(2, b.addr());
  ASSERT_TRUE(testing::poll_until(
      [&] {
        a.transport->send({to_store(2, 3)});
        return cut.targets().size() >= 2;  // refused, and tried again after the back-off
      },
      10s));
  EXPECT_EQ(b.received(), 0U);
  EXPECT_EQ(a.transport->sent(), 0U);
}

// As gRPC: credentials in the proxy URI go as Basic Proxy-Authorization; a host that
// no_grpc_proxy lists is reached directly.
TEST(TcpRaftTransportTest, ProxyCredentialsAreSentAndNoGrpcProxyHostsGoDirect) {
  Directory dir;
  RecordingFallback fallback;
  {
    ConnectProxy proxy("200");
    ScopedProxyEnv env(proxy.url("raft:pw@"));
    Node a(dir, fallback);
    Node b(dir, fallback);
    dir.set(2, b.addr());
    a.transport->send({to_store(2, 1)});
    ASSERT_TRUE(testing::poll_until([&] { return b.received() == 1; }, 10s));
    ASSERT_EQ(proxy.heads().size(), 1U);
    EXPECT_NE(proxy.heads()[0].find("\r\nProxy-Authorization: Basic cmFmdDpwdw==\r\n"), std::string::npos)
        << proxy.heads()[0];
  }
  ConnectProxy bypassed("200");
  ScopedProxyEnv env(bypassed.url(), "example.com, 0.0.1");
  Node a(dir, fallback);
  Node b(dir, fallback);
  dir.set(2, b.addr());
  a.transport->send({to_store(2, 1)});
  ASSERT_TRUE(testing::poll_until([&] { return b.received() == 1; }, 10s));
  EXPECT_TRUE(bypassed.targets().empty());
}

TEST(TcpRaftTransportTest, DeliversEveryMessageInOrderBothWays) {
  Directory dir;
  RecordingFallback fallback;
  Node a(dir, fallback);
  Node b(dir, fallback);
  dir.set(1, a.addr());
  dir.set(2, b.addr());
  for (std::uint64_t i = 0; i < 2000; i += 10) {
    std::vector<raftsvc::RaftMessage> batch;
    for (std::uint64_t j = i; j < i + 10; ++j) {
      batch.push_back(to_store(2, j));
    }
    a.transport->send(std::move(batch));
    b.transport->send({to_store(1, i)});
  }
  ASSERT_TRUE(testing::poll_until([&] { return b.received() == 2000 && a.received() == 200; }, 20s))
      << b.received() << " and " << a.received() << " arrived; dropped " << a.transport->dropped();
  auto got = b.indexes();
  for (std::uint64_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(got[i], i) << "messages to one store keep their order";
  }
  EXPECT_EQ(a.transport->sent(), 2000U);
  EXPECT_EQ(b.transport->received(), 2000U);
  EXPECT_EQ(fallback.sent, 0U);
}

TEST(TcpRaftTransportTest, LargeBatchesAreSplitIntoFramesAndArrive) {
  Directory dir;
  RecordingFallback fallback;
  TcpRaftTransport::Options small_batches;
  small_batches.max_batch_bytes = 1 << 20;
  Node a(dir, fallback, small_batches);
  Node b(dir, fallback);
  dir.set(2, b.addr());
  std::vector<raftsvc::RaftMessage> batch;
  for (std::uint64_t i = 0; i < 40; ++i) {
    batch.push_back(to_store(2, i, std::size_t{512} * 1024));  // 20 MiB in all: more than the socket buffers hold
  }
  a.transport->send(std::move(batch));
  ASSERT_TRUE(testing::poll_until([&] { return b.received() == 40; }, 30s)) << b.received() << " arrived";
  EXPECT_EQ(a.transport->dropped(), 0U);
}

TEST(TcpRaftTransportTest, AStoreWithoutARaftAddressAndSnapshotsGoThroughTheFallback) {
  Directory dir;
  RecordingFallback fallback;
  Node a(dir, fallback);
  dir.set(3, "");  // on gRPC only
  a.transport->send({to_store(3, 1), to_store(3, 2)});
  ASSERT_TRUE(testing::poll_until(
      [&] {
        std::lock_guard lock(fallback.mu);
        return fallback.sent == 2;
      },
      10s));
  a.transport->send({to_store(3, 3)});  // known now: straight to the fallback
  bool delivered = false;
  a.transport->send_snapshot(to_store(3, 4), {}, [&](bool ok) { delivered = ok; });
  std::lock_guard lock(fallback.mu);
  EXPECT_EQ(fallback.sent, 3U);
  EXPECT_EQ(fallback.snapshots, 1);
  EXPECT_TRUE(delivered);
}

TEST(TcpRaftTransportTest, ReconnectsToAStoreThatCameBackElsewhere) {
  Directory dir;
  RecordingFallback fallback;
  Node a(dir, fallback);
  auto b = std::make_unique<Node>(dir, fallback);
  dir.set(2, b->addr());
  a.transport->send({to_store(2, 1)});
  ASSERT_TRUE(testing::poll_until([&] { return b->received() == 1; }, 10s));
  b.reset();  // the store goes away
  auto b2 = std::make_unique<Node>(dir, fallback);
  dir.set(2, b2->addr());  // and comes back on another port: PD has its new address
  // Raft retransmits; so does this test, until the new connection carries a message.
  ASSERT_TRUE(testing::poll_until(
      [&] {
        a.transport->send({to_store(2, 2)});
        return b2->received() > 0;
      },
      20s));
}

TEST(TcpRaftTransportTest, GarbageAndOtherClustersCloseTheirConnectionOnly) {
  Directory dir;
  RecordingFallback fallback;
  Node a(dir, fallback);
  Node b(dir, fallback);
  dir.set(2, b.addr());

  int http = raw_connect(b.transport->port());
  std::string get = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(::send(http, get.data(), get.size(), MSG_NOSIGNAL), static_cast<ssize_t>(get.size()));
  EXPECT_TRUE(closed_by_peer(http));
  ::close(http);

  int huge = raw_connect(b.transport->port());
  std::string header = std::string("RDBT") + std::string("\xff\xff\xff\x7f", 4);  // a 2 GiB frame
  ASSERT_EQ(::send(huge, header.data(), header.size(), MSG_NOSIGNAL), 8);
  EXPECT_TRUE(closed_by_peer(huge)) << "refused on its header, nothing allocated";
  ::close(huge);

  int other = raw_connect(b.transport->port());
  raftsvc::RaftBatch foreign;
  foreign.set_cluster_id(kCluster + 1);
  *foreign.add_messages() = to_store(2, 99);
  std::string frame;
  append_raft_frame(foreign, frame);
  ASSERT_EQ(::send(other, frame.data(), frame.size(), MSG_NOSIGNAL), static_cast<ssize_t>(frame.size()));
  EXPECT_TRUE(closed_by_peer(other));
  ::close(other);

  EXPECT_EQ(b.transport->refused_connections(), 3U);
  auto refused = b.refused();
  EXPECT_EQ(std::count(refused.begin(), refused.end(), "bad_frame"), 2);
  EXPECT_EQ(std::count(refused.begin(), refused.end(), "cluster_mismatch"), 1);
  a.transport->send({to_store(2, 7)});
  ASSERT_TRUE(testing::poll_until([&] { return b.received() == 1; }, 10s)) << "the store still takes real traffic";
  EXPECT_EQ(b.indexes()[0], 7U) << "nothing of the refused frames was delivered";
}

TEST(TcpRaftTransportTest, TrafficIsRefusedUntilTheStoreJoinedItsCluster) {
  Directory dir;
  RecordingFallback fallback;
  Node a(dir, fallback);
  Node b(dir, fallback);
  b.transport->set_cluster_id(0);
  dir.set(2, b.addr());
  a.transport->send({to_store(2, 1)});
  ASSERT_TRUE(testing::poll_until([&] { return b.transport->refused_connections() >= 1; }, 10s));
  EXPECT_EQ(b.received(), 0U);
}

TEST(TcpRaftTransportTest, ConnectionsPastTheLimitAreClosed) {
  Directory dir;
  RecordingFallback fallback;
  TcpRaftTransport::Options few;
  few.max_incoming = 3;
  Node b(dir, fallback, few);
  std::vector<int> fds;
  fds.reserve(6);
  for (int i = 0; i < 6; ++i) {
    fds.push_back(raw_connect(b.transport->port()));
  }
  int closed = 0;
  for (int fd : fds) {
    timeval tv{0, 300'000};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char c = 0;
    ssize_t n = ::recv(fd, &c, 1, 0);
    closed += n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) ? 1 : 0;
    ::close(fd);
  }
  EXPECT_EQ(closed, 3) << "the first three stay open, the rest are closed";
  EXPECT_EQ(b.transport->refused_connections(), 3U);
}

TEST(TcpRaftTransportTest, AnUnreachableStoreCostsBoundedMemory) {
  Directory dir;
  RecordingFallback fallback;
  TcpRaftTransport::Options bounded;
  bounded.max_pending_messages = 100;
  bounded.connect_timeout = 100ms;
  Node a(dir, fallback, bounded);
  dir.set(2, "127.0.0.1:1");  // nothing listens there
  for (std::uint64_t i = 0; i < 1000; ++i) {
    a.transport->send({to_store(2, i)});
  }
  EXPECT_GE(a.transport->dropped(), 900U);
  EXPECT_EQ(a.transport->sent(), 0U);
}

}  // namespace
}  // namespace rdb
