// Short chaos scenarios in `make test`: a real 3-store cluster under a workload
// while a fault is injected, then the history is checked for linearizability
// and the final reads for lost writes. Histories are kept when a check fails.
#include <gtest/gtest.h>
#include <signal.h>

#include <thread>

#include "linearizability.h"
#include "local_cluster.h"
#include "workload.h"

namespace rdb::chaos {
namespace {

using rdb::testing::LocalCluster;

class ChaosTest : public ::testing::Test {
 protected:
  void SetUp() override { start({}); }
  void start(std::vector<std::string> store_args) {
    cluster_.start_pd({"--max-replicas", "3", "--store-up-window-ms", "2000"});
    store_args.insert(store_args.end(), {"--raft-log-gc-threshold", "200"});
    for (const char* s : {"s1", "s2", "s3"}) {
      cluster_.start_store(s, true, store_args);
    }
    ClientOptions o;
    o.pd_endpoints = {cluster_.pd().addr};
    o.timeout = std::chrono::seconds(3);
    client_ = std::move(RdbClient::connect(o)).value();
    ASSERT_TRUE(rdb::testing::poll_until(
        [&] {
          auto st = client_->cluster_status();
          return st.is_ok() && st->regions.size() == 1 && st->regions[0].peers.size() == 3 &&
                 st->regions[0].leader.id != 0;
        },
        std::chrono::seconds(60)));
  }

  std::string leader_name() {
    auto st = client_->cluster_status();
    if (!st.is_ok() || st->regions.empty()) {
      return "";
    }
    for (const auto& s : st->stores) {
      if (s.id != st->regions[0].leader.store_id) {
        continue;
      }
      for (const char* name : {"s1", "s2", "s3"}) {
        if (cluster_.store(name).addr == s.address) {
          return name;
        }
      }
    }
    return "";
  }

  // Runs the workload while `fault` runs on another thread, then checks.
  void run_and_check(const std::string& scenario, const std::function<void()>& fault) {
    WorkloadOptions w;
    w.duration = std::chrono::seconds(8);
    w.seed = 1;
    Recorder rec;
    std::thread nemesis(fault);
    run_workload(*client_, w, rec);
    nemesis.join();
    // Healed: a long deadline so the final reads see the settled cluster.
    ClientOptions o;
    o.pd_endpoints = {cluster_.pd().addr};
    o.timeout = std::chrono::seconds(30);
    auto patient = std::move(RdbClient::connect(o)).value();
    final_reads(*patient, w, rec);
    auto ops = rec.operations();
    std::size_t ok = 0, unknown = 0, failed = 0;
    for (const auto& op : ops) {
      (op.outcome == Outcome::kOk ? ok : op.outcome == Outcome::kUnknown ? unknown : failed)++;
    }
    Verdict v = check_history(ops);
    std::cout << scenario << ": " << ops.size() << " operations (" << ok << " ok, " << unknown << " unknown, " << failed
              << " failed) on " << v.keys << " keys, checked in " << v.seconds
              << " s: " << (v.linearizable ? "linearizable" : "NOT linearizable") << "\n";
    if (!v.linearizable) {
      std::string path = ::testing::TempDir() + "/rdb-chaos-" + scenario + ".jsonl";
      (void)rec.write(path);
      FAIL() << v.failures.front().explanation << "history kept in " << path;
    }
    EXPECT_GT(ok, 100u) << "the workload barely ran";
  }

  LocalCluster cluster_;
  std::unique_ptr<RdbClient> client_;
};

// Reads sent to every store directly: followers refuse them (NotLeader), so the
// history stays linearizable...
class DirectReadsTest : public ChaosTest {
 protected:
  void SetUp() override {}
  Verdict run_direct_reads() {
    std::vector<std::unique_ptr<RdbClient>> direct;
    WorkloadOptions w;
    w.duration = std::chrono::seconds(5);
    for (const char* s : {"s1", "s2", "s3"}) {
      ClientOptions o;
      o.store_addr = cluster_.store(s).addr;
      o.timeout = std::chrono::seconds(3);
      direct.push_back(std::move(RdbClient::connect(o)).value());
      w.read_clients.push_back(direct.back().get());
    }
    Recorder rec;
    run_workload(*client_, w, rec);
    auto ops = rec.operations();
    Verdict v = check_history(ops);
    std::cout << ops.size() << " operations, checked in " << v.seconds
              << " s: " << (v.linearizable ? "linearizable" : "NOT linearizable") << "\n";
    if (!v.linearizable) {
      std::cout << v.failures.front().explanation.substr(0, 2000) << "\n";
    }
    return v;
  }
};

TEST_F(DirectReadsTest, SafeReadsStayLinearizableWhenSentToFollowers) {
  start({});
  EXPECT_TRUE(run_direct_reads().linearizable);
}

// ...but with the test-only switch that serves reads from any replica's local
// state, the checker must catch the stale reads: this shows the harness works.
TEST_F(DirectReadsTest, UnsafeLocalReadsAreReportedAsNotLinearizable) {
  start({"--test-unsafe-local-reads"});
  EXPECT_FALSE(run_direct_reads().linearizable) << "the checker missed stale reads from followers";
}

TEST_F(ChaosTest, KillAndRestartTheLeader) {
  run_and_check("kill-leader", [&] {
    std::this_thread::sleep_for(std::chrono::seconds(2));  // let the workload run first (a schedule, not a wait)
    std::string leader = leader_name();
    if (leader.empty()) {
      return;
    }
    cluster_.store(leader).process->kill_now();
    std::this_thread::sleep_for(std::chrono::seconds(3));  // fault window
    cluster_.restart_store(leader);
  });
}

TEST_F(ChaosTest, PauseAFollowerAndTheLeader) {
  run_and_check("pause", [&] {
    std::this_thread::sleep_for(std::chrono::seconds(1));  // schedule
    std::string leader = leader_name();
    if (leader.empty()) {
      return;
    }
    std::string follower = leader == "s1" ? "s2" : "s1";
    cluster_.store(follower).process->signal(SIGSTOP);
    std::this_thread::sleep_for(std::chrono::seconds(2));  // fault window
    cluster_.store(follower).process->signal(SIGCONT);
    cluster_.store(leader).process->signal(SIGSTOP);
    std::this_thread::sleep_for(std::chrono::seconds(2));  // fault window: a new leader is elected
    cluster_.store(leader).process->signal(SIGCONT);
  });
}

}  // namespace
}  // namespace rdb::chaos
