// The list-append checker on hand-made histories: each anomaly snapshot isolation
// forbids is named, write skew (G2) is allowed, and a clean history passes.
#include "list_append.h"

#include <gtest/gtest.h>

namespace rdb::chaos {
namespace {

using Outcome = ListTxn::Outcome;

ListOp rd(const std::string& key, std::vector<std::int64_t> seen) {
  return ListOp{false, key, 0, std::move(seen)};
}
ListOp app(const std::string& key, std::int64_t value, std::vector<std::int64_t> before) {
  return ListOp{true, key, value, std::move(before)};
}
ListTxn txn(std::uint64_t id, std::vector<ListOp> ops, Outcome outcome = Outcome::kOk) {
  return ListTxn{id, outcome, std::move(ops)};
}

std::string named(const ListAppendVerdict& v) {
  std::string out;
  for (const auto& e : v.examples) {
    out += e + "\n";
  }
  return out;
}

TEST(ListAppendCheckerTest, ASerialHistoryPasses) {
  auto v = check_list_append({
      txn(1, {app("x", 1, {}), app("y", 2, {})}), txn(2, {rd("x", {1}), app("x", 3, {1})}),
      txn(3, {rd("x", {1, 3}), rd("y", {2})}), txn(4, {app("x", 9, {1, 3})}, Outcome::kFailed),  // aborted, never seen
  });
  EXPECT_TRUE(v.ok()) << named(v);
  EXPECT_EQ(v.transactions, 3u);
}

TEST(ListAppendCheckerTest, AbortedReadIsG1a) {
  auto v = check_list_append({txn(1, {app("x", 1, {})}, Outcome::kFailed), txn(2, {rd("x", {1})})});
  ASSERT_EQ(v.counts["G1a"], 1u) << named(v);
  EXPECT_NE(v.examples[0].find("T1, which aborted"), std::string::npos) << v.examples[0];
}

TEST(ListAppendCheckerTest, IntermediateReadIsG1b) {
  auto v = check_list_append({txn(1, {app("x", 1, {}), app("x", 2, {1})}), txn(2, {rd("x", {1})})});
  EXPECT_EQ(v.counts["G1b"], 1u) << named(v);
}

TEST(ListAppendCheckerTest, TwoAppendsFromOneReadAreALostUpdate) {
  auto v = check_list_append({
      txn(1, {app("x", 1, {})}),
      txn(2, {app("x", 2, {})}),  // read [] too: it missed 1
      txn(3, {rd("x", {1, 2})}),
  });
  EXPECT_EQ(v.counts["lost-update"], 1u) << named(v);
}

TEST(ListAppendCheckerTest, ReadSkewIsGSingle) {
  auto v = check_list_append({
      txn(1, {app("x", 1, {}), app("y", 2, {})}),
      txn(2, {rd("x", {}), rd("y", {2})}),  // saw T1's y but not its x
      txn(3, {rd("x", {1})}),
  });
  EXPECT_EQ(v.counts["G-single"], 1u) << named(v);
}

TEST(ListAppendCheckerTest, WriteSkewIsAllowed) {
  auto v = check_list_append({
      txn(1, {rd("x", {}), app("y", 1, {})}),
      txn(2, {rd("y", {}), app("x", 2, {})}),
      txn(3, {rd("x", {2}), rd("y", {1})}),
  });
  EXPECT_TRUE(v.ok()) << named(v);
  EXPECT_EQ(v.counts["G2 (allowed under snapshot isolation)"], 1u);
}

TEST(ListAppendCheckerTest, WriteCycleIsG0AndInformationCycleIsG1c) {
  auto g0 = check_list_append({
      txn(1, {app("x", 1, {}), app("y", 4, {3})}),
      txn(2, {app("x", 2, {1}), app("y", 3, {})}),
      txn(3, {rd("x", {1, 2}), rd("y", {3, 4})}),
  });
  EXPECT_EQ(g0.counts["G0"], 1u) << named(g0);
  auto g1c = check_list_append({
      txn(1, {app("x", 1, {}), rd("y", {2})}),
      txn(2, {rd("x", {1}), app("y", 2, {})}),
  });
  EXPECT_EQ(g1c.counts["G1c"], 1u) << named(g1c);
}

TEST(ListAppendCheckerTest, ReadsThatAreNotPrefixesOfOneOrderAreReported) {
  auto v = check_list_append({
      txn(1, {app("x", 1, {})}),
      txn(2, {app("x", 2, {1})}),
      txn(3, {rd("x", {1, 2})}),
      txn(4, {rd("x", {2})}),
  });
  EXPECT_EQ(v.counts["incompatible-order"], 1u) << named(v);
}

TEST(ListAppendCheckerTest, UnknownOutcomesCountOnlyWhenSeen) {
  auto v = check_list_append({
      txn(1, {app("x", 1, {})}, Outcome::kUnknown),
      txn(2, {rd("x", {1}), app("x", 2, {1})}),
      txn(3, {app("y", 5, {})}, Outcome::kUnknown),  // never seen: maybe it never applied
      txn(4, {rd("x", {1, 2}), rd("y", {})}),
  });
  EXPECT_TRUE(v.ok()) << named(v);
}

}  // namespace
}  // namespace rdb::chaos
