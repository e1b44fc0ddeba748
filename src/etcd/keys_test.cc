// The gateway's key layout: etcd ranges map to the right transactional ranges, and
// namespaces and kinds of records never overlap.
#include "etcd/keys.h"

#include <gtest/gtest.h>

namespace rdb::etcd {
namespace {

const std::string kZero(1, '\0');

TEST(KeyLayoutTest, DataKeysRoundTripAndKeepEtcdOrder) {
  KeyLayout l("etcd");
  EXPECT_EQ(l.etcd_key(l.data_key("foo")), "foo");
  EXPECT_EQ(l.etcd_key(l.data_key(std::string("\0\xff", 2))), std::string("\0\xff", 2));
  EXPECT_LT(l.data_key("a"), l.data_key("ab"));
  EXPECT_LT(l.data_key("ab"), l.data_key("b"));
}

TEST(KeyLayoutTest, EtcdRangesBecomeTheSameRangesOfDataKeys) {
  KeyLayout l("etcd");
  auto [s1, e1] = l.data_range({"a", "c"});
  EXPECT_EQ(s1, l.data_key("a"));
  EXPECT_EQ(e1, l.data_key("c"));
  // range_end "\0": every key from `key` on, and nothing of another kind of record.
  auto [s2, e2] = l.data_range({"m", kZero});
  EXPECT_EQ(s2, l.data_key("m"));
  EXPECT_GT(e2, l.data_key(std::string(100, '\xff')));
  EXPECT_LE(e2, l.lease_key(0)) << "leases ('l') sort after data ('k')";
  // key and range_end "\0": the whole key space, from the empty key on.
  auto [s3, e3] = l.data_range({kZero, kZero});
  EXPECT_EQ(s3, l.data_key(""));
  EXPECT_EQ(e3, e2);
}

TEST(KeyLayoutTest, ContainsFollowsEtcdsRangeRules) {
  EXPECT_TRUE(KeyLayout::contains({"a", ""}, "a"));
  EXPECT_FALSE(KeyLayout::contains({"a", ""}, "ab"));
  EXPECT_TRUE(KeyLayout::contains({"a", "b"}, "ab"));
  EXPECT_FALSE(KeyLayout::contains({"a", "b"}, "b"));
  EXPECT_TRUE(KeyLayout::contains({"a", kZero}, "zzz"));
  EXPECT_FALSE(KeyLayout::contains({"b", kZero}, "a"));
  EXPECT_TRUE(KeyLayout::contains({kZero, kZero}, "a"));
}

TEST(KeyLayoutTest, NamespacesNeverOverlap) {
  KeyLayout a("etcd"), b("etcd2");
  auto [s, e] = a.data_range({kZero, kZero});
  EXPECT_FALSE(b.data_key("x") >= s && b.data_key("x") < e);
  EXPECT_FALSE(b.data_key("") >= s && b.data_key("") < e);
}

TEST(KeyLayoutTest, LeaseIdsAndAttachedKeysRoundTrip) {
  KeyLayout l("etcd");
  EXPECT_EQ(l.lease_id(l.lease_key(0x1234567890)), 0x1234567890);
  auto [ls, le] = l.lease_range();
  EXPECT_TRUE(l.lease_key(1) >= ls && l.lease_key(1) < le);
  EXPECT_TRUE(l.lease_key(INT64_MAX) >= ls && l.lease_key(INT64_MAX) < le);
  auto [as, ae] = l.attached_range(7);
  std::string k = l.attached_key(7, "foo");
  EXPECT_TRUE(k >= as && k < ae);
  EXPECT_FALSE(l.attached_key(8, "foo") < ae);
  EXPECT_EQ(l.attached_etcd_key(k), "foo");
  auto [ms, me] = l.member_range();
  EXPECT_TRUE(l.member_key(5) >= ms && l.member_key(5) < me);
}

TEST(KeyLayoutTest, TheLongestEtcdKeyFitsRdbsKeyLimit) {
  KeyLayout l("etcd");
  EXPECT_EQ(l.data_key(std::string(l.max_key_size(), 'x')).size(), std::size_t{8} * 1024);
}

}  // namespace
}  // namespace rdb::etcd
