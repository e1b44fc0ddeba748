// TsoBatcher against an in-process fake PD whose TSO stream the test scripts: each
// stream the client opens runs the next script (answer, hold until a second request
// arrives, break, answer NOT_LEADER, never answer); a test may also rewrite the answers
// (a hostile or broken PD).
#include "client/tso_batcher.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <limits>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/socket_io.h"
#include "common/tcp_socket.h"
#include "common/tso_frame.h"

namespace rdb {
namespace {

using Clock = std::chrono::steady_clock;

enum class Script {
  kAnswer,         // answer each request at once
  kAnswerInPairs,  // read two requests, then answer both (only a pipelining client gets answers)
  kBreakAfterTwo,  // read two requests, then fail the stream without answering
  kNotLeader,      // answer NOT_LEADER naming "pd-leader:1"
  kSilent,         // read requests, never answer
};

class FakePd final : public pdpb::PD::Service {
 public:
  explicit FakePd(std::vector<Script> scripts) : scripts_(std::move(scripts)) {}

  // Rewrites the n-th answer (from 0) before it is sent; returns how many more answers to
  // send after it unasked (copies of it).
  using Mangle = std::function<int(int n, pdpb::TsoResponse& resp)>;
  void set_mangle(Mangle mangle) {
    std::lock_guard lock(mu_);
    mangle_ = std::move(mangle);
  }

  grpc::Status Tso(grpc::ServerContext* /*ctx*/,
                   grpc::ServerReaderWriter<pdpb::TsoResponse, pdpb::TsoRequest>* stream) override {
    Script script = Script::kAnswer;
    {
      std::lock_guard lock(mu_);
      if (streams_ < scripts_.size()) {
        script = scripts_[streams_];
      }
      ++streams_;
    }
    pdpb::TsoRequest req;
    switch (script) {
      case Script::kAnswer:
        while (stream->Read(&req)) {
          count(req);
          answer(stream, req);
        }
        return grpc::Status::OK;
      case Script::kAnswerInPairs: {
        pdpb::TsoRequest second;
        while (stream->Read(&req)) {
          count(req);
          if (!stream->Read(&second)) {
            return grpc::Status::OK;
          }
          count(second);
          answer(stream, req);
          answer(stream, second);
        }
        return grpc::Status::OK;
      }
      case Script::kBreakAfterTwo:
        for (int i = 0; i < 2 && stream->Read(&req); ++i) {
          count(req);
        }
        return {grpc::StatusCode::UNAVAILABLE, "the fake PD breaks the stream"};
      case Script::kNotLeader:
        if (stream->Read(&req)) {
          count(req);
          pdpb::TsoResponse resp;
          resp.mutable_header()->mutable_error()->set_type(pdpb::NOT_LEADER);
          resp.mutable_header()->mutable_error()->set_message("not the leader");
          resp.mutable_header()->set_leader("pd-leader:1");
          stream->Write(resp);
        }
        while (stream->Read(&req)) {
        }
        return grpc::Status::OK;
      case Script::kSilent:
        while (stream->Read(&req)) {  // until the client cancels
          count(req);
        }
        return grpc::Status::OK;
    }
    return grpc::Status::OK;
  }

  // Grants `req.count` timestamps from the same counter as the stream's answers (a
  // fake TCP endpoint of this PD uses it).
  pdpb::TsoResponse grant(const pdpb::TsoRequest& req) {
    std::lock_guard lock(mu_);
    pdpb::TsoResponse resp;
    resp.set_first_timestamp(next_);
    next_ += req.count();
    resp.set_count(req.count());
    return resp;
  }

  int streams() const {
    std::lock_guard lock(mu_);
    return static_cast<int>(streams_);
  }
  int requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }
  bool wait_for_requests(int n) {
    std::unique_lock lock(mu_);
    return cv_.wait_until(lock, Clock::now() + std::chrono::seconds(20), [&] { return requests_ >= n; });
  }

