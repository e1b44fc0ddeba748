#include "pd/tso_allocator.h"

#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "storage/rocks_engine.h"
#include "support/temp_dir.h"

namespace rdb {
namespace {

// An in-memory bound that can be told to fail, to check nothing is handed out unpersisted.
class FakeBoundStore final : public BoundStore {
 public:
  Result<std::uint64_t> load() override { return saved; }
  Status save(std::uint64_t bound) override {
    if (fail) {
      return ServerStatus::io_error("disk full");
    }
    saved = bound;
    ++saves;
    return Status::ok();
  }
  std::uint64_t saved = 0;
  int saves = 0;
  bool fail = false;
};

constexpr std::uint64_t kStart = 1'700'000'000'000;

TEST(TsoAllocatorTest, TimestampsStrictlyIncreaseAndBoundStaysAhead) {
  ManualClock clock(kStart);
  FakeBoundStore store;
  auto tso = TsoAllocator::create(clock, store);
  ASSERT_TRUE(tso.is_ok());
  std::uint64_t last = 0;
  for (int i = 0; i < 10000; ++i) {
    if (i % 7 == 0) {
      clock.advance(1);
    }
    std::uint32_t count = 1 + static_cast<std::uint32_t>(i % 5);
    auto first = (*tso)->allocate(count);
    ASSERT_TRUE(first.is_ok());
    ASSERT_GT(first.value(), last);
    last = first.value() + count - 1;
    ASSERT_LT(TsoAllocator::physical_of(last), store.saved) << "handed out a timestamp above the persisted bound";
  }
  EXPECT_EQ(TsoAllocator::physical_of(last), clock.now_ms());
}

TEST(TsoAllocatorTest, ClockGoingBackwardsNeverRepeats) {
  ManualClock clock(kStart);
  FakeBoundStore store;
  auto tso = TsoAllocator::create(clock, store);
  ASSERT_TRUE(tso.is_ok());
  auto before = (*tso)->allocate(10);
  ASSERT_TRUE(before.is_ok());
  clock.set(kStart - 60'000);  // a minute back
  std::uint64_t last = before.value() + 9;
  for (int i = 0; i < 1000; ++i) {
    auto ts = (*tso)->allocate(1);
    ASSERT_TRUE(ts.is_ok());
    ASSERT_GT(ts.value(), last);
    last = ts.value();
  }
  EXPECT_EQ(TsoAllocator::physical_of(last), kStart);  // physical held while the clock was behind
}

TEST(TsoAllocatorTest, LogicalOverflowMovesToNextMillisecond) {
  ManualClock clock(kStart);  // the clock stands still
  FakeBoundStore store;
  auto tso = TsoAllocator::create(clock, store);
  ASSERT_TRUE(tso.is_ok());
  std::uint64_t last = 0;
  std::uint64_t handed = 0;
  // Hand out 3.5 milliseconds' worth of logical space with the clock frozen.
  while (handed < TsoAllocator::kLogicalLimit * 7 / 2) {
    auto first = (*tso)->allocate(TsoAllocator::kMaxCount);
    ASSERT_TRUE(first.is_ok());
    ASSERT_GT(first.value(), last);
    ASSERT_LE(TsoAllocator::logical_of(first.value()) + TsoAllocator::kMaxCount, TsoAllocator::kLogicalLimit)
        << "a batch straddled the logical limit";
    last = first.value() + TsoAllocator::kMaxCount - 1;
    handed += TsoAllocator::kMaxCount;
  }
  EXPECT_EQ(TsoAllocator::physical_of(last), kStart + 3);
  // An odd count that does not fit in what is left also moves on rather than wrapping.
  auto odd = (*tso)->allocate(TsoAllocator::kMaxCount - 1);
  ASSERT_TRUE(odd.is_ok());
  auto odd2 = (*tso)->allocate(TsoAllocator::kMaxCount);
  ASSERT_TRUE(odd2.is_ok());
  EXPECT_GT(odd2.value(), odd.value() + TsoAllocator::kMaxCount - 2);
}

TEST(TsoAllocatorTest, RestartStartsAboveEverythingHandedOut) {
  ManualClock clock(kStart);
  FakeBoundStore store;
  std::uint64_t last = 0;
  {
    auto tso = TsoAllocator::create(clock, store);
    ASSERT_TRUE(tso.is_ok());
    for (int i = 0; i < 100; ++i) {
      auto ts = (*tso)->allocate(TsoAllocator::kMaxCount);  // runs physical ahead of the frozen clock
      ASSERT_TRUE(ts.is_ok());
      last = ts.value() + TsoAllocator::kMaxCount - 1;
    }
  }
  clock.set(kStart - 5'000);  // and the clock went back across the restart
  auto tso = TsoAllocator::create(clock, store);
  ASSERT_TRUE(tso.is_ok());
  auto first = (*tso)->allocate(1);
  ASSERT_TRUE(first.is_ok());
  EXPECT_GT(first.value(), last);
}

TEST(TsoAllocatorTest, FailingPersistenceHandsOutNothing) {
  ManualClock clock(kStart);
  FakeBoundStore store;
  auto tso = TsoAllocator::create(clock, store);
  ASSERT_TRUE(tso.is_ok());
  std::uint64_t bound = store.saved;
  store.fail = true;
  clock.set(bound + 10);  // past the bound: the next allocation must persist first
  auto ts = (*tso)->allocate(1);
  ASSERT_FALSE(ts.is_ok());
  EXPECT_NE(ts.status().message().find("disk full"), std::string::npos);
  store.fail = false;
  auto ok = (*tso)->allocate(1);
  ASSERT_TRUE(ok.is_ok());
  EXPECT_LT(TsoAllocator::physical_of(ok.value()), store.saved);
}

TEST(TsoAllocatorTest, RejectsBadCounts) {
  ManualClock clock(kStart);
  FakeBoundStore store;
  auto tso = TsoAllocator::create(clock, store);
  ASSERT_TRUE(tso.is_ok());
  EXPECT_EQ((*tso)->allocate(0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*tso)->allocate(TsoAllocator::kMaxCount + 1).status().code(), StatusCode::kInvalidArgument);
}

TEST(TsoAllocatorTest, ConcurrentCallersGetDisjointRanges) {
  SystemClock clock;
  FakeBoundStore store;
  auto tso = TsoAllocator::create(clock, store);
  ASSERT_TRUE(tso.is_ok());
  constexpr int kThreads = 4;
  std::vector<std::vector<std::uint64_t>> got(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 5000; ++i) {
        auto ts = (*tso)->allocate(3);
        ASSERT_TRUE(ts.is_ok());
        for (std::uint64_t k = 0; k < 3; ++k) {
          got[static_cast<std::size_t>(t)].push_back(ts.value() + k);
        }
      }
    });
  }
  for (auto& th : threads) {
    th.join();
  }
  std::set<std::uint64_t> all;
  for (const auto& v : got) {
    for (std::size_t i = 1; i < v.size(); ++i) {
      ASSERT_LT(v[i - 1], v[i]);  // each caller sees increasing timestamps
    }
    all.insert(v.begin(), v.end());
  }
  EXPECT_EQ(all.size(), static_cast<std::size_t>(kThreads) * 5000 * 3);  // no duplicates anywhere
}

TEST(TsoAllocatorTest, PersistsBoundInRocksAcrossReopen) {
  testing::TempDir dir;
  ManualClock clock(kStart);
  std::uint64_t last = 0;
  {
    auto engine = RocksEngine::open(dir.path());
    ASSERT_TRUE(engine.is_ok());
    MetaBoundStore store(**engine, "tso_bound_ms");
    auto tso = TsoAllocator::create(clock, store);
    ASSERT_TRUE(tso.is_ok());
    for (int i = 0; i < 20; ++i) {
      auto ts = (*tso)->allocate(TsoAllocator::kMaxCount);
      ASSERT_TRUE(ts.is_ok());
      last = ts.value() + TsoAllocator::kMaxCount - 1;
    }
  }
  auto engine = RocksEngine::open(dir.path());
  ASSERT_TRUE(engine.is_ok());
  MetaBoundStore store(**engine, "tso_bound_ms");
  clock.set(kStart - 1000);
  auto tso = TsoAllocator::create(clock, store);
  ASSERT_TRUE(tso.is_ok());
  EXPECT_GT((*tso)->allocate(1).value(), last);
}

}  // namespace
}  // namespace rdb
