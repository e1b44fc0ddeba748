#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <string>

#include "common/address.h"
#include "common/http_status_server.h"
#include "common/limits.h"
#include "common/metrics.h"
#include "common/parse.h"
#include "common/rate_limiter.h"
#include "common/result.h"

namespace rdb {
namespace {

TEST(StatusTest, OkAndErrorRendering) {
  EXPECT_TRUE(Status::ok().is_ok());
  EXPECT_EQ(Status::ok().to_string(), "OK");
  Status s = Status::invalid_argument("key is empty");
  EXPECT_FALSE(s.is_ok());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.to_string(), "INVALID_ARGUMENT: key is empty");
  EXPECT_EQ(s.with_context("raw_put").message(), "raw_put: key is empty");
}

Result<int> parse_positive(int v) {
  if (v <= 0) {
    return Status::invalid_argument("not positive");
  }
  return v;
}

Status doubled(int v, int* out) {
  RDB_ASSIGN_OR_RETURN(int x, parse_positive(v));
  *out = 2 * x;
  return Status::ok();
}

TEST(ResultTest, ValueAndErrorPropagation) {
  int out = 0;
  EXPECT_TRUE(doubled(4, &out).is_ok());
  EXPECT_EQ(out, 8);
  Status s = doubled(-1, &out);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(out, 8);
}

TEST(LimitsTest, KeyValueScanLimitsNameTheLimit) {
  EXPECT_TRUE(validate_key("k").is_ok());
  EXPECT_TRUE(validate_key(std::string(kMaxKeySize, 'k')).is_ok());
  Status empty = validate_key("");
  EXPECT_EQ(empty.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(empty.message().find("empty"), std::string::npos);
  Status big = validate_key(std::string(kMaxKeySize + 1, 'k'));
  EXPECT_NE(big.message().find("8 KiB"), std::string::npos);
  EXPECT_TRUE(validate_value(std::string(kMaxValueSize, 'v')).is_ok());
  EXPECT_NE(validate_value(std::string(kMaxValueSize + 1, 'v')).message().find("8 MiB"), std::string::npos);
  EXPECT_TRUE(validate_scan_limit(1).is_ok());
  EXPECT_TRUE(validate_scan_limit(kMaxScanLimit).is_ok());
  EXPECT_NE(validate_scan_limit(kMaxScanLimit + 1).message().find("10240"), std::string::npos);
  EXPECT_FALSE(validate_scan_limit(0).is_ok());
  EXPECT_TRUE(validate_range("a", "", false).is_ok());
  EXPECT_FALSE(validate_range("a", "", true).is_ok());
  EXPECT_FALSE(validate_range("b", "a", false).is_ok());
  EXPECT_FALSE(validate_range("a", "a", false).is_ok());
  EXPECT_FALSE(validate_batch_size(0).is_ok());
  EXPECT_FALSE(validate_batch_size(kMaxBatchKeys + 1).is_ok());
}

TEST(AddressTest, ParsesHostPort) {
  auto a = parse_host_port("127.0.0.1:2379");
  ASSERT_TRUE(a.is_ok());
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 2379);
  auto v6 = parse_host_port("[::1]:80");
  ASSERT_TRUE(v6.is_ok());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->to_string(), "[::1]:80");
  EXPECT_FALSE(parse_host_port("localhost").is_ok());
  EXPECT_FALSE(parse_host_port("localhost:").is_ok());
  EXPECT_FALSE(parse_host_port("localhost:99999").is_ok());
  EXPECT_FALSE(parse_host_port("localhost:0").is_ok());
  EXPECT_TRUE(parse_host_port("localhost:0", true).is_ok());
  EXPECT_FALSE(parse_host_port("localhost:12ab").is_ok());
}

