// The checker's own tests: hand-written histories that are and are not linearizable.
#include "linearizability.h"

#include <gtest/gtest.h>

#include <random>

#include "support/temp_dir.h"

namespace rdb::chaos {
namespace {

std::uint64_t next_id = 1;

Operation op(OpKind kind, std::uint64_t invoke, std::uint64_t complete, Outcome outcome = Outcome::kOk) {
  Operation o;
  o.id = next_id++;
  o.key = "k";
  o.kind = kind;
  o.invoke_ns = invoke;
  o.complete_ns = complete;
  o.outcome = outcome;
  return o;
}
Operation cas(std::uint64_t a, std::uint64_t b, std::uint64_t expected, const std::string& v, bool succeeded,
              std::uint64_t version, Outcome outcome = Outcome::kOk) {
  Operation o = op(OpKind::kCas, a, b, outcome);
  o.expected_version = expected;
  o.value = v;
  o.succeeded = succeeded;
  o.version = version;
  return o;
}
Operation get(std::uint64_t a, std::uint64_t b, bool found, const std::string& v, std::uint64_t version) {
  Operation o = op(OpKind::kGet, a, b);
  o.found = found;
  o.result_value = v;
  o.version = version;
  return o;
}
Operation put(std::uint64_t a, std::uint64_t b, const std::string& v, Outcome outcome = Outcome::kOk) {
  Operation o = op(OpKind::kRawPut, a, b, outcome);
  o.value = v;
  return o;
}
Operation raw_get(std::uint64_t a, std::uint64_t b, bool found, const std::string& v) {
  Operation o = op(OpKind::kRawGet, a, b);
  o.found = found;
  o.result_value = v;
  return o;
}

TEST(LinearizabilityTest, SequentialAndConcurrentHistoriesPass) {
  EXPECT_TRUE(check_history({cas(0, 10, 0, "a", true, 1), get(20, 30, true, "a", 1), cas(40, 50, 1, "b", true, 2),
                             get(60, 70, true, "b", 2)})
                  .linearizable);
  // Overlapping: the read may see either the old or the new value.
  EXPECT_TRUE(check_history({cas(0, 10, 0, "a", true, 1), cas(20, 60, 1, "b", true, 2), get(30, 40, true, "a", 1)})
                  .linearizable);
  EXPECT_TRUE(check_history({cas(0, 10, 0, "a", true, 1), cas(20, 60, 1, "b", true, 2), get(30, 40, true, "b", 2)})
                  .linearizable);
  // Two racing CAS on version 0: one wins, the other sees the winner.
  // The loser must report the winner's value too.
  EXPECT_FALSE(check_history({cas(0, 50, 0, "x", true, 1), cas(5, 45, 0, "y", false, 1)}).linearizable);
  Operation loser = cas(5, 45, 0, "y", false, 1);
  loser.found = true;
  loser.result_value = "x";
  EXPECT_TRUE(check_history({cas(0, 50, 0, "x", true, 1), loser}).linearizable);
  EXPECT_TRUE(check_history({put(0, 10, "p"), raw_get(20, 30, true, "p"), raw_get(5, 8, false, "")}).linearizable);
}

TEST(LinearizabilityTest, StaleReadIsCaught) {
  auto v = check_history({cas(0, 10, 0, "a", true, 1), cas(20, 30, 1, "b", true, 2), get(40, 50, true, "a", 1)});
  ASSERT_FALSE(v.linearizable);
  ASSERT_EQ(v.failures.size(), 1u);
  EXPECT_NE(v.failures[0].explanation.find("get"), std::string::npos);
  EXPECT_FALSE(check_history({put(0, 10, "1"), put(20, 30, "2"), raw_get(40, 50, true, "1")}).linearizable);
}

TEST(LinearizabilityTest, LostWriteIsCaught) {
  // An acknowledged put that a later read does not see.
  EXPECT_FALSE(check_history({put(0, 10, "w"), raw_get(20, 30, false, "")}).linearizable);
  EXPECT_FALSE(check_history({cas(0, 10, 0, "a", true, 1), get(20, 30, false, "", 0)}).linearizable);
}

TEST(LinearizabilityTest, CasSucceedingTwiceOnOneVersionIsCaught) {
  EXPECT_FALSE(check_history({cas(0, 10, 0, "a", true, 1), cas(20, 30, 0, "b", true, 1)}).linearizable);
  // Even concurrently.
  EXPECT_FALSE(check_history({cas(0, 30, 0, "a", true, 1), cas(5, 35, 0, "b", true, 1)}).linearizable);
}

TEST(LinearizabilityTest, ReadOfAValueNeverWrittenIsCaught) {
  EXPECT_FALSE(check_history({cas(0, 10, 0, "a", true, 1), get(20, 30, true, "ghost", 1)}).linearizable);
  EXPECT_FALSE(check_history({raw_get(0, 10, true, "ghost")}).linearizable);
}

TEST(LinearizabilityTest, UnknownOperationsMayOrMayNotHaveTakenEffect) {
  // An unknown CAS that did apply (a later read sees it)...
  EXPECT_TRUE(
      check_history({cas(0, 10, 0, "maybe", false, 0, Outcome::kUnknown), get(50, 60, true, "maybe", 1)}).linearizable);
  // ...or did not.
  EXPECT_TRUE(
      check_history({cas(0, 10, 0, "maybe", false, 0, Outcome::kUnknown), get(50, 60, false, "", 0)}).linearizable);
  // It may even take effect long after it timed out.
  EXPECT_TRUE(check_history(
                  {put(0, 10, "late", Outcome::kUnknown), raw_get(20, 30, false, ""), raw_get(100, 110, true, "late")})
                  .linearizable);
  // But a failed operation never took effect.
  EXPECT_FALSE(check_history({put(0, 10, "no", Outcome::kFailed), raw_get(20, 30, true, "no")}).linearizable);
  // And an unknown write cannot explain a value before it was invoked.
  EXPECT_FALSE(check_history({raw_get(0, 10, true, "early"), put(20, 30, "early", Outcome::kUnknown)}).linearizable);
}

TEST(LinearizabilityTest, DeleteKeepsTheVersionSoNoAba) {
  Operation del = op(OpKind::kCasDelete, 20, 30);
  del.expected_version = 1;
  del.succeeded = true;
  del.version = 2;
  EXPECT_TRUE(check_history({cas(0, 10, 0, "a", true, 1), del, get(40, 50, false, "", 0), cas(60, 70, 0, "b", true, 3)})
                  .linearizable);
  // Re-creating with version 1 again would be ABA.
  EXPECT_FALSE(check_history({cas(0, 10, 0, "a", true, 1), del, cas(60, 70, 0, "b", true, 1)}).linearizable);
}

TEST(LinearizabilityTest, KeysAreCheckedSeparatelyAndFailuresSortedBySize) {
  std::vector<Operation> h;
  for (int k = 0; k < 20; ++k) {
    Operation w = put(static_cast<std::uint64_t>(k) * 10, static_cast<std::uint64_t>(k) * 10 + 5, "v");
    w.key = "key" + std::to_string(k);
    h.push_back(w);
  }
  Operation bad = raw_get(1000, 1010, false, "");
  bad.key = "key3";
  h.push_back(bad);
  auto v = check_history(h);
  EXPECT_FALSE(v.linearizable);
  EXPECT_EQ(v.keys, 20u);
  ASSERT_EQ(v.failures.size(), 1u);
  EXPECT_EQ(v.failures[0].key, "r:key3");
}

TEST(LinearizabilityTest, LargeConcurrentHistoryIsCheckedQuickly) {
  // A register driven by 8 clients with overlapping operations, generated from a real
  // sequential execution (so it is linearizable), is checked without blowing up.
  std::mt19937_64 rng(7);
  std::vector<Operation> h;
  struct {
    bool exists = false;
    std::string value;
    std::uint64_t version = 0;
  } model;
  std::uint64_t t = 0;
  for (int i = 0; i < 4000; ++i) {
    t += 10;
    std::uint64_t invoke = t - (rng() % 8);
    std::uint64_t complete = t + (rng() % 8);
    if (rng() % 3 == 0) {
      Operation o =
          cas(invoke, complete, model.exists ? model.version : 0, "v" + std::to_string(i), true, model.version + 1);
      model.exists = true;
      model.value = o.value;
      model.version++;
      h.push_back(o);
    } else {
      h.push_back(get(invoke, complete, model.exists, model.value, model.exists ? model.version : 0));
    }
  }
  auto v = check_history(h);
  EXPECT_TRUE(v.linearizable) << (v.failures.empty() ? "" : v.failures[0].explanation);
  std::cout << "checked " << h.size() << " operations in " << v.seconds << " s\n";
}

TEST(HistoryTest, JsonLinesRoundTrip) {
  testing::TempDir dir;
  Operation o = cas(1, 2, 3, "v\n\"", true, 4);
  o.client = 9;
  std::string line = to_json_line(o);
  auto back = parse_json_line(line);
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_EQ(back->value, o.value);
  EXPECT_EQ(back->expected_version, 3u);
  EXPECT_TRUE(back->succeeded);
  EXPECT_EQ(back->client, 9u);
  EXPECT_FALSE(parse_json_line("{\"id\":1}").is_ok());
  EXPECT_FALSE(parse_json_line("not json").is_ok());
  EXPECT_FALSE(read_history(dir.sub("missing")).is_ok());
}

}  // namespace
}  // namespace rdb::chaos
