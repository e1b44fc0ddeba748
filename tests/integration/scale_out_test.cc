// Scale-out and scale-in on real processes: adding stores to a cluster of many
// regions moves replicas and leaders onto them while clients keep writing; removing
// them drains them again. Nothing acknowledged is lost on the way.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <iostream>
#include <map>
#include <mutex>
#include <thread>

#include "local_cluster.h"
#include "rdb/client.h"

namespace rdb {
namespace {

using testing::LocalCluster;

constexpr std::size_t kRegions = 30;

class ScaleOutTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cluster_.start_pd({"--max-replicas", "3", "--region-schedule-limit", "8", "--leader-schedule-limit", "8"});
    for (const char* s : {"s1", "s2", "s3"}) {
      cluster_.start_store(s);
    }
    ClientOptions o;
    o.pd_endpoints = {cluster_.pd().addr};
    o.timeout = std::chrono::seconds(20);
    client_ = std::move(RdbClient::connect(o)).value();
    ASSERT_TRUE(testing::poll_until(
        [&] {
          auto st = client_->cluster_status();
          return st.is_ok() && st->regions.size() == 1 && st->regions[0].peers.size() == 3 &&
                 st->regions[0].leader.id != 0;
        },
        std::chrono::seconds(60)));
    std::vector<std::string> keys;
    for (std::size_t i = 1; i < kRegions; ++i) {
      keys.push_back(key(static_cast<int>(i * 1000 / kRegions)));
    }
    auto split = client_->split(keys);
    ASSERT_TRUE(split.is_ok()) << split.status().to_string();
  }

  static std::string key(int i) { return fmt::format("key{:04}", i); }

  // Whether every live store holds replicas and leaders within ±25 % of the mean.
  bool balanced(std::size_t stores, std::string* why) {
    auto st = client_->cluster_status();
    if (!st.is_ok()) {
      *why = st.status().to_string();
      return false;
    }
    std::map<std::uint64_t, std::pair<double, double>> per_store;  // replicas, leaders
    for (const auto& s : st->stores) {
      if (s.state == "up") {
        per_store[s.id];
      }
    }
    for (const auto& r : st->regions) {
      if (r.peers.size() != 3 || r.leader.id == 0) {
        *why = fmt::format("region {} has {} peers, leader {}", r.id, r.peers.size(), r.leader.id);
        return false;
      }
      for (const auto& p : r.peers) {
        per_store[p.store_id].first += 1;
      }
      per_store[r.leader.store_id].second += 1;
    }
    if (per_store.size() != stores) {
      *why = fmt::format("{} stores hold or may hold replicas, expected {}", per_store.size(), stores);
      return false;
    }
    double replicas_mean = 3.0 * static_cast<double>(st->regions.size()) / static_cast<double>(stores);
    double leaders_mean = static_cast<double>(st->regions.size()) / static_cast<double>(stores);
    *why = "";
    bool ok = true;
    for (const auto& [id, load] : per_store) {
      *why += fmt::format("store {}: {} replicas, {} leaders; ", id, load.first, load.second);
      ok = ok && std::abs(load.first - replicas_mean) <= 0.25 * replicas_mean &&
           std::abs(load.second - leaders_mean) <= 0.25 * leaders_mean;
    }
    return ok;
  }

  // PD's log lines about the region `why` names ("region N ..."), for a failure message.
  std::string pd_log_of_region(const std::string& why) {
    std::string needle = why.substr(0, why.find(' ', 7)) + ":";  // "region N:"
    std::string out;
    std::string log = cluster_.pd().logs();
    for (std::size_t at = 0; at < log.size();) {
      std::size_t end = log.find('\n', at);
      std::string line = log.substr(at, end == std::string::npos ? std::string::npos : end - at + 1);
      if (line.find(needle) != std::string::npos) {
        out += line;
      }
      at = end == std::string::npos ? log.size() : end + 1;
    }
    return out.size() > 8000 ? out.substr(out.size() - 8000) : out;
  }

