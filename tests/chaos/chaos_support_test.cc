// Tests of the chaos harness's own parts: the fault network (a real TCP echo
// server behind the proxy), the durability check, fault records and reports.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <thread>

#include "durability.h"
#include "etcd_watch.h"
#include "fault_network.h"
#include "report.h"
#include "support/process.h"
#include "support/temp_dir.h"
#include "workload.h"

namespace rdb::chaos {
namespace {

// Echoes every byte back, one connection at a time per thread, until destroyed.
class EchoServer {
 public:
  EchoServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(fd_, 16), 0);
    EXPECT_EQ(::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len), 0);
    address_ = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
    acceptor_ = std::thread([this] {
      while (!stop_) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, 20) <= 0) {
          continue;
        }
        int c = ::accept(fd_, nullptr, nullptr);
        if (c >= 0) {
          workers_.emplace_back([this, c] {
            char buf[1024];
            while (!stop_) {
              pollfd q{c, POLLIN, 0};
              if (::poll(&q, 1, 20) <= 0) {
                continue;
              }
              ssize_t n = ::recv(c, buf, sizeof buf, 0);
              if (n <= 0 || ::send(c, buf, static_cast<std::size_t>(n), MSG_NOSIGNAL) != n) {
                break;
              }
            }
            ::close(c);
          });
        }
      }
    });
  }
  ~EchoServer() {
    stop_ = true;
    acceptor_.join();
    for (auto& w : workers_) {
      w.join();
    }
    ::close(fd_);
  }
  const std::string& address() const { return address_; }

 private:
  int fd_ = -1;
  std::string address_;
  std::atomic<bool> stop_{false};
  std::thread acceptor_;
  std::vector<std::thread> workers_;
};

int connect_to(const std::string& address) {
  auto colon = address.rfind(':');
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(std::stoi(address.substr(colon + 1))));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  return fd;
}

// Reads what is available within a short deadline; "" on EOF or nothing.
std::string read_some(int fd) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, 2000) <= 0) {
    return "";
  }
  char buf[1024];
  ssize_t n = ::recv(fd, buf, sizeof buf, 0);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "";
}

// Opens a tunnel from node `from` to `target`; returns the socket and the proxy's status line.
std::pair<int, std::string> open_tunnel(FaultNetwork& net, const std::string& from, const std::string& target) {
  int fd = connect_to(net.proxy_for(from).value());
  std::string req = "CONNECT " + target + " HTTP/1.0\r\nHost: " + target + "\r\n\r\n";
  EXPECT_EQ(::send(fd, req.data(), req.size(), MSG_NOSIGNAL), static_cast<ssize_t>(req.size()));
  std::string reply = read_some(fd);
  return {fd, reply.substr(0, reply.find("\r\n"))};
}

// Whether the other end closed `fd` (EOF), waiting up to 200 ms for it to say so.
bool closed_by_peer(int fd) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, 200) <= 0) {
    return false;
  }
  char c;
  return ::recv(fd, &c, 1, MSG_PEEK) <= 0;
}

bool echoes(int fd) {
  return ::send(fd, "ping", 4, MSG_NOSIGNAL) == 4 && read_some(fd) == "ping";
}

TEST(FaultNetworkTest, TunnelsCarryTrafficUntilTheLinkIsCutThenRefuse) {
  EchoServer echo;
  FaultNetwork net;
  net.register_address(echo.address(), "s2");
  auto [fd, status] = open_tunnel(net, "s1", echo.address());
  EXPECT_EQ(status, "HTTP/1.0 200 Connection established");
  EXPECT_TRUE(echoes(fd));

  net.cut("s1", "s2");
  // The open tunnel is closed: the next read sees EOF (polled with a deadline).
  EXPECT_TRUE(rdb::testing::poll_until([&] { return closed_by_peer(fd); }, std::chrono::seconds(5)));
  ::close(fd);
  auto [refused_fd, refused] = open_tunnel(net, "s1", echo.address());
  EXPECT_EQ(refused, "HTTP/1.0 503 Service Unavailable");
  ::close(refused_fd);
  EXPECT_EQ(net.tunnels_refused(), 1u);

  // One way only: s2's proxy still reaches s1's side (here: the same echo, named s2 -> s1 not cut).
  net.register_address(echo.address(), "s1");
  auto [other_fd, other] = open_tunnel(net, "s2", echo.address());
  EXPECT_EQ(other, "HTTP/1.0 200 Connection established");
  ::close(other_fd);

  net.heal();
  net.register_address(echo.address(), "s2");
  auto [healed_fd, healed] = open_tunnel(net, "s1", echo.address());
  EXPECT_EQ(healed, "HTTP/1.0 200 Connection established");
  EXPECT_TRUE(echoes(healed_fd));
  ::close(healed_fd);
}