 private:
  void count(const pdpb::TsoRequest& /*req*/) {
    std::lock_guard lock(mu_);
    ++requests_;
    cv_.notify_all();
  }
  void answer(grpc::ServerReaderWriter<pdpb::TsoResponse, pdpb::TsoRequest>* stream, const pdpb::TsoRequest& req) {
    pdpb::TsoResponse resp;
    int extra = 0;
    {
      std::lock_guard lock(mu_);
      resp.set_first_timestamp(next_);
      next_ += req.count();
      resp.set_count(req.count());
      if (mangle_) {
        extra = mangle_(answers_, resp);
      }
      ++answers_;
    }
    stream->Write(resp);
    for (int i = 0; i < extra; ++i) {
      stream->Write(resp);
    }
  }

  std::vector<Script> scripts_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::size_t streams_ = 0;
  int requests_ = 0;
  int answers_ = 0;
  Mangle mangle_;
  std::uint64_t next_ = 1000;
};

// The fake PD's plain-TCP TSO endpoint: one connection at a time, each request answered
// from the fake PD's counter — or, once `garbage` is set, with a frame of another protocol.
class FakeTcpTso {
 public:
  explicit FakeTcpTso(FakePd& pd) : pd_(pd) {
    auto fd = tcp_listen("127.0.0.1:0", &port_);
    EXPECT_TRUE(fd.is_ok()) << fd.status().to_string();
    listen_fd_ = fd.is_ok() ? *fd : -1;
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeTcpTso() { stop(); }
  FakeTcpTso(const FakeTcpTso&) = delete;
  FakeTcpTso& operator=(const FakeTcpTso&) = delete;

  std::string addr() const { return "127.0.0.1:" + std::to_string(port_); }
  int requests() const { return requests_.load(); }
  std::atomic<bool> garbage{false};

  // Closes the endpoint and its connection: nothing answers at addr() any more.
  void stop() {
    {
      std::lock_guard lock(mu_);
      if (stopped_) {
        return;
      }
      stopped_ = true;
      if (conn_ >= 0) {
        ::shutdown(conn_, SHUT_RDWR);
      }
    }
    ::shutdown(listen_fd_, SHUT_RDWR);
    thread_.join();
    ::close(listen_fd_);
  }

 private:
  void serve() {
    for (;;) {
      int fd = ::accept(listen_fd_, nullptr, nullptr);
      {
        std::lock_guard lock(mu_);
        if (fd < 0 || stopped_) {
          if (fd >= 0) {
            ::close(fd);
          }
          return;
        }
        conn_ = fd;
      }
      std::string payload;
      pdpb::TsoRequest req;
      while (read_frame(fd, kTsoFrameMagic, kMaxTsoRequestBytes, &payload).is_ok() && req.ParseFromString(payload)) {
        ++requests_;
        std::string out = pd_.grant(req).SerializeAsString();
        if (!send_all(fd, encode_frame(garbage.load() ? 0x47455420 : kTsoFrameMagic, out))) {
          break;
        }
      }
      std::lock_guard lock(mu_);
      conn_ = -1;
      ::close(fd);
    }
  }

  FakePd& pd_;
  std::uint16_t port_ = 0;
  int listen_fd_ = -1;
  std::mutex mu_;
  int conn_ = -1;         // guarded by mu_
  bool stopped_ = false;  // guarded by mu_
  std::atomic<int> requests_{0};
  std::thread thread_;
};

class TsoBatcherTest : public ::testing::Test {
 protected:
  void start(std::vector<Script> scripts) {
    pd_ = std::make_unique<FakePd>(std::move(scripts));
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(pd_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials());
  }
  void TearDown() override {
    if (server_) {
      server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
    }
  }

