// TsoTcpServer with a scripted serve function and raw sockets as clients: frames in
// order, untrusted input closing only its own connection, the connection limit.
#include "pd/tso_tcp_server.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <string>
#include <vector>

#include "common/socket_io.h"
#include "common/tcp_socket.h"
#include "common/tso_frame.h"

namespace rdb {
namespace {

using Clock = std::chrono::steady_clock;

class TsoTcpServerTest : public ::testing::Test {
 protected:
  void start(TsoTcpServer::Options options = {}) {
    auto s = TsoTcpServer::start(
        "127.0.0.1:0",
        [this](const pdpb::TsoRequest& req, pdpb::TsoResponse* resp) {
          if (req.count() == 13) {
            return grpc::Status(grpc::StatusCode::UNAVAILABLE, "allocation failed");
          }
          resp->set_first_timestamp(next_.fetch_add(req.count()));
          resp->set_count(req.count());
          return grpc::Status::OK;
        },
        options);
    ASSERT_TRUE(s.is_ok()) << s.status().to_string();
    server_ = std::move(s).value();
  }

  int connect() {
    auto fd = tcp_connect("127.0.0.1:" + std::to_string(server_->port()), std::chrono::seconds(5));
    EXPECT_TRUE(fd.is_ok()) << fd.status().to_string();
    if (fd.is_ok()) {
      fds_.push_back(*fd);
    }
    return fd.is_ok() ? *fd : -1;
  }

  static bool send_request(int fd, std::uint32_t count) {
    pdpb::TsoRequest req;
    req.set_count(count);
    return send_all(fd, encode_frame(kTsoFrameMagic, req.SerializeAsString()));
  }

  // The next answer on `fd`, or nullopt when the server closed the connection.
  static std::optional<pdpb::TsoResponse> answer(int fd) {
    std::string payload;
    if (!read_frame(fd, kTsoFrameMagic, kMaxTsoResponseBytes, &payload).is_ok()) {
      return std::nullopt;
    }
    pdpb::TsoResponse resp;
    EXPECT_TRUE(resp.ParseFromString(payload));
    return resp;
  }

  // Whether the server has closed `fd`: EOF, or a reset when it left unread bytes behind.
  static bool closed_by_server(int fd) {
    char c = 0;
    ssize_t n = ::recv(fd, &c, 1, 0);
    return n == 0 || (n < 0 && errno == ECONNRESET);
  }

  void TearDown() override {
    server_.reset();
    for (int fd : fds_) {
      ::close(fd);
    }
  }

  std::atomic<std::uint64_t> next_{100};
  std::unique_ptr<TsoTcpServer> server_;
  std::vector<int> fds_;
};

TEST_F(TsoTcpServerTest, AnswersPipelinedRequestsInOrder) {
  start();
  int fd = connect();
  ASSERT_TRUE(send_request(fd, 3));
  ASSERT_TRUE(send_request(fd, 5));
  ASSERT_TRUE(send_request(fd, 1));
  std::uint64_t expected = 100;
  for (std::uint32_t count : {3U, 5U, 1U}) {
    auto resp = answer(fd);
    ASSERT_TRUE(resp.has_value());
    EXPECT_EQ(resp->first_timestamp(), expected);
    EXPECT_EQ(resp->count(), count);
    expected += count;
  }
  EXPECT_EQ(server_->requests_served(), 3U);
}

// Each kind of malformed frame closes its own connection, is counted, and leaves the
// server serving others.
TEST_F(TsoTcpServerTest, AMalformedFrameClosesOnlyItsConnection) {
  start();
  int good = connect();
  ASSERT_TRUE(send_request(good, 1));
  ASSERT_TRUE(answer(good).has_value());
  const std::vector<std::string> malformed = {
      encode_frame(0x47455420, "GET / HTTP/1.1"),                               // another protocol
      encode_frame(kTsoFrameMagic, std::string(kMaxTsoRequestBytes + 1, 'x')),  // over the limit
      encode_frame(kTsoFrameMagic, std::string("\xff\xff\xff\xff", 4)),         // not a TsoRequest
  };
  std::uint64_t bad = 0;
  for (const auto& frame : malformed) {
    int fd = connect();
    ASSERT_TRUE(send_all(fd, frame));
    EXPECT_TRUE(closed_by_server(fd));
    EXPECT_EQ(server_->bad_frames(), ++bad);
  }
  ASSERT_TRUE(send_request(good, 2));
  auto resp = answer(good);
  ASSERT_TRUE(resp.has_value());
  EXPECT_EQ(resp->count(), 2U);
}

// A failed allocation ends the connection, as it ends a gRPC stream; others go on.
TEST_F(TsoTcpServerTest, AnErrorFromServeClosesTheConnection) {
  start();
  int fd = connect();
  ASSERT_TRUE(send_request(fd, 13));
  EXPECT_FALSE(answer(fd).has_value());
  int other = connect();
  ASSERT_TRUE(send_request(other, 1));
  EXPECT_TRUE(answer(other).has_value());
  EXPECT_EQ(server_->bad_frames(), 0U);
}

// Past the limit a connection is closed as it arrives; once one ends, a new one is served.
TEST_F(TsoTcpServerTest, ConnectionsPastTheLimitAreClosed) {
  TsoTcpServer::Options options;
  options.max_connections = 2;
  start(options);
  int a = connect();
  int b = connect();
  for (int fd : {a, b}) {
    ASSERT_TRUE(send_request(fd, 1));  // both are being served
    ASSERT_TRUE(answer(fd).has_value());
  }
  int c = connect();
  EXPECT_TRUE(closed_by_server(c));
  EXPECT_EQ(server_->connections_refused(), 1U);
  ::shutdown(a, SHUT_RDWR);  // its thread ends; the next accept reaps it
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  bool served = false;
  while (!served && Clock::now() < deadline) {
    int d = connect();
    served = send_request(d, 1) && answer(d).has_value();
  }
  EXPECT_TRUE(served) << "no connection was served after one of the two ended";
}

}  // namespace
}  // namespace rdb
