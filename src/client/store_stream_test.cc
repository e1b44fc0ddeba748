// StoreStream against an in-process fake store whose BatchCommands behaviour the
// test controls: answer (in reverse order), fail the stream, or hold requests.
#include "client/store_stream.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace rdb {
namespace {

using Request = kvrpc::BatchCommandsRequest::Request;
using Clock = std::chrono::steady_clock;

enum class Mode { kAnswer, kFail, kHold };

class FakeStore final : public kvrpc::Kv::CallbackService {
 public:
  std::atomic<Mode> mode{Mode::kAnswer};
  std::atomic<int> streams{0};
  // In kAnswer mode, every this-many-th message the store receives fails its stream
  // instead (0: never).
  std::atomic<int> fail_every{0};
  std::atomic<int> messages{0};

  grpc::ServerBidiReactor<kvrpc::BatchCommandsRequest, kvrpc::BatchCommandsResponse>* BatchCommands(
      grpc::CallbackServerContext*) override {
    ++streams;
    return new Stream(*this);  // NOLINT(cppcoreguidelines-owning-memory): deletes itself in OnDone
  }

 private:
  // Ping-pong: read a message, answer all of it in one message, read the next.
  class Stream final : public grpc::ServerBidiReactor<kvrpc::BatchCommandsRequest, kvrpc::BatchCommandsResponse> {
   public:
    explicit Stream(FakeStore& store) : store_(store) { StartRead(&in_); }
    void OnReadDone(bool ok) override {
      if (!ok) {
        Finish(grpc::Status::OK);
        return;
      }
      const int every = store_.fail_every.load();
      if (every > 0 && ++store_.messages % every == 0) {
        Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "boom"));
        return;
      }
      switch (store_.mode.load()) {
        case Mode::kFail:
          Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "boom"));
          return;
        case Mode::kHold:
          StartRead(&in_);  // never answered; the client's cancellation ends the stream
          return;
        case Mode::kAnswer:
          break;
      }
      out_.Clear();
      for (int i = in_.requests_size() - 1; i >= 0; --i) {
        out_.add_request_ids(in_.request_ids(i));
        auto* r = out_.add_responses();
        if (in_.requests(i).raw_get().key() == "bad") {
          r->set_status_code(static_cast<std::uint32_t>(grpc::StatusCode::INVALID_ARGUMENT));
          r->set_status_message("bad key");
        } else {
          r->mutable_raw_get()->set_value("value of " + in_.requests(i).raw_get().key());
        }
      }
      StartWrite(&out_);
    }
    void OnWriteDone(bool ok) override {
      if (ok) {
        StartRead(&in_);
      }
    }
    void OnDone() override { delete this; }  // NOLINT(cppcoreguidelines-owning-memory)

   private:
    FakeStore& store_;
    kvrpc::BatchCommandsRequest in_;
    kvrpc::BatchCommandsResponse out_;
  };
};

Request get_of(const std::string& key) {
  Request r;
  r.mutable_raw_get()->set_key(key);
  return r;
}

// Collects replies and lets the test wait for a number of them.
class Replies {
 public:
  StoreStream::Callback add(const std::string& key = "") {
    return [this, key](StoreReply reply) {
      std::lock_guard lock(mu_);
      got_.push_back({key, std::move(reply)});
      cv_.notify_all();
    };
  }
  bool wait_for(std::size_t n) {
    std::unique_lock lock(mu_);
    return cv_.wait_until(lock, Clock::now() + std::chrono::seconds(20), [&] { return got_.size() >= n; });
  }
  std::vector<std::pair<std::string, StoreReply>> take() {
    std::lock_guard lock(mu_);
    return std::move(got_);
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::pair<std::string, StoreReply>> got_;
};

class StoreStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&store_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials());
  }
  void TearDown() override { server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1)); }

  FakeStore store_;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(StoreStreamTest, EveryCallerGetsItsOwnAnswerWhateverTheOrder) {
  StoreStream stream(channel_);
  Replies replies;
  constexpr int kCalls = 1000;
  for (int i = 0; i < kCalls; ++i) {
    std::string key = "k" + std::to_string(i);
    stream.call(get_of(key), replies.add(key));
  }
  ASSERT_TRUE(replies.wait_for(kCalls));
  auto got = replies.take();
  ASSERT_EQ(got.size(), static_cast<std::size_t>(kCalls));
  std::set<std::string> seen;
  for (auto& [key, reply] : got) {
    ASSERT_TRUE(reply.status.ok()) << reply.status.error_message();
    EXPECT_EQ(reply.response.raw_get().value(), "value of " + key);
    seen.insert(key);
  }
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(kCalls)) << "some caller was answered twice";
  // Requests queued while a message was being written shared the next one.
  EXPECT_LT(stream.messages_sent(), static_cast<std::uint64_t>(kCalls));
  EXPECT_EQ(store_.streams.load(), 1);
}