  LocalCluster cluster_;
  std::unique_ptr<RdbClient> client_;
};

TEST_F(ScaleOutTest, AddingStoresSpreadsRegionsAndLeadersAndRemovingThemDrainsThem) {
  // Clients write all along.
  std::atomic<bool> stop{false};
  std::mutex mu;
  // Per key, the values it may hold at the end: the last acknowledged one and any
  // written after it with an unknown outcome (each key has one writer).
  std::map<std::string, std::vector<std::string>> allowed;
  std::atomic<int> failures{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < 4; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; !stop.load(); ++i) {
        std::string k = key((i * 4 + w) % 1000);
        std::string v = fmt::format("w{}-{}", w, i);
        Status s = client_->raw_put(k, v);
        std::lock_guard lock(mu);
        if (s.is_ok()) {
          allowed[k] = {v};
        } else if (s.code() == StatusCode::kUndetermined) {
          auto& values = allowed[k];
          if (values.empty()) {
            values.push_back("");  // never acknowledged: it may be absent
          }
          values.push_back(v);
        } else {
          failures.fetch_add(1);
        }
      }
    });
  }
  auto started = std::chrono::steady_clock::now();
  cluster_.start_store("s4");
  cluster_.start_store("s5");
  std::string why;
  bool spread = testing::poll_until([&] { return balanced(5, &why); }, std::chrono::seconds(180));
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  EXPECT_TRUE(spread) << "not balanced over 5 stores: " << why << "\n" << pd_log_of_region(why);
  std::cout << "3 -> 5 stores, " << kRegions << " regions: balanced in " << took.count() << " ms (" << why << ")\n";
  // Replicas moved by swapping a caught-up learner in for a voter in one joint step.
  EXPECT_NE(cluster_.pd().logs().find("for a joint change"), std::string::npos)
      << "PD moved no replica with a joint change";

  // Scale in: both new stores drain and become tombstones.
  auto ids = client_->cluster_status();
  ASSERT_TRUE(ids.is_ok());
  for (const auto& s : ids->stores) {
    if (s.address == cluster_.store("s4").addr || s.address == cluster_.store("s5").addr) {
      ASSERT_TRUE(client_->remove_store(s.id).is_ok());
    }
  }
  bool drained = testing::poll_until(
      [&] {
        auto st = client_->cluster_status();
        if (!st.is_ok()) {
          return false;
        }
        int tombstones = 0;
        std::string states;
        for (const auto& s : st->stores) {
          tombstones += s.state == "tombstone" ? 1 : 0;
          states += fmt::format("store {} {}; ", s.id, s.state);
        }
        const bool spread_over_three = balanced(3, &why);
        why = states + why;
        return tombstones == 2 && spread_over_three;
      },
      std::chrono::seconds(180));
  EXPECT_TRUE(drained) << "the removed stores did not drain: " << why << "\n"
                       << pd_log_of_region(
                              why.substr(why.find("region ") == std::string::npos ? 0 : why.find("region ")))
                       << "\nstore s5 log tail:\n"
                       << [&] {
                            std::string l = cluster_.store("s5").logs();
                            return l.size() > 6000 ? l.substr(l.size() - 6000) : l;
                          }();
  stop = true;
  for (auto& t : writers) {
    t.join();
  }
  EXPECT_EQ(failures.load(), 0) << "writes failed while regions moved";
  for (const auto& [k, values] : allowed) {
    auto got = client_->raw_get(k);
    ASSERT_TRUE(got.is_ok()) << k;
    // Absent only if nothing was ever acknowledged for it ("" stands for that).
    std::string held = got->has_value() ? **got : "";
    EXPECT_NE(std::find(values.begin(), values.end(), held), values.end()) << k << " holds '" << held << "'";
  }
}

}  // namespace
}  // namespace rdb
