// rdb-cli against real processes: every command, its JSON output and exit codes.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "local_cluster.h"

namespace rdb {
namespace {

using testing::CommandResult;
using testing::LocalCluster;

class CliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    cluster_ = new LocalCluster();
    cluster_->start_pd();
    cluster_->start_store("s1");
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  CommandResult cli(std::vector<std::string> args, bool json = true) {
    std::vector<std::string> argv = {testing::bin_dir() + "/rdb-cli", "--pd", cluster_->pd().addr};
    if (json) {
      argv.push_back("--json");
    }
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::run_command(argv, cluster_->dir().path());
  }
  static nlohmann::json first_json(const CommandResult& r) {
    auto line = r.out.substr(0, r.out.find('\n'));
    return nlohmann::json::parse(line);
  }
  static std::vector<nlohmann::json> json_lines(const CommandResult& r) {
    std::vector<nlohmann::json> out;
    std::size_t pos = 0;
    while (pos < r.out.size()) {
      auto nl = r.out.find('\n', pos);
      out.push_back(nlohmann::json::parse(r.out.substr(pos, nl - pos)));
      pos = nl + 1;
    }
    return out;
  }
  static LocalCluster* cluster_;
};
LocalCluster* CliTest::cluster_ = nullptr;

TEST_F(CliTest, RawCommands) {
  auto put = cli({"raw-put", "cli/a", "apple"});
  ASSERT_EQ(put.exit_code, 0) << put.err;
  EXPECT_EQ(first_json(put)["ok"], true);
  auto get = cli({"raw-get", "cli/a"});
  ASSERT_EQ(get.exit_code, 0) << get.err;
  EXPECT_EQ(first_json(get)["value"], "apple");
  EXPECT_EQ(first_json(get)["key"], "cli/a");
  auto plain = cli({"raw-get", "cli/a"}, false);
  EXPECT_EQ(plain.out, "apple\n");

  auto missing = cli({"raw-get", "cli/none"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_EQ(first_json(missing)["found"], false);

  ASSERT_EQ(cli({"raw-batch-put", "cli/b", "banana", "cli/c", "cherry"}).exit_code, 0);
  auto scan = cli({"raw-scan", "cli/", "cli0"});
  ASSERT_EQ(scan.exit_code, 0) << scan.err;
  auto lines = json_lines(scan);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0]["key"], "cli/a");
  EXPECT_EQ(lines[2]["value"], "cherry");
  auto rev = cli({"raw-scan", "cli/", "cli0", "--reverse", "--keys-only", "--limit", "2"});
  auto rev_lines = json_lines(rev);
  ASSERT_EQ(rev_lines.size(), 2u);
  EXPECT_EQ(rev_lines[0]["key"], "cli/c");
  EXPECT_FALSE(rev_lines[0].contains("value"));

  auto bget = cli({"raw-batch-get", "cli/c", "cli/zz", "cli/a"});
  auto bget_lines = json_lines(bget);
  ASSERT_EQ(bget_lines.size(), 2u);
  EXPECT_EQ(bget_lines[0]["key"], "cli/c");

  ASSERT_EQ(cli({"raw-delete", "cli/a"}).exit_code, 0);
  EXPECT_EQ(cli({"raw-get", "cli/a"}).exit_code, 1);
  ASSERT_EQ(cli({"raw-batch-delete", "cli/b"}).exit_code, 0);
  EXPECT_EQ(cli({"raw-get", "cli/b"}).exit_code, 1);
  ASSERT_EQ(cli({"raw-delete-range", "cli/", "cli0"}).exit_code, 0);
  EXPECT_EQ(cli({"raw-get", "cli/c"}).exit_code, 1);
}

TEST_F(CliTest, CasAndGet) {
  auto created = cli({"cas", "cli/k", "0", "one"});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  auto j = first_json(created);
  EXPECT_EQ(j["succeeded"], true);
  std::uint64_t v1 = j["version"];

  auto conflict = cli({"cas", "cli/k", "0", "two"});
  EXPECT_EQ(conflict.exit_code, 3);
  auto cj = first_json(conflict);
  EXPECT_EQ(cj["succeeded"], false);
  EXPECT_EQ(cj["value"], "one");
  EXPECT_EQ(cj["version"], v1);

  auto got = cli({"get", "cli/k"});
  ASSERT_EQ(got.exit_code, 0);
  EXPECT_EQ(first_json(got)["value"], "one");
  EXPECT_EQ(first_json(got)["version"], v1);

  auto del = cli({"cas", "cli/k", std::to_string(v1), "--delete"});
  ASSERT_EQ(del.exit_code, 0) << del.err;
  auto gone = cli({"get", "cli/k"});
  EXPECT_EQ(gone.exit_code, 1);
  EXPECT_EQ(first_json(gone)["found"], false);
}

TEST_F(CliTest, Tso) {
  auto a = cli({"tso", "--count", "10"});
  ASSERT_EQ(a.exit_code, 0) << a.err;
  auto b = cli({"tso"});
  ASSERT_EQ(b.exit_code, 0);
  std::uint64_t first = first_json(a)["timestamp"];
  std::uint64_t second = first_json(b)["timestamp"];
  EXPECT_GE(second, first + 10);
  EXPECT_EQ(first_json(a)["count"], 10);
  EXPECT_EQ(first_json(a)["physical_ms"].get<std::uint64_t>(), first >> 18);
}

TEST_F(CliTest, UsageErrorsExitTwo) {
  EXPECT_EQ(cli({}).exit_code, 2);
  EXPECT_EQ(cli({"no-such-command"}).exit_code, 2);
  EXPECT_EQ(cli({"raw-put", "only-key"}).exit_code, 2);
  EXPECT_EQ(cli({"cas", "k", "not-a-number", "v"}).exit_code, 2);
  EXPECT_EQ(cli({"cas", "k", "-1", "v"}).exit_code, 2);
  EXPECT_EQ(cli({"cas", "k", "1"}).exit_code, 2);                   // neither VALUE nor --delete
  EXPECT_EQ(cli({"cas", "k", "1", "v", "--delete"}).exit_code, 2);  // both
  EXPECT_EQ(cli({"raw-batch-put", "k1", "v1", "k2"}).exit_code, 2);
  auto limit = cli({"raw-scan", "a", "--limit", "20000"});
  EXPECT_EQ(limit.exit_code, 2);
  EXPECT_NE(limit.err.find("10240"), std::string::npos) << limit.err;
  auto big = cli({"raw-put", std::string(9000, 'k'), "v"});
  EXPECT_EQ(big.exit_code, 2);
  EXPECT_NE(big.err.find("8 KiB"), std::string::npos);
}

TEST_F(CliTest, HelpOnEveryCommandExitsZero) {
  for (const char* cmd : {"raw-put", "raw-get", "raw-delete", "raw-scan", "raw-batch-get", "raw-batch-put",
                          "raw-batch-delete", "raw-delete-range", "get", "cas", "tso"}) {
    auto r = cli({cmd, "--help"}, false);
    EXPECT_EQ(r.exit_code, 0) << cmd;
    EXPECT_NE(r.out.find("Usage"), std::string::npos) << cmd << ": " << r.out;
  }
  auto top = cli({"--help"}, false);
  EXPECT_EQ(top.exit_code, 0);
  EXPECT_NE(top.out.find("Exit codes"), std::string::npos);
}

TEST_F(CliTest, UnreachableClusterExitsFour) {
  auto r = testing::run_command(
      {testing::bin_dir() + "/rdb-cli", "--pd", "127.0.0.1:1", "--timeout-ms", "500", "raw-get", "k"},
      cluster_->dir().path());
  EXPECT_EQ(r.exit_code, 4);
  EXPECT_NE(r.err.find("error:"), std::string::npos);
}

TEST_F(CliTest, SplitPrintsTheRegionsAndKeepsDataReachable) {
  ASSERT_EQ(cli({"raw-put", "split/a", "1"}).exit_code, 0);
  ASSERT_EQ(cli({"raw-put", "split/n", "2"}).exit_code, 0);
  ASSERT_EQ(cli({"raw-put", "split/z", "3"}).exit_code, 0);
  auto r = cli({"split", "split/m", "split/t"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = first_json(r);
  EXPECT_EQ(j["op"], "split");
  ASSERT_EQ(j["regions"].size(), 3u) << r.out;
  EXPECT_EQ(j["regions"][0]["end_key"], "split/m");
  EXPECT_EQ(j["regions"][1]["start_key"], "split/m");
  EXPECT_EQ(j["regions"][1]["end_key"], "split/t");
  EXPECT_EQ(j["regions"][2]["start_key"], "split/t");
  for (const auto& region : j["regions"]) {
    EXPECT_TRUE(region.contains("id") && region.contains("epoch") && region.contains("peers") &&
                region.contains("leader"))
        << region.dump();
  }
  // Splitting where a region already starts changes nothing and says so.
  auto again = cli({"split", "split/m"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(first_json(again)["regions"].size(), 1u);
  EXPECT_EQ(first_json(again)["regions"][0]["start_key"], "split/m");
  // A scan over the cut range sees every key once, in order.
  auto scan = cli({"raw-scan", "split/", "split0"});
  ASSERT_EQ(scan.exit_code, 0) << scan.err;
  auto lines = json_lines(scan);
  ASSERT_EQ(lines.size(), 3u) << scan.out;
  EXPECT_EQ(lines[0]["key"], "split/a");
  EXPECT_EQ(lines[1]["key"], "split/n");
  EXPECT_EQ(lines[2]["key"], "split/z");
  auto usage = cli({"split"});
  EXPECT_EQ(usage.exit_code, 2) << "a split without keys is a usage error";
  // `cluster --json` keeps its shape with many regions.
  auto cluster = cli({"cluster"});
  ASSERT_EQ(cluster.exit_code, 0) << cluster.err;
  auto cj = first_json(cluster);
  EXPECT_TRUE(cj.contains("stores") && cj.contains("regions") && cj.contains("max_replicas"));
  EXPECT_GE(cj["regions"].size(), 3u);
  for (const auto& region : cj["regions"]) {
    EXPECT_TRUE(region.contains("approximate_size") && region.contains("approximate_keys")) << region.dump();
  }
  EXPECT_TRUE(cj["stores"][0].contains("region_size")) << cj["stores"][0].dump();
  for (const auto& peer : cj["regions"][0]["peers"]) {
    EXPECT_EQ(peer["role"], "voter") << peer.dump();
  }
}

// move-peer's refusals name what is wrong and exit 2 (one store: nowhere to move to).
TEST_F(CliTest, MovePeerRefusesWhatCannotMove) {
  auto cluster = cli({"cluster"});
  ASSERT_EQ(cluster.exit_code, 0) << cluster.err;
  auto cj = first_json(cluster);
  ASSERT_FALSE(cj["regions"].empty());
  const std::string region = std::to_string(cj["regions"][0]["id"].get<std::uint64_t>());
  const std::string store = std::to_string(cj["regions"][0]["peers"][0]["store_id"].get<std::uint64_t>());
  auto no_target = cli({"move-peer", region, store, "999"});
  EXPECT_EQ(no_target.exit_code, 2) << no_target.out << no_target.err;
  EXPECT_NE(no_target.err.find("store 999"), std::string::npos) << no_target.err;
  auto no_voter = cli({"move-peer", region, "999", store});
  EXPECT_EQ(no_voter.exit_code, 2);
  EXPECT_NE(no_voter.err.find("no voter on store 999"), std::string::npos) << no_voter.err;
  auto unknown = cli({"move-peer", "987654", store, "999"});
  EXPECT_NE(unknown.exit_code, 0);
  EXPECT_NE(unknown.err.find("region 987654"), std::string::npos) << unknown.err;
  EXPECT_EQ(cli({"move-peer", region}).exit_code, 2) << "a move names the region and two stores";
}

}  // namespace
}  // namespace rdb

namespace rdb {
namespace {

// rdb-bench --async: --concurrency requests in flight from one thread through the client's
// asynchronous API, for point workloads; refused where it does not apply.
TEST_F(CliTest, BenchAsyncKeepsRequestsInFlightFromOneThread) {
  auto bench = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {
        testing::bin_dir() + "/rdb-bench", "--pd", cluster_->pd().addr, "--json", "--warmup", "0"};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::run_command(argv, cluster_->dir().path(), std::chrono::seconds(60));
  };
  for (const char* workload : {"raw-put", "raw-get", "get", "mixed", "ycsb-b"}) {
    auto r = bench({"--workload", workload, "--async", "--concurrency", "256", "--ops", "2000", "--keys", "500"});
    ASSERT_EQ(r.exit_code, 0) << workload << ": " << r.err;
    auto j = first_json(r);
    EXPECT_EQ(j.value("async", false), true) << r.out;
    EXPECT_GE(j.value("ops", 0ULL), 2000ULL) << r.out;
    EXPECT_TRUE(j["errors"].empty()) << workload << ": " << r.out;
  }
  auto wrong_workload = bench({"--workload", "cas", "--async"});
  EXPECT_EQ(wrong_workload.exit_code, 2);
  EXPECT_NE(wrong_workload.err.find("--async needs"), std::string::npos) << wrong_workload.err;
  auto paced = bench({"--workload", "raw-put", "--async", "--target-rate", "100"});
  EXPECT_EQ(paced.exit_code, 2);
}

// rdb-bench --floor: the machine's fdatasync and loopback round trip, no cluster needed.
TEST_F(CliTest, BenchFloorMeasuresTheDiskAndTheLoopback) {
  auto r = testing::run_command(
      {testing::bin_dir() + "/rdb-bench", "--floor", cluster_->dir().path(), "--duration", "0.2", "--json"},
      cluster_->dir().path(), std::chrono::seconds(60));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = first_json(r);
  EXPECT_GT(j["fdatasync"]["count"].get<std::uint64_t>(), 0U) << r.out;
  EXPECT_GT(j["fdatasync"]["latency_us"]["p50"].get<double>(), 0.0) << r.out;
  EXPECT_EQ(j["fdatasync"]["dir"], cluster_->dir().path()) << r.out;
  EXPECT_DOUBLE_EQ(j["fdatasync"]["bytes_per_s"].get<double>(), j["fdatasync"]["per_s"].get<double>() * 4096) << r.out;
  EXPECT_GT(j["loopback_rtt"]["count"].get<std::uint64_t>(), 0U) << r.out;
  EXPECT_GT(j["put_floor_p50_us"].get<double>(), j["fdatasync"]["latency_us"]["p50"].get<double>()) << r.out;
  auto missing = testing::run_command(
      {testing::bin_dir() + "/rdb-bench", "--floor", cluster_->dir().sub("no-such-dir")}, cluster_->dir().path());
  EXPECT_EQ(missing.exit_code, 2) << missing.err;
  EXPECT_NE(missing.err.find("no-such-dir"), std::string::npos) << missing.err;
}

}  // namespace
}  // namespace rdb