TEST(MetricsTest, RendersCountersHistogramsGauges) {
  MetricsRegistry reg;
  reg.counter("rdb_requests_total", "Requests", "method=\"RawPut\"").inc(3);
  reg.histogram("rdb_latency_seconds", "Latency", "method=\"RawPut\"").observe(std::chrono::microseconds(100));
  reg.gauge("rdb_up", "Up", [] { return 1.0; });
  std::string text = reg.render_prometheus();
  EXPECT_NE(text.find("rdb_requests_total{method=\"RawPut\"} 3"), std::string::npos) << text;
  EXPECT_NE(text.find("rdb_latency_seconds_count{method=\"RawPut\"} 1"), std::string::npos) << text;
  EXPECT_NE(text.find("le=\"+Inf\"} 1"), std::string::npos) << text;
  EXPECT_NE(text.find("rdb_up 1"), std::string::npos) << text;
}

std::string http_get(std::uint16_t port, const std::string& path) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return "";
  }
  std::string req = "GET " + path + " HTTP/1.0\r\n\r\n";
  [[maybe_unused]] auto w = ::write(fd, req.data(), req.size());
  std::string out;
  char buf[1024];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof(buf))) > 0) {
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

TEST(HttpStatusServerTest, ServesRoutesAnd404) {
  auto server =
      HttpStatusServer::start({"127.0.0.1", 0}, {{"/status", {"application/json", [] { return "{\"ok\":true}"; }}}});
  ASSERT_TRUE(server.is_ok()) << server.status().to_string();
  std::uint16_t port = (*server)->port();
  ASSERT_NE(port, 0);
  std::string ok = http_get(port, "/status");
  EXPECT_NE(ok.find("200 OK"), std::string::npos);
  EXPECT_NE(ok.find("{\"ok\":true}"), std::string::npos);
  EXPECT_NE(http_get(port, "/nope").find("404"), std::string::npos);
}

TEST(HttpStatusServerTest, PortInUseIsAClearError) {
  auto first = HttpStatusServer::start({"127.0.0.1", 0}, {});
  ASSERT_TRUE(first.is_ok());
  auto second = HttpStatusServer::start({"127.0.0.1", (*first)->port()}, {});
  ASSERT_FALSE(second.is_ok());
  EXPECT_NE(second.status().message().find("cannot listen"), std::string::npos);
}

}  // namespace
TEST(ParseTest, SplitListKeepsNonEmptyItems) {
  EXPECT_EQ(split_list("a,b,,c"), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(split_list(""), std::vector<std::string>{});
  EXPECT_EQ(split_list(",x,"), std::vector<std::string>{"x"});
}

}  // namespace rdb

namespace rdb {
namespace {

// Pacing can only make a stream slower: 1,100 bytes at 1,000 B/s cannot pass in
// under a second (the first acquisition goes at once). No upper bound is asserted.
TEST(RateLimiterTest, PacesToTheRateAndStopWakesWaiters) {
  RateLimiter unlimited;
  EXPECT_TRUE(unlimited.acquire(std::uint64_t{1} << 40));
  RateLimiter limiter(1000);
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 12; ++i) {
    ASSERT_TRUE(limiter.acquire(100));
  }
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1100));

  RateLimiter slow(1);
  ASSERT_TRUE(slow.acquire(1'000'000));  // the next caller would wait ~11 days
  auto waiter = std::async(std::launch::async, [&] { return slow.acquire(1); });
  slow.stop();
  ASSERT_EQ(waiter.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_FALSE(waiter.get());
  EXPECT_FALSE(slow.acquire(1)) << "stopped for good";
}

}  // namespace
}  // namespace rdb

namespace rdb {
namespace {

TEST(ParseTest, DurationsTakeUnitsOrPlainSecondsAndRefuseTheRest) {
  using std::chrono::milliseconds;
  EXPECT_EQ(*parse_duration("10m", "d"), milliseconds(600'000));
  EXPECT_EQ(*parse_duration("30", "d"), milliseconds(30'000));
  EXPECT_EQ(*parse_duration("1h30m", "d"), milliseconds(5'400'000));
  EXPECT_EQ(*parse_duration("250ms", "d"), milliseconds(250));
  EXPECT_EQ(*parse_duration("0s", "d"), milliseconds(0));
  for (const char* bad : {"", "m", "10x", "-5s", "1.5h", "10m!", "99999999999999999999s"}) {
    auto r = parse_duration(bad, "--gc-life-time");
    ASSERT_FALSE(r.is_ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("--gc-life-time"), std::string::npos);
  }
}

}  // namespace
}  // namespace rdb
