// A PD group of three real rdb-pd processes: kill -9 the leader under TSO load (no
// timestamp repeats or goes back, the outage ends), the whole group down while KV
// traffic goes on, every member restarted (metadata intact), a member replaced.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "local_cluster.h"
#include "rdb/client.h"
#include "support/tso_order.h"

namespace rdb::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

::testing::AssertionResult timestamps_only_grow(const std::vector<TsoOp>& ops) {
  if (auto violation = tso_order_violation(ops)) {
    return ::testing::AssertionFailure() << *violation;
  }
  return ::testing::AssertionSuccess() << ops.size() << " timestamps";
}

class PdGroupIntegrationTest : public ::testing::Test {
 protected:
  // TSO on plain TCP too (--tso-addr): the clients here move there, so failovers are
  // tested on the path clients take by default in the playground and the bench.
  void SetUp() override {
    cluster_.start_pd_group(3, {"--max-replicas", "3", "--store-up-window-ms", "2000", "--tso-addr", "127.0.0.1:0"});
  }

  // A failure is explained by what the members logged: the last lines of each.
  void TearDown() override {
    if (!HasFailure()) {
      return;
    }
    for (const auto& name : cluster_.pd_member_names()) {
      const Daemon& member = cluster_.pd_member(name);
      std::string logs = member.earlier_logs + member.logs();
      std::size_t start = logs.size();
      for (int lines = 0; lines < 80 && start > 0; ++lines) {
        start = logs.rfind('\n', start - 1);
        if (start == std::string::npos) {
          start = 0;
        }
      }
      std::cerr << "---- " << name << " (last lines) ----\n" << logs.substr(start) << "\n";
    }
  }

  std::unique_ptr<RdbClient> connect(const std::string& endpoints, std::chrono::milliseconds timeout = 20s) {
    ClientOptions o;
    o.pd_endpoints = {endpoints};
    o.timeout = timeout;
    auto c = RdbClient::connect(o);
    EXPECT_TRUE(c.is_ok()) << c.status().to_string();
    return c.is_ok() ? std::move(c).value() : nullptr;
  }

  // The member the group names as its leader, once one does.
  std::string leader(RdbClient& client) {
    std::string found;
    EXPECT_TRUE(poll_until(
        [&] {
          auto members = client.pd_members();
          if (!members.is_ok()) {
            return false;
          }
          for (const auto& m : *members) {
            if (m.leader) {
              found = m.name;
            }
          }
          return !found.empty();
        },
        20s))
        << "the PD group names no leader";
    return found;
  }

  void start_stores() {
    for (const char* name : {"s1", "s2", "s3"}) {
      cluster_.start_store(name);
    }
  }

  LocalCluster cluster_;
};

TEST_F(PdGroupIntegrationTest, KillingTheLeaderUnderTsoLoadNeverRepeatsOrGoesBack) {
  start_stores();
  auto client = connect(cluster_.pd_endpoints());
  ASSERT_TRUE(client);
  ASSERT_TRUE(client->raw_put("before", "1").is_ok());

  std::atomic<bool> stop{false};
  std::mutex ops_mu;
  std::vector<TsoOp> ops;
  std::atomic<int> errors{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 4; ++t) {
    callers.emplace_back([&] {
      std::vector<TsoOp> mine;
      while (!stop) {
        TsoOp op;
        op.invoked = Clock::now();
        auto ts = client->get_tso(1);
        op.answered = Clock::now();
        if (!ts.is_ok()) {
          ++errors;
          continue;
        }
        op.ts = *ts;
        mine.push_back(op);
      }
      std::lock_guard lock(ops_mu);
      ops.insert(ops.end(), mine.begin(), mine.end());
    });
  }
  auto answered_after = [&](Clock::time_point t) {
    // Whether a caller got a timestamp it asked for after `t` (peeks at no shared
    // state: asks once more itself).
    TsoOp op;
    op.invoked = Clock::now();
    auto ts = client->get_tso(1);
    return ts.is_ok() && op.invoked >= t;
  };
  std::vector<double> outages_ms;
  for (int round = 0; round < 3; ++round) {
    std::string victim = leader(*client);
    ASSERT_FALSE(victim.empty());
    auto killed = Clock::now();
    cluster_.kill_pd_member(victim);
    ASSERT_TRUE(poll_until([&] { return answered_after(killed); }, 20s)) << "no timestamp after killing " << victim;
    outages_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - killed).count());
    // The stores follow the new leader too: a write to a fresh key routes and lands.
    ASSERT_TRUE(client->raw_put("after-" + std::to_string(round), "x").is_ok());
    cluster_.restart_pd_member(victim);
  }
  stop = true;
  for (auto& t : callers) {
    t.join();
  }
  for (double ms : outages_ms) {
    std::cout << "TSO back " << ms << " ms after the PD leader was killed\n";
  }
  EXPECT_TRUE(timestamps_only_grow(ops));
  EXPECT_GT(ops.size(), 100u);
  auto v = client->raw_get("before");
  ASSERT_TRUE(v.is_ok());
  EXPECT_EQ(v->value_or(""), "1");
}