  std::unique_ptr<FakePd> pd_;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

// A caller whose request is sent while another request is unanswered.
std::future<Result<std::uint64_t>> async_get(TsoBatcher& batcher, std::uint32_t count, std::chrono::seconds patience) {
  auto promise = std::make_shared<std::promise<Result<std::uint64_t>>>();
  auto future = promise->get_future();
  batcher.get_async(count, Clock::now() + patience,
                    [promise](const Result<std::uint64_t>& r) { promise->set_value(r); });
  return future;
}

// The second request leaves while the first is unanswered: PD here answers only in
// pairs, so a client with one request per round trip would get nothing.
TEST_F(TsoBatcherTest, ASecondRequestLeavesWhileTheFirstTravels) {
  start({Script::kAnswerInPairs});
  TsoBatcher batcher(channel_, 2);
  auto first = async_get(batcher, 3, std::chrono::seconds(20));
  ASSERT_TRUE(pd_->wait_for_requests(1));
  auto second = async_get(batcher, 2, std::chrono::seconds(20));
  auto a = first.get();
  auto b = second.get();
  ASSERT_TRUE(a.is_ok()) << a.status().to_string();
  ASSERT_TRUE(b.is_ok()) << b.status().to_string();
  EXPECT_EQ(*a, 1000U);
  EXPECT_EQ(*b, 1003U) << "the second slice follows the first";
  EXPECT_EQ(batcher.most_in_flight(), 2U);
  EXPECT_EQ(batcher.requests_sent(), 2U);
}

// Both requests on a stream that breaks are sent again on the next stream.
TEST_F(TsoBatcherTest, RequestsOnABrokenStreamAreSentAgain) {
  start({Script::kBreakAfterTwo, Script::kAnswer});
  TsoBatcher batcher(channel_, 2);
  auto first = async_get(batcher, 1, std::chrono::seconds(20));
  ASSERT_TRUE(pd_->wait_for_requests(1));
  auto blocking =
      std::async(std::launch::async, [&] { return batcher.get(4, Clock::now() + std::chrono::seconds(20)); });
  auto a = first.get();
  auto b = blocking.get();
  ASSERT_TRUE(a.is_ok()) << a.status().to_string();
  ASSERT_TRUE(b.is_ok()) << b.status().to_string();
  EXPECT_NE(*a, *b);
  EXPECT_EQ(pd_->streams(), 2);
  EXPECT_GE(pd_->requests(), 3);
}

// A member that does not lead is left, its hint reported, and the batch answered by the next.
TEST_F(TsoBatcherTest, ANotLeaderAnswerMovesOnAndReportsTheHint) {
  start({Script::kNotLeader, Script::kAnswer});
  std::mutex mu;
  std::vector<std::string> hints;
  TsoBatcher batcher([this] { return channel_; },
                     [&](const std::shared_ptr<grpc::Channel>&, const std::string& hint) {
                       std::lock_guard lock(mu);
                       hints.push_back(hint);
                     });
  auto ts = batcher.get(1, Clock::now() + std::chrono::seconds(20));
  ASSERT_TRUE(ts.is_ok()) << ts.status().to_string();
  EXPECT_EQ(pd_->streams(), 2);
  std::lock_guard lock(mu);
  ASSERT_EQ(hints.size(), 1U);
  EXPECT_EQ(hints[0], "pd-leader:1");
}

// A PD that takes requests and never answers: an async caller ends at its deadline (the
// stuck stream is cancelled), and later callers get timestamps from the next stream.
TEST_F(TsoBatcherTest, ASilentStreamEndsAsyncCallersAtTheirDeadline) {
  start({Script::kSilent, Script::kAnswer});
  TsoBatcher batcher(channel_);
  auto started = Clock::now();
  auto stuck = async_get(batcher, 1, std::chrono::seconds(1));
  auto r = stuck.get();
  auto waited = Clock::now() - started;
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDeadlineExceeded) << r.status().to_string();
  EXPECT_LT(waited, std::chrono::seconds(15)) << "ended long after its 1 s deadline";
  auto later = batcher.get(1, Clock::now() + std::chrono::seconds(20));
  ASSERT_TRUE(later.is_ok()) << later.status().to_string();
  EXPECT_EQ(pd_->streams(), 2);
}

// Destroying the batcher with callers queued and a request in flight answers each once.
TEST_F(TsoBatcherTest, ShutdownAnswersEveryCallerOnce) {
  start({Script::kSilent});
  std::atomic<int> answered{0};
  std::atomic<int> unavailable{0};
  {
    TsoBatcher batcher(channel_);
    for (int i = 0; i < 10; ++i) {
      batcher.get_async(1, Clock::now() + std::chrono::seconds(60), [&](const Result<std::uint64_t>& r) {
        ++answered;
        if (!r.is_ok() && r.status().code() == StatusCode::kUnavailable) {
          ++unavailable;
        }
      });
    }
    ASSERT_TRUE(pd_->wait_for_requests(1));
  }
  EXPECT_EQ(answered.load(), 10);
  EXPECT_EQ(unavailable.load(), 10);
}

// A PD that grants another count than asked fails that request only; the stream serves on.
TEST_F(TsoBatcherTest, AWrongCountFailsItsRequestOnly) {
  start({Script::kAnswer});
  pd_->set_mangle([](int n, pdpb::TsoResponse& resp) {
    if (n == 0) {
      resp.set_count(resp.count() + 1);
    }
    return 0;
  });
  TsoBatcher batcher(channel_);
  auto bad = batcher.get(2, Clock::now() + std::chrono::seconds(20));
  ASSERT_FALSE(bad.is_ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInternal);
  EXPECT_NE(bad.status().message().find("PD granted 3 timestamps, 2 were asked"), std::string::npos)
      << bad.status().to_string();
  auto good = batcher.get(2, Clock::now() + std::chrono::seconds(20));
  ASSERT_TRUE(good.is_ok()) << good.status().to_string();
  EXPECT_EQ(pd_->streams(), 1);
}

// An answer nobody asked for is not handed out: the stream is left, and the next one serves.
TEST_F(TsoBatcherTest, AnUnaskedAnswerLeavesTheStream) {
  start({Script::kAnswer, Script::kAnswer});
  pd_->set_mangle([](int n, pdpb::TsoResponse& /*resp*/) { return n == 0 ? 1 : 0; });
  TsoBatcher batcher(channel_);
  auto first = batcher.get(1, Clock::now() + std::chrono::seconds(20));
  ASSERT_TRUE(first.is_ok()) << first.status().to_string();
  auto deadline = Clock::now() + std::chrono::seconds(20);
  while (pd_->streams() < 2 && Clock::now() < deadline) {
    // A request sent before the copy was read takes the copy for its answer: it repeats
    // the first timestamp, so it is refused, and the real answer is the unasked one then.
    auto next = batcher.get(1, Clock::now() + std::chrono::seconds(20));
    if (next.is_ok()) {
      EXPECT_GT(*next, *first);
    } else {
      EXPECT_NE(next.status().message().find("not above"), std::string::npos) << next.status().to_string();
    }
  }
  EXPECT_EQ(pd_->streams(), 2) << "the stream with the unasked answer was kept";
}

// Timestamps that would repeat or go backwards, or a range that overflows, are refused:
// nobody is handed a timestamp that is not above every one handed out before.
TEST_F(TsoBatcherTest, TimestampsThatGoBackOrOverflowAreRefused) {
  start({Script::kAnswer});
  pd_->set_mangle([](int n, pdpb::TsoResponse& resp) {
    if (n == 1) {
      resp.set_first_timestamp(resp.first_timestamp() - 1);  // overlaps the first answer
    } else if (n == 2) {
      resp.set_first_timestamp(std::numeric_limits<std::uint64_t>::max() - 1);
    } else if (n == 3) {
      resp.set_first_timestamp(0);
    }
    return 0;
  });
  TsoBatcher batcher(channel_);
  auto first = batcher.get(4, Clock::now() + std::chrono::seconds(20));
  ASSERT_TRUE(first.is_ok()) << first.status().to_string();
  auto repeated = batcher.get(4, Clock::now() + std::chrono::seconds(20));
  ASSERT_FALSE(repeated.is_ok());
  EXPECT_NE(repeated.status().message().find("not above"), std::string::npos) << repeated.status().to_string();
  for (int i = 0; i < 2; ++i) {
    auto invalid = batcher.get(4, Clock::now() + std::chrono::seconds(20));
    ASSERT_FALSE(invalid.is_ok());
    EXPECT_NE(invalid.status().message().find("invalid timestamp range"), std::string::npos)
        << invalid.status().to_string();
  }
  auto good = batcher.get(1, Clock::now() + std::chrono::seconds(20));
  ASSERT_TRUE(good.is_ok()) << good.status().to_string();
  EXPECT_GT(*good, *first + 3);
}

// A leader that names its TCP endpoint on its gRPC answers is used there from then on,
// with timestamps that keep rising across the move; when the endpoint goes away the
// batcher returns to gRPC and serves on.
TEST_F(TsoBatcherTest, AnAdvertisedTcpEndpointIsUsedAndLeftWhenItGoesAway) {
  start({Script::kAnswer, Script::kAnswer, Script::kAnswer});
  FakeTcpTso tcp(*pd_);
  const std::string tcp_addr = tcp.addr();
  pd_->set_mangle([tcp_addr](int /*n*/, pdpb::TsoResponse& resp) {
    resp.set_tso_addr(tcp_addr);
    return 0;
  });
  TsoBatcher batcher(channel_);
  std::uint64_t last = 0;
  auto next = [&] {
    auto ts = batcher.get(2, Clock::now() + std::chrono::seconds(20));
    EXPECT_TRUE(ts.is_ok()) << ts.status().to_string();
    if (ts.is_ok()) {
      EXPECT_GT(*ts, last) << "timestamps went back across a change of stream";
      last = *ts + 1;
    }
  };
  next();  // on gRPC: the answer names the endpoint
  for (int i = 0; i < 20; ++i) {
    next();
  }
  EXPECT_EQ(batcher.tcp_streams_opened(), 1U);
  EXPECT_GE(tcp.requests(), 19) << "the requests after the first answer go to the TCP endpoint";
  EXPECT_EQ(pd_->streams(), 1) << "leaving gRPC for TCP is not a broken stream (no reconnect on gRPC)";
  tcp.stop();
  for (int i = 0; i < 5; ++i) {
    next();  // the TCP stream fails; its request is sent again on gRPC
  }
  EXPECT_EQ(pd_->streams(), 2) << "back on gRPC, and kept there (the endpoint is not retried at once)";
  EXPECT_EQ(batcher.tcp_streams_opened(), 1U);
}

// An endpoint that answers in frames of another protocol fails its stream; the batcher
// returns to gRPC rather than dialling it again for every request.
TEST_F(TsoBatcherTest, ATcpEndpointThatSendsGarbageIsLeftForGrpc) {
  start({Script::kAnswer, Script::kAnswer});
  FakeTcpTso tcp(*pd_);
  tcp.garbage = true;
  const std::string tcp_addr = tcp.addr();
  pd_->set_mangle([tcp_addr](int /*n*/, pdpb::TsoResponse& resp) {
    resp.set_tso_addr(tcp_addr);
    return 0;
  });
  TsoBatcher batcher(channel_);
  for (int i = 0; i < 5; ++i) {
    auto ts = batcher.get(1, Clock::now() + std::chrono::seconds(20));
    ASSERT_TRUE(ts.is_ok()) << ts.status().to_string();
  }
  EXPECT_EQ(batcher.tcp_streams_opened(), 1U);
  EXPECT_EQ(tcp.requests(), 1);
  EXPECT_EQ(pd_->streams(), 2);
}

// What a member names as its endpoint is checked before it is dialled: anything but
// HOST:PORT is ignored, and TSO stays on gRPC.
TEST_F(TsoBatcherTest, AMalformedTcpEndpointIsIgnored) {
  const std::vector<std::string> malformed = {"no port", "127.0.0.1:0", "127.0.0.1:99999",
                                              std::string(300, 'a') + ":1"};
  for (const std::string& bad : malformed) {
    SCOPED_TRACE(bad);
    start({Script::kAnswer});
    pd_->set_mangle([bad](int /*n*/, pdpb::TsoResponse& resp) {
      resp.set_tso_addr(bad);
      return 0;
    });
    {
      TsoBatcher batcher(channel_);
      for (int i = 0; i < 3; ++i) {
        auto ts = batcher.get(1, Clock::now() + std::chrono::seconds(20));
        ASSERT_TRUE(ts.is_ok()) << ts.status().to_string();
      }
      EXPECT_EQ(batcher.tcp_streams_opened(), 0U);
      EXPECT_EQ(pd_->streams(), 1);
    }  // the batcher goes before its PD
    TearDown();
  }
}

}  // namespace
}  // namespace rdb
