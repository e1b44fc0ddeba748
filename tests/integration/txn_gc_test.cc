// Garbage collection of transactional versions against real processes: PD moves the
// GC safe point (--gc-life-time), stores remove versions below it (keeping what a read
// at the safe point sees) and refuse reads below it, never answering them wrongly.
#include <gtest/gtest.h>

#include "local_cluster.h"
#include "rdb/client.h"

namespace rdb {
namespace {

using namespace std::chrono_literals;
using testing::LocalCluster;

class TxnGcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cluster_.start_pd({"--max-replicas", "3", "--store-up-window-ms", "2000", "--gc-life-time", "2s"});
    for (const char* s : {"s1", "s2", "s3"}) {
      cluster_.start_store(s, true, {"--gc-interval-ms", "200"});
    }
    ClientOptions o;
    o.pd_endpoints = {cluster_.pd().addr};
    client_ = std::move(RdbClient::connect(o)).value();
  }

  std::uint64_t commit(const std::string& key, std::optional<std::string> value) {
    auto t = std::move(client_->begin()).value();
    Status s = value ? t->put(key, *value) : t->erase(key);
    EXPECT_TRUE(s.is_ok());
    s = t->commit();
    EXPECT_TRUE(s.is_ok()) << s.to_string();
    return t->commit_ts();
  }

  // rdb_txn_gc_versions_removed_total summed over the stores.
  std::uint64_t versions_removed() {
    std::uint64_t sum = 0;
    for (const char* name : {"s1", "s2", "s3"}) {
      sum += cluster_.metric(cluster_.store(name).status_addr, "rdb_txn_gc_versions_removed_total");
    }
    return sum;
  }

  LocalCluster cluster_;
  std::unique_ptr<RdbClient> client_;
};

TEST_F(TxnGcTest, VersionsBelowTheSafePointAreRemovedAndReadsThereRefused) {
  commit("gc/k", "v1");
  commit("gc/k", "v2");
  commit("gc/gone", "x");
  commit("gc/gone", std::nullopt);
  const std::uint64_t last = commit("gc/k", "v3");
  auto old = std::move(client_->begin()).value();  // a snapshot that will fall below the safe point
  ASSERT_EQ(old->get("gc/k")->value_or(""), "v3");
  ASSERT_GT(old->start_ts(), last);

  // v1, v2 (hidden by v3) and both versions of the deleted key: four versions.
  ASSERT_TRUE(testing::poll_until([&] { return versions_removed() >= 4; }, 60s))
      << "removed " << versions_removed() << " versions";
  auto below = old->get("gc/k");
  ASSERT_FALSE(below.is_ok()) << "a read below the safe point must fail, not answer from what is left";
  EXPECT_EQ(below.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(below.status().message().find("GC safe point"), std::string::npos) << below.status().to_string();

  auto now = std::move(client_->begin()).value();
  EXPECT_EQ(now->get("gc/k")->value_or("?"), "v3") << "the newest version below the safe point stays";
  EXPECT_FALSE(now->get("gc/gone")->has_value());
  auto all = now->scan("gc/", "gc0", 10);
  ASSERT_TRUE(all.is_ok()) << all.status().to_string();
  EXPECT_EQ(all->size(), 1U);
  // Nothing more goes: the kept version is the only one left.
  std::uint64_t removed = versions_removed();
  EXPECT_EQ(commit("gc/k", "v4") > last, true);
  EXPECT_EQ(now->get("gc/k")->value_or("?"), "v3") << "a snapshot is a snapshot";
  EXPECT_GE(versions_removed(), removed);
}

TEST(TxnGcExplicitTest, AnExplicitSafePointOnlyGrowsIsRefusedInTheFutureAndRemovesVersions) {
  LocalCluster cluster;
  cluster.start_pd({"--max-replicas", "1", "--gc-life-time", "0"});  // only the explicit safe point moves
  cluster.start_store("s1", true, {"--gc-interval-ms", "200"});
  ClientOptions o;
  o.pd_endpoints = {cluster.pd().addr};
  auto client = std::move(RdbClient::connect(o)).value();
  auto commit = [&](const std::string& v) {
    auto t = std::move(client->begin()).value();
    EXPECT_TRUE(t->put("x/k", v).is_ok());
    EXPECT_TRUE(t->commit().is_ok());
    return t->commit_ts();
  };
  const std::uint64_t first = commit("1");
  const std::uint64_t second = commit("2");
  commit("3");
  auto asked = client->update_gc_safe_point(0);
  ASSERT_TRUE(asked.is_ok()) << asked.status().to_string();
  EXPECT_EQ(asked->current, 0U) << "--gc-life-time 0: nothing moved it yet";
  auto raised = client->update_gc_safe_point(second);
  ASSERT_TRUE(raised.is_ok()) << raised.status().to_string();
  EXPECT_EQ(raised->previous, 0U);
  EXPECT_EQ(raised->current, second);
  auto lower = client->update_gc_safe_point(first);
  ASSERT_TRUE(lower.is_ok());
  EXPECT_EQ(lower->current, second) << "never lowered";
  auto future = client->update_gc_safe_point(second + (std::uint64_t{1} << 40));
  EXPECT_EQ(future.status().code(), StatusCode::kInvalidArgument);
  // The store learns it and removes version 1 (hidden by 2 at the safe point).
  ASSERT_TRUE(testing::poll_until(
      [&] { return cluster.metric(cluster.store("s1").status_addr, "rdb_txn_gc_versions_removed_total") >= 1; }, 60s));
  auto at = std::move(client->snapshot_at(second)).value();
  EXPECT_EQ(at->get("x/k")->value_or("?"), "2") << "a read at the safe point still works";
  auto below = std::move(client->snapshot_at(first)).value();
  EXPECT_EQ(below->get("x/k").status().code(), StatusCode::kInvalidArgument);
}

TEST_F(TxnGcTest, ABadLifeTimeIsRefusedAtStart) {
  auto r = testing::run_command({testing::bin_dir() + "/rdb-pd", "--gc-life-time", "ten minutes", "--data-dir",
                                 cluster_.dir().path() + "/bad-pd", "--addr", "127.0.0.1:0"},
                                cluster_.dir().path(), 30s);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--gc-life-time"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace rdb