TEST_F(PdGroupIntegrationTest, KvGoesOnWithTheWholeGroupDownAndMetadataSurvivesRestarts) {
  start_stores();
  auto client = connect(cluster_.pd_endpoints(), 10s);
  ASSERT_TRUE(client);
  ASSERT_TRUE(client->split({"m"}).is_ok());
  ASSERT_TRUE(client->raw_put("a", "1").is_ok());
  ASSERT_TRUE(client->raw_put("z", "1").is_ok());
  rdb::Result<ClusterStatus> before = Status::internal("not asked");
  ASSERT_TRUE(poll_until(
      [&] {
        before = client->cluster_status();
        return before.is_ok() && before->regions.size() == 2;
      },
      20s))
      << "PD never heard of the split";
  auto ts_before = client->get_tso(1);
  ASSERT_TRUE(ts_before.is_ok());

  for (const auto& name : cluster_.pd_member_names()) {
    cluster_.kill_pd_member(name);
  }
  // Regions whose leaders the client knows keep serving reads and writes.
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(client->raw_put(i % 2 == 0 ? "a" : "z", std::to_string(i)).is_ok()) << i;
  }
  auto a = client->raw_get("a");
  ASSERT_TRUE(a.is_ok()) << a.status().to_string();
  EXPECT_EQ(a->value_or(""), "18");
  auto impatient = connect(cluster_.pd_endpoints(), 500ms);
  ASSERT_TRUE(impatient);
  EXPECT_FALSE(impatient->get_tso(1).is_ok()) << "no PD member runs: no timestamps";

  for (const auto& name : cluster_.pd_member_names()) {
    cluster_.restart_pd_member(name);
  }
  auto fresh = connect(cluster_.pd_endpoints());
  ASSERT_TRUE(fresh);
  auto after = fresh->cluster_status();
  ASSERT_TRUE(after.is_ok()) << after.status().to_string();
  ASSERT_EQ(after->regions.size(), before->regions.size());
  for (std::size_t i = 0; i < after->regions.size(); ++i) {
    EXPECT_EQ(after->regions[i].id, before->regions[i].id);
    EXPECT_EQ(after->regions[i].start_key, before->regions[i].start_key);
  }
  EXPECT_EQ(after->stores.size(), before->stores.size());
  auto ts_after = fresh->get_tso(1);
  ASSERT_TRUE(ts_after.is_ok());
  EXPECT_GT(*ts_after, *ts_before);
  auto z = fresh->raw_get("z");
  ASSERT_TRUE(z.is_ok());
  EXPECT_EQ(z->value_or(""), "19");
}