// PD members dial each other while the group starts, before the harness has named
// their addresses: such a tunnel must still be cut once its target has a name (under
// ASan the PD-partition scenario otherwise partitioned nothing).
TEST(FaultNetworkTest, ATunnelOpenedBeforeItsTargetWasNamedIsCutToo) {
  EchoServer echo;
  FaultNetwork net;
  auto [fd, status] = open_tunnel(net, "pd1", echo.address());
  EXPECT_EQ(status, "HTTP/1.0 200 Connection established");
  EXPECT_TRUE(echoes(fd));
  net.register_address(echo.address(), "pd2");
  net.cut("pd1", "pd2");
  EXPECT_TRUE(rdb::testing::poll_until([&] { return closed_by_peer(fd); }, std::chrono::seconds(5)));
  ::close(fd);
}

TEST(FaultNetworkTest, IsolateCutsBothDirectionsToEveryKnownNode) {
  FaultNetwork net;
  net.register_address("127.0.0.1:1", "s1");
  net.register_address("127.0.0.1:2", "s2");
  net.register_address("127.0.0.1:3", "pd");
  net.isolate("s1");
  EXPECT_TRUE(net.is_cut("s1", "s2"));
  EXPECT_TRUE(net.is_cut("s2", "s1"));
  EXPECT_TRUE(net.is_cut("s1", "pd"));
  EXPECT_FALSE(net.is_cut("s2", "pd"));
  net.heal();
  EXPECT_FALSE(net.is_cut("s1", "s2"));
}

TEST(FaultNetworkTest, EnvironmentPointsGrpcAtTheNodesProxy) {
  FaultNetwork net;
  auto env = net.env_for("s1");
  ASSERT_TRUE(env.is_ok());
  EXPECT_EQ(env->front(), "grpc_proxy=http://" + net.proxy_for("s1").value());
}

Operation log_put(std::uint64_t id, const std::string& value, Outcome outcome) {
  Operation op;
  op.id = id;
  op.client = 1;
  op.key = std::string(kLogPrefix) + value;
  op.kind = OpKind::kRawPut;
  op.value = value;
  op.invoke_ns = id * 10;
  op.complete_ns = id * 10 + 5;
  op.outcome = outcome;
  return op;
}

Operation final_read(std::uint64_t id, const std::string& key, std::optional<std::string> value) {
  Operation op;
  op.id = id;
  op.client = kFinalReader;
  op.key = key;
  op.kind = OpKind::kRawGet;
  op.invoke_ns = 1000 + id;
  op.complete_ns = 1001 + id;
  op.found = value.has_value();
  op.result_value = value.value_or("");
  return op;
}

TEST(DurabilityTest, AcknowledgedWritesReadBackPass) {
  std::vector<Operation> h = {log_put(1, "a", Outcome::kOk),      log_put(2, "b", Outcome::kUnknown),
                              log_put(3, "c", Outcome::kUnknown), final_read(4, "chaos/log/a", "a"),
                              final_read(5, "chaos/log/b", "b"),  final_read(6, "chaos/log/c", std::nullopt)};
  auto v = check_durability(h);
  EXPECT_TRUE(v.ok) << (v.problems.empty() ? "" : v.problems.front());
  EXPECT_EQ(v.acknowledged, 1u);
  EXPECT_EQ(v.read_back, 1u);
  EXPECT_EQ(v.unknown_applied, 1u);
  EXPECT_EQ(v.unknown_lost, 1u);
}

TEST(DurabilityTest, LostAcknowledgedWriteFails) {
  std::vector<Operation> h = {log_put(1, "a", Outcome::kOk), final_read(2, "chaos/log/a", std::nullopt)};
  auto v = check_durability(h);
  ASSERT_FALSE(v.ok);
  EXPECT_NE(v.problems.front().find("LOST acknowledged write"), std::string::npos) << v.problems.front();
}

TEST(DurabilityTest, FailedWriteThatWasAppliedFails) {
  std::vector<Operation> h = {log_put(1, "a", Outcome::kFailed), final_read(2, "chaos/log/a", "a")};
  auto v = check_durability(h);
  ASSERT_FALSE(v.ok);
  EXPECT_NE(v.problems.front().find("reported as failed was applied"), std::string::npos) << v.problems.front();
}

TEST(DurabilityTest, FailedFinalReadAndMissingReadBackFail) {
  Operation failed = final_read(2, "chaos/0", std::nullopt);
  failed.outcome = Outcome::kFailed;
  std::vector<Operation> h = {log_put(1, "a", Outcome::kOk), failed};
  auto v = check_durability(h);
  ASSERT_FALSE(v.ok);
  EXPECT_EQ(v.problems.size(), 2u);  // the failed read, and the write never read back
}

