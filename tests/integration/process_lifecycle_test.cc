// Crash, restart and start-up failure behaviour of the real daemons.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "local_cluster.h"
#include "rdb/client.h"

namespace rdb {
namespace {

using testing::LocalCluster;

std::unique_ptr<RdbClient> client_for(LocalCluster& c, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  ClientOptions o;
  o.pd_endpoints = {c.pd().addr};
  o.timeout = timeout;
  auto r = RdbClient::connect(o);
  EXPECT_TRUE(r.is_ok());
  return std::move(r).value();
}

TEST(ProcessLifecycleTest, AcknowledgedWritesSurviveSigkill) {
  LocalCluster cluster;
  cluster.start_pd();
  cluster.start_store("s1");
  auto c = client_for(cluster);
  constexpr int kWrites = 300;
  std::uint64_t last_version = 0;
  for (int i = 0; i < kWrites; ++i) {
    ASSERT_TRUE(c->raw_put("durable/" + std::to_string(i), "v" + std::to_string(i)).is_ok());
    auto cas = c->cas("durable/counter", last_version, std::to_string(i));
    ASSERT_TRUE(cas.is_ok() && cas->succeeded);
    last_version = cas->version;
  }
  ASSERT_TRUE(c->raw_batch_put({{"durable/batch1", "b1"}, {"durable/batch2", "b2"}}).is_ok());
  // No clean shutdown: the WAL sync at acknowledgement is all that protects these writes.
  cluster.store("s1").process->kill_now();
  cluster.restart_store("s1");

  auto after = client_for(cluster);
  for (int i = 0; i < kWrites; ++i) {
    auto v = after->raw_get("durable/" + std::to_string(i));
    ASSERT_TRUE(v.is_ok()) << v.status().to_string();
    ASSERT_TRUE(v->has_value()) << "lost acknowledged write " << i;
    EXPECT_EQ(**v, "v" + std::to_string(i));
  }
  auto counter = after->get("durable/counter");
  ASSERT_TRUE(counter.is_ok());
  EXPECT_EQ(counter->version, last_version);
  EXPECT_EQ(counter->value, std::to_string(kWrites - 1));
  EXPECT_EQ(after->raw_batch_get({"durable/batch1", "durable/batch2"})->size(), 2u);
}

TEST(ProcessLifecycleTest, SigtermWithWritesInFlightLosesNothingAcknowledged) {
  LocalCluster cluster;
  cluster.start_pd();
  cluster.start_store("s1");
  auto c = client_for(cluster, std::chrono::milliseconds(1500));
  std::mutex mu;
  std::vector<std::string> acked;
  std::atomic<bool> stop{false};
  std::atomic<int> started{0};
  std::vector<std::thread> writers;
  for (int t = 0; t < 4; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; !stop; ++i) {
        std::string key = "inflight/" + std::to_string(t) + "/" + std::to_string(i);
        if (c->raw_put(key, key).is_ok()) {
          std::lock_guard lock(mu);
          acked.push_back(key);
        } else {
          break;  // the server is going away
        }
        ++started;
      }
    });
  }
  ASSERT_TRUE(testing::poll_until([&] { return started.load() > 200; }, std::chrono::seconds(30)));
  cluster.store("s1").process->signal(SIGTERM);
  auto code = cluster.store("s1").process->wait_for_exit(std::chrono::seconds(30));
  stop = true;
  for (auto& w : writers) {
    w.join();
  }
  ASSERT_TRUE(code.has_value()) << "rdb-server did not stop on SIGTERM";
  EXPECT_EQ(*code, 0) << cluster.store("s1").logs();
  EXPECT_NE(cluster.store("s1").process->stderr_text().find("stopped cleanly"), std::string::npos);

  cluster.restart_store("s1");
  auto after = client_for(cluster);
  std::vector<std::string> keys;
  {
    std::lock_guard lock(mu);
    keys = acked;
  }
  ASSERT_GT(keys.size(), 200u);
  for (const auto& k : keys) {
    auto v = after->raw_get(k);
    ASSERT_TRUE(v.is_ok());
    ASSERT_TRUE(v->has_value()) << "lost acknowledged write " << k;
  }
}

