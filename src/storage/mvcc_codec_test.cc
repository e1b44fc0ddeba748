#include "storage/mvcc_codec.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

namespace rdb::mvcc {
namespace {

TEST(MvccCodecTest, KeysRoundTripAtEveryLength) {
  for (std::size_t n = 0; n <= 40; ++n) {
    std::string key(n, '\0');
    for (std::size_t i = 0; i < n; ++i) {
      key[i] = static_cast<char>(i * 37 + n);
    }
    std::string_view rest;
    const std::string encoded = encode_key(key) + "tail";
    auto back = decode_key(encoded, &rest);
    ASSERT_TRUE(back.is_ok()) << n << ": " << back.status().to_string();
    EXPECT_EQ(*back, key) << n;
    EXPECT_EQ(rest, "tail") << n;
    auto wk = parse_write_key(write_key(key, 12345 + n));
    ASSERT_TRUE(wk.is_ok());
    EXPECT_EQ(wk->user_key, key);
    EXPECT_EQ(wk->commit_ts, 12345 + n);
  }
}

// The property the regions rely on: encoded (key, ts) pairs sort by key, then newest
// first, and every version of a key in [a, b) lies in [encode(a), encode(b)).
TEST(MvccCodecTest, EncodedKeysSortAsUserKeysThenNewestFirst) {
  std::random_device rd;
  const unsigned seed = rd();
  std::mt19937 rng(seed);
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::vector<std::string> keys = {"",
                                   "a",
                                   std::string("a\0", 2),
                                   std::string("a\0\0", 3),
                                   "ab",
                                   std::string(8, 'x'),
                                   std::string(9, 'x'),
                                   std::string(16, '\xff'),
                                   std::string(7, '\xff')};
  for (int i = 0; i < 200; ++i) {
    std::string k(rng() % 20, '\0');
    for (auto& c : k) {
      c = static_cast<char>(rng() % 4 == 0 ? 0xff : rng() % 3);
    }
    keys.push_back(k);
  }
  struct Version {
    std::string key;
    std::uint64_t ts;
    std::string encoded;
  };
  std::vector<Version> all;
  for (const auto& k : keys) {
    for (std::uint64_t ts : {std::uint64_t{0}, std::uint64_t{7}, std::uint64_t{1} << 40, ~std::uint64_t{0}}) {
      all.push_back({k, ts, write_key(k, ts)});
    }
  }
  std::sort(all.begin(), all.end(), [](const Version& a, const Version& b) { return a.encoded < b.encoded; });
  for (std::size_t i = 1; i < all.size(); ++i) {
    const auto& a = all[i - 1];
    const auto& b = all[i];
    ASSERT_TRUE(a.key < b.key || (a.key == b.key && a.ts >= b.ts))
        << "order broken between versions of " << a.key.size() << "- and " << b.key.size() << "-byte keys";
  }
  for (const auto& v : all) {
    auto [lo, hi] = versions_of(v.key);
    EXPECT_GE(v.encoded, lo);
    EXPECT_LT(v.encoded, hi);
    for (const auto& other : keys) {
      auto [range_lo, range_hi] = family_range(ColumnFamily::kTxnWrite, other, "");
      EXPECT_EQ(v.encoded >= range_lo, v.key >= other);
      EXPECT_LT(v.encoded, range_hi);
      if (other != v.key) {
        EXPECT_FALSE(v.encoded >= versions_of(other).first && v.encoded < versions_of(other).second);
      }
    }
  }
}

TEST(MvccCodecTest, MalformedKeysAreCorruptionNotCrashes) {
  std::string_view rest;
  EXPECT_FALSE(decode_key("", &rest).is_ok());
  EXPECT_FALSE(decode_key("abc", &rest).is_ok());
  EXPECT_FALSE(decode_key(std::string(8, 'a') + "\x10", &rest).is_ok()) << "a marker meaning 239 bytes of padding";
  EXPECT_FALSE(decode_key(std::string("ab\x01\0\0\0\0\0", 8) + "\xf9", &rest).is_ok()) << "non-zero padding";
  EXPECT_FALSE(parse_write_key(encode_key("k") + "123").is_ok()) << "a timestamp cut short";
  EXPECT_FALSE(parse_write_key(std::string(9, '\xff')).is_ok()) << "never ends";
  EXPECT_EQ(*user_key_of(ColumnFamily::kTxnLock, "plain"), "plain");
  EXPECT_EQ(*user_key_of(ColumnFamily::kTxnWrite, write_key("plain", 9)), "plain");
}

}  // namespace
}  // namespace rdb::mvcc