TEST_F(PdGroupIntegrationTest, AMemberIsReplacedWhileTheGroupServes) {
  start_stores();
  auto client = connect(cluster_.pd_endpoints());
  ASSERT_TRUE(client);
  auto first = client->get_tso(1);
  ASSERT_TRUE(first.is_ok());
  // A client that never lists the members: it reaches a leader added after it started
  // only through the NOT_LEADER redirects that name it.
  auto early = connect(cluster_.pd_endpoints());
  ASSERT_TRUE(early);
  ASSERT_TRUE(early->get_tso(1).is_ok());

  std::string addr = cluster_.new_pd_member_address("pd4");
  auto added = client->add_pd_member("pd4", addr);
  ASSERT_TRUE(added.is_ok()) << added.status().to_string();
  EXPECT_EQ(added->size(), 4u);
  EXPECT_EQ(client->add_pd_member("pd4", addr).status().code(), StatusCode::kInvalidArgument);
  cluster_.join_pd_member("pd4");

  // pd1 leaves (handing over first if it leads), and is stopped.
  auto removed = client->remove_pd_member("pd1");
  ASSERT_TRUE(removed.is_ok()) << removed.status().to_string();
  cluster_.kill_pd_member("pd1");
  EXPECT_EQ(client->remove_pd_member("nobody").status().code(), StatusCode::kInvalidArgument);
  auto members = client->pd_members();
  ASSERT_TRUE(members.is_ok());
  std::vector<std::string> names;
  for (const auto& m : *members) {
    names.push_back(m.name);
  }
  EXPECT_EQ(names, (std::vector<std::string>{"pd2", "pd3", "pd4"}));

  // The new member counts: with the leader killed, two of pd2/pd3/pd4 elect one.
  std::string victim = leader(*client);
  cluster_.kill_pd_member(victim);
  auto later = client->get_tso(1);
  ASSERT_TRUE(later.is_ok()) << later.status().to_string();
  EXPECT_GT(*later, *first);
  auto early_ts = early->get_tso(1);
  ASSERT_TRUE(early_ts.is_ok()) << early_ts.status().to_string();
  EXPECT_GT(*early_ts, *later);
  ASSERT_TRUE(client->raw_put("k", "v").is_ok());
  // A client that only knows pd4 finds the group through it.
  auto via_new = connect(addr);
  ASSERT_TRUE(via_new);
  auto ts = via_new->get_tso(1);
  ASSERT_TRUE(ts.is_ok()) << ts.status().to_string();
  EXPECT_GT(*ts, *later);
}

// The command-line contract: pd-members --json fields, pd-member add/remove, exit codes.
TEST_F(PdGroupIntegrationTest, CliListsAddsAndRemovesMembers) {
  auto cli = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {bin_dir() + "/rdb-cli", "--pd", cluster_.pd_endpoints(), "--json"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_command(argv, cluster_.dir().path(), 30s);
  };
  nlohmann::json j;
  int leaders = 0;
  // Until the group has elected and the answering member has heard of it.
  ASSERT_TRUE(poll_until(
      [&] {
        auto listed = cli({"pd-members"});
        if (listed.exit_code != 0) {
          return false;
        }
        j = nlohmann::json::parse(listed.out.substr(0, listed.out.find('\n')));
        leaders = 0;
        for (const auto& m : j["members"]) {
          leaders += m.value("leader", false) ? 1 : 0;
        }
        return leaders == 1;
      },
      20s))
      << j.dump();
  ASSERT_EQ(j["members"].size(), 3u);
  for (const auto& m : j["members"]) {
    EXPECT_TRUE(m.contains("name") && m.contains("address") && m.contains("leader")) << m.dump();
  }
  EXPECT_EQ(j["members"][0]["name"], "pd1");

  EXPECT_EQ(cli({"pd-member", "add", "no-address"}).exit_code, 2);
  EXPECT_EQ(cli({"pd-member", "add", "pd9=not-an-address"}).exit_code, 2);
  EXPECT_EQ(cli({"pd-member", "add", "pd1=127.0.0.1:1"}).exit_code, 2) << "a name in use";
  EXPECT_EQ(cli({"pd-member", "remove", "nobody"}).exit_code, 2);
  EXPECT_EQ(cli({"pd-member"}).exit_code, 2) << "add or remove is required";

  std::string addr = cluster_.new_pd_member_address("pd4");
  auto added = cli({"pd-member", "add", "pd4=" + addr});
  ASSERT_EQ(added.exit_code, 0) << added.err;
  EXPECT_EQ(nlohmann::json::parse(added.out.substr(0, added.out.find('\n')))["members"].size(), 4u);
  cluster_.join_pd_member("pd4");
  auto removed = cli({"pd-member", "remove", "pd4"});
  ASSERT_EQ(removed.exit_code, 0) << removed.err;
  EXPECT_EQ(nlohmann::json::parse(removed.out.substr(0, removed.out.find('\n')))["members"].size(), 3u);
  EXPECT_EQ(cli({"tso"}).exit_code, 0);
}