TEST(ProcessLifecycleTest, PdRestartKeepsTimestampsIncreasingAndIdsStable) {
  LocalCluster cluster;
  cluster.start_pd();
  cluster.start_store("s1");
  std::uint64_t before = 0;
  {
    auto c = client_for(cluster);
    for (int i = 0; i < 50; ++i) {
      auto ts = c->get_tso(1000);
      ASSERT_TRUE(ts.is_ok());
      before = *ts + 999;
    }
  }
  std::string store_status_before = cluster.store("s1").process->stderr_text();
  cluster.pd().process->kill_now();  // crash, not a clean stop
  cluster.restart_pd();
  cluster.restart_store("s1");  // learns PD's new port; must keep store id 1
  auto c = client_for(cluster);
  auto ts = c->get_tso(1);
  ASSERT_TRUE(ts.is_ok()) << ts.status().to_string();
  EXPECT_GT(*ts, before);
  EXPECT_NE(cluster.store("s1").process->stderr_text().find("store 1 serving"), std::string::npos)
      << cluster.store("s1").logs();
  // Data written before PD's crash is still routed and readable.
  ASSERT_TRUE(c->raw_put("after-pd-restart", "ok").is_ok());
  EXPECT_EQ(c->raw_get("after-pd-restart")->value(), "ok");
}

TEST(ProcessLifecycleTest, SecondServerOnSameDataDirFailsClearly) {
  LocalCluster cluster;
  cluster.start_pd();
  auto& s1 = cluster.start_store("s1");
  auto r = cluster.run_store_expecting_exit(s1.data_dir, true);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("in use by another process"), std::string::npos) << r.err;
  // The first server is unharmed.
  auto c = client_for(cluster);
  EXPECT_TRUE(c->raw_put("still", "fine").is_ok());
}

TEST(ProcessLifecycleTest, DataDirOfAnotherClusterIsRefused) {
  LocalCluster first;
  first.start_pd();
  auto& s1 = first.start_store("s1");
  std::string dir = s1.data_dir;
  s1.process->signal(SIGTERM);
  ASSERT_TRUE(s1.process->wait_for_exit(std::chrono::seconds(30)).has_value());

  LocalCluster second;
  second.start_pd();
  auto r = second.run_store_expecting_exit(dir, true);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("belongs to cluster"), std::string::npos) << r.err;
  // And a PD-joined data dir cannot silently run standalone either.
  auto standalone = second.run_store_expecting_exit(dir, false);
  EXPECT_EQ(standalone.exit_code, 1);
  EXPECT_NE(standalone.err.find("belongs to cluster"), std::string::npos) << standalone.err;
}

TEST(ProcessLifecycleTest, UnreachablePdAndBadFlagsFailClearly) {
  LocalCluster cluster;
  auto no_pd =
      testing::run_command({testing::bin_dir() + "/rdb-server", "--addr", "127.0.0.1:0", "--status-addr", "127.0.0.1:0",
                            "--data-dir", cluster.dir().sub("x"), "--pd", "127.0.0.1:1", "--pd-wait-seconds", "1"},
                           cluster.dir().path());
  EXPECT_EQ(no_pd.exit_code, 1);
  EXPECT_NE(no_pd.err.find("cannot reach PD"), std::string::npos) << no_pd.err;

  auto bad_addr =
      testing::run_command({testing::bin_dir() + "/rdb-server", "--addr", "nonsense"}, cluster.dir().path());
  EXPECT_EQ(bad_addr.exit_code, 2);
  EXPECT_NE(bad_addr.err.find("HOST:PORT"), std::string::npos) << bad_addr.err;

  auto pd_bad = testing::run_command({testing::bin_dir() + "/rdb-pd", "--bogus-flag"}, cluster.dir().path());
  EXPECT_NE(pd_bad.exit_code, 0);
}

TEST(ProcessLifecycleTest, StandaloneStoreServesWithoutPd) {
  LocalCluster cluster;
  auto& s = cluster.start_store("solo", /*with_pd=*/false);
  ClientOptions o;
  o.store_addr = s.addr;
  auto c = RdbClient::connect(o);
  ASSERT_TRUE(c.is_ok());
  ASSERT_TRUE((*c)->raw_put("solo", "yes").is_ok());
  s.process->kill_now();
  cluster.restart_store("solo");
  ClientOptions o2;
  o2.store_addr = cluster.store("solo").addr;
  auto c2 = RdbClient::connect(o2);
  EXPECT_EQ((*c2)->raw_get("solo")->value(), "yes");
}

}  // namespace
}  // namespace rdb
