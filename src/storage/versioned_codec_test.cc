#include "storage/versioned_codec.h"

#include <gtest/gtest.h>

namespace rdb {
namespace {

TEST(VersionedCodecTest, RoundTripsValuesAndTombstones) {
  for (std::uint64_t v : {std::uint64_t{1}, std::uint64_t{255}, std::uint64_t{1} << 40, ~std::uint64_t{0}}) {
    auto rec = decode_versioned(encode_versioned(v, false, std::string("a\0b", 3)));
    ASSERT_TRUE(rec.is_ok());
    EXPECT_EQ(rec->version, v);
    EXPECT_FALSE(rec->tombstone);
    EXPECT_EQ(rec->value, std::string("a\0b", 3));
  }
  auto tomb = decode_versioned(encode_versioned(7, true, ""));
  ASSERT_TRUE(tomb.is_ok());
  EXPECT_TRUE(tomb->tombstone);
  EXPECT_EQ(tomb->version, 7u);
}

TEST(VersionedCodecTest, RejectsTruncatedAndUnknownKind) {
  EXPECT_EQ(decode_versioned("short").status().code(), ServerCode::kCorruption);
  std::string bad = encode_versioned(1, false, "x");
  bad[8] = 9;
  EXPECT_EQ(decode_versioned(bad).status().code(), ServerCode::kCorruption);
}

}  // namespace
}  // namespace rdb