TEST_F(StoreStreamTest, APerRequestErrorReachesOnlyThatCaller) {
  StoreStream stream(channel_);
  Replies replies;
  stream.call(get_of("bad"), replies.add("bad"));
  stream.call(get_of("good"), replies.add("good"));
  ASSERT_TRUE(replies.wait_for(2));
  for (auto& [key, reply] : replies.take()) {
    if (key == "bad") {
      EXPECT_EQ(reply.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
      EXPECT_EQ(reply.status.error_message(), "bad key");
    } else {
      EXPECT_TRUE(reply.status.ok());
      EXPECT_EQ(reply.response.raw_get().value(), "value of good");
    }
  }
}

TEST_F(StoreStreamTest, ABrokenStreamFailsItsRequestsAndTheNextCallReconnects) {
  StoreStream stream(channel_);
  store_.mode = Mode::kFail;
  Replies failed;
  stream.call(get_of("a"), failed.add("a"));
  ASSERT_TRUE(failed.wait_for(1));
  auto got = failed.take();
  EXPECT_EQ(got[0].second.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(got[0].second.status.error_message(), "boom");
  EXPECT_TRUE(got[0].second.maybe_sent) << "the request was written before the stream broke";

  store_.mode = Mode::kAnswer;
  // The broken stream is replaced on the next call; poll until the fake has seen the new stream.
  Replies ok;
  stream.call(get_of("b"), ok.add("b"));
  ASSERT_TRUE(ok.wait_for(1));
  auto second = ok.take();
  EXPECT_TRUE(second[0].second.status.ok()) << second[0].second.status.error_message();
  EXPECT_EQ(store_.streams.load(), 2);
}

TEST_F(StoreStreamTest, DestroyingTheStreamAnswersEveryPendingRequest) {
  store_.mode = Mode::kHold;
  Replies replies;
  {
    StoreStream stream(channel_);
    for (int i = 0; i < 10; ++i) {
      stream.call(get_of("held"), replies.add());
    }
  }  // the destructor waits for every callback
  auto got = replies.take();
  ASSERT_EQ(got.size(), 10U);
  for (auto& [key, reply] : got) {
    EXPECT_FALSE(reply.status.ok());
  }
}

// Callers on many threads start writes themselves while streams break under them: every
// caller is still answered exactly once, each broken stream is replaced, and the
// destructor returns (a stream whose hold was never released would keep it waiting).
TEST_F(StoreStreamTest, CallersOnManyThreadsAreAnsweredOnceWhileStreamsBreak) {
  store_.fail_every = 5;
  Replies replies;
  constexpr int kThreads = 8;
  constexpr int kCallsPerThread = 300;
  {
    StoreStream stream(channel_);
    std::vector<std::thread> callers;
    callers.reserve(kThreads);
    for (int t = 0; t < kThreads; ++t) {
      callers.emplace_back([&, t] {
        // Each caller waits for its answer before the next call, as blocking callers do,
        // so requests travel in many small messages and streams break under them often.
        for (int i = 0; i < kCallsPerThread; ++i) {
          std::string key = "t" + std::to_string(t) + "-" + std::to_string(i);
          auto answered = std::make_shared<std::promise<void>>();
          auto record = replies.add(key);
          stream.call(get_of(key), [record, answered](StoreReply reply) {
            record(std::move(reply));
            answered->set_value();
          });
          if (answered->get_future().wait_for(std::chrono::seconds(20)) != std::future_status::ready) {
            return;  // the count below fails the test
          }
        }
      });
    }
    for (auto& c : callers) {
      c.join();
    }
    ASSERT_TRUE(replies.wait_for(static_cast<std::size_t>(kThreads) * kCallsPerThread));
  }  // the destructor waits for every stream's OnDone
  auto got = replies.take();
  ASSERT_EQ(got.size(), static_cast<std::size_t>(kThreads * kCallsPerThread)) << "some caller was answered twice";
  std::set<std::string> seen;
  int answered = 0;
  int failed = 0;
  for (auto& [key, reply] : got) {
    seen.insert(key);
    if (reply.status.ok()) {
      ++answered;
      EXPECT_EQ(reply.response.raw_get().value(), "value of " + key);
    } else {
      ++failed;
      EXPECT_EQ(reply.status.error_code(), grpc::StatusCode::UNAVAILABLE) << reply.status.error_message();
    }
  }
  EXPECT_EQ(seen.size(), got.size()) << "some caller was answered twice";
  EXPECT_GT(answered, 0);
  EXPECT_GT(failed, 0) << "no stream broke: the test did not test what it names";
  EXPECT_GT(store_.streams.load(), 1);
}

TEST(StoreStreamUnreachableTest, ARequestToNoServerFails) {
  // Port 1 on loopback: nothing listens there.
  StoreStream stream(grpc::CreateChannel("127.0.0.1:1", grpc::InsecureChannelCredentials()));
  Replies replies;
  stream.call(get_of("x"), replies.add());
  ASSERT_TRUE(replies.wait_for(1));
  EXPECT_EQ(replies.take()[0].second.status.error_code(), grpc::StatusCode::UNAVAILABLE);
}

}  // namespace
}  // namespace rdb
