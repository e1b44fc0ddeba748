#include "pd/id_allocator.h"

#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "storage/rocks_engine.h"
#include "support/temp_dir.h"

namespace rdb {
namespace {

TEST(IdAllocatorTest, UniqueIncreasingAndPersistentAcrossReopen) {
  testing::TempDir dir;
  std::set<std::uint64_t> seen;
  std::uint64_t last = 0;
  for (int round = 0; round < 3; ++round) {
    auto engine = RocksEngine::open(dir.path());
    ASSERT_TRUE(engine.is_ok());
    MetaBoundStore store(**engine, "id_bound");
    auto ids = IdAllocator::create(store, /*step=*/10);
    ASSERT_TRUE(ids.is_ok());
    for (int i = 0; i < 25; ++i) {
      std::uint32_t count = 1 + static_cast<std::uint32_t>(i % 3);
      auto first = (*ids)->allocate(count);
      ASSERT_TRUE(first.is_ok());
      ASSERT_GT(first.value(), last);
      for (std::uint32_t k = 0; k < count; ++k) {
        ASSERT_TRUE(seen.insert(first.value() + k).second) << "id reused: " << first.value() + k;
      }
      last = first.value() + count - 1;
    }
  }
  EXPECT_GE(*seen.begin(), 1u);
}

TEST(IdAllocatorTest, ConcurrentAllocationIsUnique) {
  testing::TempDir dir;
  auto engine = RocksEngine::open(dir.path());
  ASSERT_TRUE(engine.is_ok());
  MetaBoundStore store(**engine, "id_bound");
  auto ids = IdAllocator::create(store);
  ASSERT_TRUE(ids.is_ok());
  std::vector<std::vector<std::uint64_t>> got(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        got[static_cast<std::size_t>(t)].push_back((*ids)->allocate().value());
      }
    });
  }
  for (auto& th : threads) {
    th.join();
  }
  std::set<std::uint64_t> all;
  for (const auto& v : got) {
    all.insert(v.begin(), v.end());
  }
  EXPECT_EQ(all.size(), 8000u);
}

TEST(IdAllocatorTest, RejectsBadCount) {
  testing::TempDir dir;
  auto engine = RocksEngine::open(dir.path());
  ASSERT_TRUE(engine.is_ok());
  MetaBoundStore store(**engine, "id_bound");
  auto ids = IdAllocator::create(store);
  ASSERT_TRUE(ids.is_ok());
  EXPECT_EQ((*ids)->allocate(0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*ids)->allocate(IdAllocator::kMaxCount + 1).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace rdb