TEST(HistoryFaultsTest, FaultLinesRoundTripAndAreSkippedAsOperations) {
  rdb::testing::TempDir dir;
  Recorder rec;
  auto handle = rec.fault_started("partition-leader", "s2");
  Operation op = log_put(1, "a", Outcome::kOk);
  rec.record(op);
  rec.fault_healed(handle);
  std::string path = dir.sub("h.jsonl");
  ASSERT_TRUE(rec.write(path).is_ok());
  auto h = read_history_file(path);
  ASSERT_TRUE(h.is_ok()) << h.status().to_string();
  ASSERT_EQ(h->faults.size(), 1u);
  EXPECT_EQ(h->faults[0].kind, "partition-leader");
  EXPECT_EQ(h->faults[0].target, "s2");
  EXPECT_LE(h->faults[0].start_ns, h->faults[0].end_ns);
  ASSERT_EQ(h->operations.size(), 1u);
  EXPECT_EQ(read_history(path)->size(), 1u);
  EXPECT_FALSE(parse_fault_line(R"({"fault":"kill","start_ns":5,"end_ns":2})").is_ok());
}

// Times, versions and ids beyond 32 bits survive the file (a run longer than 2.1 s has them).
TEST(HistoryFaultsTest, LargeNumbersRoundTrip) {
  Operation op;
  op.id = 7;
  op.client = 5'000'000'000ULL;
  op.key = "chaos/0";
  op.kind = OpKind::kCas;
  op.expected_version = 6'000'000'000ULL;
  op.value = "v";
  op.invoke_ns = 4'291'669'600ULL;
  op.complete_ns = 600'000'000'000ULL;
  op.succeeded = true;
  op.version = 6'000'000'001ULL;
  auto back = parse_json_line(to_json_line(op));
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_EQ(back->client, op.client);
  EXPECT_EQ(back->expected_version, op.expected_version);
  EXPECT_EQ(back->invoke_ns, op.invoke_ns);
  EXPECT_EQ(back->complete_ns, op.complete_ns);
  EXPECT_EQ(back->version, op.version);
}

TEST(ReportTest, TextAndHtmlShowOutcomesFaultsAndVerdict) {
  RunSummary run;
  run.scenario = "kill-leader";
  run.seed = 9;
  run.history.operations = {log_put(1, "a", Outcome::kOk), log_put(2, "b", Outcome::kUnknown),
                            final_read(3, "chaos/log/a", "a")};
  run.history.faults = {{"kill", "s1", 12, 20}};
  run.durability = check_durability(run.history.operations);
  std::string text = text_report(run);
  EXPECT_NE(text.find("operations: 3 (ok 2, failed 0, unknown 1)"), std::string::npos) << text;
  EXPECT_NE(text.find("kill s1"), std::string::npos) << text;
  EXPECT_NE(text.find("verdict: PASS"), std::string::npos) << text;
  std::string html = html_report(run);
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_NE(html.find("fill-opacity='0.18'"), std::string::npos) << "no shaded fault window";
  EXPECT_NE(html.find("<title>kill s1"), std::string::npos);

  run.durability.ok = false;
  EXPECT_NE(text_report(run).find("verdict: FAIL"), std::string::npos);
}

// The etcd watch checker catches each kind of broken watch, and passes a faithful one.
EtcdWatchResult watched(std::vector<EtcdEvent> events) {
  EtcdWatchResult r;
  r.set_up = true;
  r.writes = {{"k", "v1", 10, true}, {"k", "", 20, true}, {"k", "v3", 0, false}, {"j", "v4", 30, true}};
  r.seen = {{{"k", "v1", false, 10}, {"k", "", true, 20}, {"j", "v4", false, 30}}, std::move(events)};
  check_etcd_watch(r);
  return r;
}

TEST(EtcdWatchCheckTest, FindsMissedRepeatedReorderedAndInventedEvents) {
  const EtcdEvent put1{"k", "v1", false, 10}, del{"k", "", true, 20}, put4{"j", "v4", false, 30};
  EXPECT_TRUE(watched({put1, del, put4}).ok()) << watched({put1, del, put4}).violation;
  // A write of unknown outcome may show up (it was applied), once, where it committed.
  EXPECT_TRUE(watched({put1, del, {"k", "v3", false, 25}, put4}).violation.find("different histories") !=
              std::string::npos)
      << "the first watcher did not see it: the histories differ";
  EXPECT_NE(watched({put1, put4}).violation.find("missed the delete of k"), std::string::npos);
  EXPECT_NE(watched({put1, del, del, put4}).violation.find("seen twice"), std::string::npos);
  EXPECT_NE(watched({put1, put4, del}).violation.find("out of order"), std::string::npos);
  EXPECT_NE(watched({put1, del, {"k", "never", false, 25}, put4}).violation.find("never written"), std::string::npos);
  EXPECT_NE(watched({put1, del, {"j", "v4", false, 31}}).violation.find("acknowledged at 30"), std::string::npos);
  EXPECT_NE(watched({put1, del, {"j", "", true, 30}, put4}).violation.find("no one asked for"), std::string::npos);
}

}  // namespace
}  // namespace rdb::chaos
