#include "floor.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "support/temp_dir.h"

namespace rdb::bench {
namespace {

using namespace std::chrono_literals;

TEST(FloorTest, FdatasyncRecordsEveryAppendAndRemovesItsFile) {
  testing::TempDir dir;
  auto hist = measure_fdatasync(dir.path(), 50ms, 4096);
  ASSERT_TRUE(hist.is_ok()) << hist.status().to_string();
  EXPECT_GT(hist->count(), 0U);
  EXPECT_GT(hist->percentile(0.5), 0U);
  EXPECT_LE(hist->percentile(0.5), hist->max());
  EXPECT_TRUE(std::filesystem::is_empty(dir.path())) << "the scratch file was left behind";
}

TEST(FloorTest, FdatasyncRefusesAMissingDirAndAnEmptyBlock) {
  testing::TempDir dir;
  auto missing = measure_fdatasync(dir.sub("nope"), 10ms, 4096);
  ASSERT_FALSE(missing.is_ok());
  EXPECT_NE(missing.status().message().find(dir.sub("nope")), std::string::npos) << missing.status().to_string();
  auto empty = measure_fdatasync(dir.path(), 10ms, 0);
  ASSERT_FALSE(empty.is_ok());
  EXPECT_EQ(empty.status().code(), StatusCode::kInvalidArgument);
}

TEST(FloorTest, LoopbackRoundTripsAreTimedAndTheEchoThreadEnds) {
  auto hist = measure_loopback_rtt(50ms, 128);
  ASSERT_TRUE(hist.is_ok()) << hist.status().to_string();
  EXPECT_GT(hist->count(), 0U);
  EXPECT_GT(hist->percentile(0.5), 0U);
  // A message bigger than the socket buffers still goes round (read and write loop).
  auto big = measure_loopback_rtt(20ms, 1 << 20);
  ASSERT_TRUE(big.is_ok()) << big.status().to_string();
  EXPECT_GT(big->count(), 0U);
  EXPECT_EQ(measure_loopback_rtt(10ms, 0).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace rdb::bench