// Clocks lie: members run 20 s behind and 3 s ahead (libfaketime), and one member's
// clock jumps back 40 s while it may lead. The leadership moves among them by kills;
// every timestamp must still be unique and in real-time order.
TEST(PdGroupClockTest, SkewedAndJumpingClocksNeverMakeTimestampsGoBack) {
  const std::string lib = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";
  ASSERT_FALSE(read_file(lib).empty()) << lib << " is missing: scripts/install-deps.sh installs Debian's faketime";
  LocalCluster cluster;
  cluster.set_pd_binary("rdb-pd-sysmalloc");
  const std::string clock_file = cluster.dir().sub("pd3.clock");
  { std::ofstream(clock_file) << "+0s\n"; }
  cluster.start_pd_group(3, {}, [&](const std::string& name) -> std::vector<std::string> {
    // Monotonic time stays true (leases and timers use it); the wall clock lies.
    // FORCE_MONOTONIC_FIX=0: libfaketime must leave gRPC's monotonic timed waits alone.
    std::vector<std::string> env = {"LD_PRELOAD=" + lib, "FAKETIME_DONT_FAKE_MONOTONIC=1", "FAKETIME_NO_CACHE=1",
                                    "FAKETIME_FORCE_MONOTONIC_FIX=0"};
    // Sanitizer builds: ASan must otherwise come first among the preloaded libraries.
    const char* asan = std::getenv("ASAN_OPTIONS");
    env.push_back(std::string("ASAN_OPTIONS=") + (asan != nullptr ? std::string(asan) + ":" : "") +
                  "verify_asan_link_order=0");
    if (name == "pd1") {
      env.push_back("FAKETIME=-20s");  // behind
    } else if (name == "pd2") {
      // Ahead. (Further ahead, libfaketime delays gRPC's own timers in the process by about
      // the offset, which stalls its reconnects: an artifact of the tool, not of the clock.)
      env.push_back("FAKETIME=+3s");
    } else {
      env.push_back("FAKETIME_TIMESTAMP_FILE=" + clock_file);  // true, then set back below
    }
    return env;
  });
  ClientOptions o;
  o.pd_endpoints = {cluster.pd_endpoints()};
  o.timeout = 20s;
  auto client = RdbClient::connect(o);
  ASSERT_TRUE(client.is_ok());

  std::atomic<bool> stop{false};
  std::vector<TsoOp> ops;
  std::thread caller([&] {
    while (!stop) {
      TsoOp op;
      op.invoked = Clock::now();
      auto ts = (*client)->get_tso(1);
      op.answered = Clock::now();
      if (ts.is_ok()) {
        op.ts = *ts;
        ops.push_back(op);
      }
    }
  });
  auto leader = [&] {
    std::string found;
    EXPECT_TRUE(poll_until(
        [&] {
          auto members = (*client)->pd_members();
          for (const auto& m : members.is_ok() ? *members : std::vector<PdMemberInfo>{}) {
            if (m.leader) {
              found = m.name;
            }
          }
          return !found.empty();
        },
        20s));
    return found;
  };
  // Kill whoever leads, six times: the leadership visits the fast, slow and jumping clocks.
  std::set<std::string> leaders;
  for (int round = 0; round < 6; ++round) {
    std::string victim = leader();
    ASSERT_FALSE(victim.empty());
    leaders.insert(victim);
    if (round == 2) {
      std::ofstream(clock_file) << "-40s\n";  // pd3's clock jumps back 40 s
    }
    auto killed = Clock::now();
    cluster.kill_pd_member(victim);
    ASSERT_TRUE(poll_until(
        [&] {
          auto ts = (*client)->get_tso(1);
          return ts.is_ok() && Clock::now() > killed;
        },
        20s));
    std::cout << "killed " << victim << ": TSO back after "
              << std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - killed).count() << " ms\n";
    cluster.restart_pd_member(victim);
  }
  stop = true;
  caller.join();
  EXPECT_GE(leaders.size(), 2u) << "the leadership should have moved between clocks";
  EXPECT_TRUE(timestamps_only_grow(ops));
  EXPECT_GT(ops.size(), 100u);
}

}  // namespace
}  // namespace rdb::testing
