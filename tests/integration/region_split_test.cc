// Many regions on real processes (PD and three stores on loopback): splits under
// write load lose nothing, and scans, batches and delete-range over many regions see
// every key once, in order.
#include <fmt/format.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <iostream>
#include <map>
#include <mutex>
#include <thread>

#include "kvrpc.grpc.pb.h"
#include "local_cluster.h"
#include "rdb/client.h"

namespace rdb {
namespace {

using testing::LocalCluster;

class RegionSplitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::vector<std::string> pd_args = {"--max-replicas", "3"};
    pd_args.insert(pd_args.end(), pd_args_.begin(), pd_args_.end());
    cluster_.start_pd(pd_args);
    for (const char* s : {"s1", "s2", "s3"}) {
      cluster_.start_store(s, true, store_args_);
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
        std::chrono::seconds(60)))
        << "the region never reached 3 replicas";
  }

  static std::string key(int i) { return fmt::format("k{:05}", i); }

  // Waits until PD knows `n` regions covering the key space, each with a leader.
  bool pd_knows_regions(std::size_t n) {
    return testing::poll_until(
        [&] {
          auto st = client_->cluster_status();
          if (!st.is_ok() || st->regions.size() != n) {
            return false;
          }
          std::string expect_start;
          for (const auto& r : st->regions) {
            if (r.leader.id == 0 || r.start_key != expect_start) {
              return false;
            }
            expect_start = r.end_key;
          }
          return expect_start.empty();
        },
        std::chrono::seconds(30));
  }

  LocalCluster cluster_;
  std::unique_ptr<RdbClient> client_;
  std::vector<std::string> store_args_;
  std::vector<std::string> pd_args_;
};

// PD that merges small regions soon after they settle; stores that measure them often.
class MergeTest : public RegionSplitTest {
 protected:
  void SetUp() override {
    pd_args_ = {"--max-merge-region-size", "16KiB", "--split-merge-interval", "1"};
    store_args_ = {"--split-check-interval-ms", "200"};
    RegionSplitTest::SetUp();
  }
};

// Stores that split small regions quickly.
class AutoSplitTest : public RegionSplitTest {
 protected:
  void SetUp() override {
    store_args_ = {"--region-split-size", "64KiB", "--split-check-interval-ms", "100"};
    RegionSplitTest::SetUp();
  }
};

TEST_F(RegionSplitTest, SplitsUnderWriteLoadLoseNoAcknowledgedWrite) {
  constexpr int kWriters = 4;
  constexpr int kKeysPerWriter = 300;
  std::mutex mu;
  std::map<std::string, std::string> acknowledged;
  std::atomic<int> failures{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; i < kKeysPerWriter; ++i) {
        std::string k = key(i * kWriters + w);
        std::string v = fmt::format("v{}", i);
        if (client_->raw_put(k, v).is_ok()) {
          std::lock_guard lock(mu);
          acknowledged[k] = v;
        } else {
          failures.fetch_add(1);
        }
      }
    });
  }
  // Cut while the writers run: first in two, then each half again, then more.
  std::vector<std::vector<std::string>> rounds = {
      {key(600)}, {key(300), key(900)}, {key(100), key(200), key(700), key(1000), key(1100)}};
  std::size_t regions = 1;
  for (const auto& keys : rounds) {
    auto r = client_->split(keys);
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    regions += keys.size();
  }
  for (auto& t : writers) {
    t.join();
  }
  EXPECT_EQ(failures.load(), 0) << "writes failed during the splits";
  ASSERT_TRUE(pd_knows_regions(regions)) << "PD does not know the " << regions << " regions";

  // Every acknowledged write is there: by point reads, one scan, and batch reads.
  for (const auto& [k, v] : acknowledged) {
    auto got = client_->raw_get(k);
    ASSERT_TRUE(got.is_ok()) << k << ": " << got.status().to_string();
    ASSERT_TRUE(got->has_value()) << k << " is missing";
    EXPECT_EQ(**got, v) << k;
  }
  auto all = client_->raw_scan("", "", ScanOptions{10240, false, false});
  ASSERT_TRUE(all.is_ok()) << all.status().to_string();
  ASSERT_EQ(all->size(), acknowledged.size());
  auto it = acknowledged.begin();
  for (const auto& kv : *all) {
    EXPECT_EQ(kv.key, it->first);
    EXPECT_EQ(kv.value, it->second);
    ++it;
  }
  std::vector<std::string> keys;
  for (const auto& [k, v] : acknowledged) {
    keys.push_back(k);
  }
  auto batch = client_->raw_batch_get(keys);
  ASSERT_TRUE(batch.is_ok()) << batch.status().to_string();
  EXPECT_EQ(batch->size(), keys.size());
}

TEST_F(RegionSplitTest, ScansBatchesAndDeleteRangeSpanManyRegions) {
  std::vector<std::string> split_keys;
  for (int i = 20; i < 1000; i += 25) {
    split_keys.push_back(key(i));
  }
  auto split = client_->split(split_keys);
  ASSERT_TRUE(split.is_ok()) << split.status().to_string();
  EXPECT_EQ(split->size(), split_keys.size() + 1);
  ASSERT_TRUE(pd_knows_regions(split_keys.size() + 1));

  // A batch put over every region, in an order unlike the keys'.
  std::vector<KeyValue> pairs;
  for (int i = 999; i >= 0; i -= 3) {
    pairs.push_back({key(i), fmt::format("v{}", i)});
  }
  ASSERT_TRUE(client_->raw_batch_put(pairs).is_ok());
  std::vector<std::string> expected;
  for (int i = 0; i < 1000; ++i) {
    if ((999 - i) % 3 == 0) {
      expected.push_back(key(i));
    }
  }
  auto check_scan = [&](const std::string& start, const std::string& end, std::uint32_t limit, bool reverse) {
    std::vector<std::string> want;
    for (const auto& k : expected) {
      if (k >= start && (end.empty() || k < end)) {
        want.push_back(k);
      }
    }
    if (reverse) {
      std::reverse(want.begin(), want.end());
    }
    if (want.size() > limit) {
      want.resize(limit);
    }
    auto got = client_->raw_scan(start, end, ScanOptions{limit, reverse, true});
    ASSERT_TRUE(got.is_ok()) << got.status().to_string();
    std::vector<std::string> got_keys;
    for (const auto& kv : *got) {
      got_keys.push_back(kv.key);
    }
    EXPECT_EQ(got_keys, want) << "scan [" << start << ", " << end << ") limit " << limit << (reverse ? " reverse" : "");
  };
  check_scan("", "", 10240, false);
  check_scan("", "", 10240, true);
  check_scan(key(13), key(911), 100, false);
  check_scan(key(13), key(911), 100, true);
  check_scan(key(20), key(45), 5, false);  // exactly one region
  check_scan(key(44), key(46), 10, true);  // across one boundary
  check_scan(key(500), "", 17, true);

  // Batch reads and deletes cut by region; a delete-range over many regions.
  std::vector<std::string> some = {key(999), key(0), key(500), key(3), key(996)};
  auto got = client_->raw_batch_get(some);
  ASSERT_TRUE(got.is_ok());
  ASSERT_EQ(got->size(), 4u) << "key(500) was never written";
  EXPECT_EQ((*got)[0].key, key(999));
  EXPECT_EQ((*got)[1].key, key(0));
  ASSERT_TRUE(client_->raw_batch_delete({key(0), key(999)}).is_ok());
  ASSERT_TRUE(client_->raw_delete_range(key(100), key(900)).is_ok());
  expected.erase(std::remove_if(expected.begin(), expected.end(),
                                [&](const std::string& k) {
                                  return k == key(0) || k == key(999) || (k >= key(100) && k < key(900));
                                }),
                 expected.end());
  check_scan("", "", 10240, false);
  check_scan("", "", 10240, true);
}

// SplitRegion straight to a store, with what a client library would never send.
TEST_F(RegionSplitTest, BadSplitRequestsAreRefusedAndChangeNothing) {
  auto st = client_->cluster_status();
  ASSERT_TRUE(st.is_ok());
  const RegionInfo& r = st->regions[0];
  std::string addr;
  for (const auto& s : st->stores) {
    if (s.id == r.leader.store_id) {
      addr = s.address;
    }
  }
  auto stub = kvrpc::Kv::NewStub(grpc::CreateChannel(addr, grpc::InsecureChannelCredentials()));
  auto split = [&](std::vector<std::string> keys) {
    kvrpc::SplitRegionRequest req;
    req.mutable_context()->set_region_id(r.id);
    req.mutable_context()->mutable_region_epoch()->set_conf_ver(r.conf_ver);
    req.mutable_context()->mutable_region_epoch()->set_version(r.version);
    for (auto& k : keys) {
      req.add_split_keys(k);
    }
    kvrpc::SplitRegionResponse resp;
    grpc::ClientContext ctx;
    return stub->SplitRegion(&ctx, req, &resp);
  };
  std::vector<std::string> too_many;
  for (int i = 0; i < 65; ++i) {
    too_many.push_back(key(i));
  }
  for (const auto& [what, keys] :
       std::vector<std::pair<std::string, std::vector<std::string>>>{{"no keys", {}},
                                                                     {"65 keys", too_many},
                                                                     {"out of order", {key(5), key(1)}},
                                                                     {"repeated", {key(1), key(1)}},
                                                                     {"an empty key", {""}},
                                                                     {"a key over 8 KiB", {std::string(8193, 'k')}}}) {
    grpc::Status s = split(keys);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << what << ": " << s.error_message();
  }
  auto after = client_->cluster_status();
  ASSERT_TRUE(after.is_ok());
  EXPECT_EQ(after->regions.size(), 1u);
  EXPECT_EQ(after->regions[0].version, r.version);
}

// PD persists its region tree: after a restart it routes to every region at once,
// before any store reports again.
TEST_F(RegionSplitTest, PdRestartKeepsTheRegionTree) {
  std::vector<std::string> keys;
  for (int i = 100; i < 1000; i += 100) {
    keys.push_back(key(i));
  }
  ASSERT_TRUE(client_->split(keys).is_ok());
  ASSERT_TRUE(pd_knows_regions(keys.size() + 1));
  auto before = client_->cluster_status();
  ASSERT_TRUE(before.is_ok());
  cluster_.pd().process->kill_now();
  cluster_.restart_pd_in_place();
  auto after = client_->cluster_status();
  ASSERT_TRUE(after.is_ok()) << after.status().to_string();
  ASSERT_EQ(after->regions.size(), before->regions.size());
  for (std::size_t i = 0; i < after->regions.size(); ++i) {
    EXPECT_EQ(after->regions[i].id, before->regions[i].id);
    EXPECT_EQ(after->regions[i].start_key, before->regions[i].start_key);
    EXPECT_EQ(after->regions[i].end_key, before->regions[i].end_key);
  }
  // And a fresh client routes through it to every region.
  ClientOptions o;
  o.pd_endpoints = {cluster_.pd().addr};
  o.timeout = std::chrono::seconds(20);
  auto fresh = std::move(RdbClient::connect(o)).value();
  for (int i = 0; i < 1000; i += 50) {
    ASSERT_TRUE(fresh->raw_put(key(i), "after-restart").is_ok()) << key(i);
  }
  auto all = fresh->raw_scan("", "", ScanOptions{10240, false, true});
  ASSERT_TRUE(all.is_ok());
  EXPECT_EQ(all->size(), 20u);
}

TEST_F(AutoSplitTest, RegionsSplitByThemselvesAsDataGrows) {
  // 1 MiB of keys and values: with 64 KiB regions (split past 96 KiB), at least 8 regions.
  std::map<std::string, std::string> written;
  for (int batch = 0; batch < 64; ++batch) {
    std::vector<KeyValue> pairs;
    for (int i = 0; i < 16; ++i) {
      std::string k = key(batch * 16 + i);
      pairs.push_back({k, std::string(1018, static_cast<char>('a' + batch % 26))});
      written[k] = pairs.back().value;
    }
    auto s = client_->raw_batch_put(pairs);
    ASSERT_TRUE(s.is_ok()) << s.to_string();
  }
  ASSERT_TRUE(testing::poll_until(
      [&] {
        auto st = client_->cluster_status();
        return st.is_ok() && st->regions.size() >= 8;
      },
      std::chrono::seconds(60)))
      << "the regions did not split";
  auto st = client_->cluster_status();
  ASSERT_TRUE(st.is_ok());
  std::string expect_start;
  for (const auto& r : st->regions) {
    EXPECT_EQ(r.start_key, expect_start) << "regions must tile the key space";
    expect_start = r.end_key;
  }
  auto all = client_->raw_scan("", "", ScanOptions{10240, false, false});
  ASSERT_TRUE(all.is_ok()) << all.status().to_string();
  ASSERT_EQ(all->size(), written.size());
  auto it = written.begin();
  std::uint64_t bytes = 0;
  for (const auto& kv : *all) {
    EXPECT_EQ(kv.key, it->first);
    EXPECT_EQ(kv.value, it->second);
    bytes += kv.key.size() + kv.value.size();
    ++it;
  }
  // Leaders measure their regions and PD shows the sizes: they add up to what was written.
  std::uint64_t reported = 0;
  std::uint64_t keys = 0;
  EXPECT_TRUE(testing::poll_until(
      [&] {
        auto now = client_->cluster_status();
        if (!now.is_ok()) {
          return false;
        }
        reported = 0;
        keys = 0;
        for (const auto& r : now->regions) {
          reported += r.approximate_size;
          keys += r.approximate_keys;
        }
        return reported == bytes && keys == written.size();
      },
      std::chrono::seconds(30)))
      << "regions report " << reported << " bytes in " << keys << " keys; " << bytes << " bytes in " << written.size()
      << " keys were written";
}

// Most data deleted: the small regions left merge back into one while a client keeps
// writing; every acknowledged write and every key kept is there after.
TEST_F(MergeTest, RegionsMergeAfterMostDataIsDeleted) {
  std::map<std::string, std::string> kept;
  for (int batch = 0; batch < 25; ++batch) {
    std::vector<KeyValue> pairs;
    for (int i = 0; i < 16; ++i) {
      pairs.push_back({key(batch * 16 + i), std::string(1000, 'x')});
    }
    ASSERT_TRUE(client_->raw_batch_put(pairs).is_ok());
  }
  std::vector<std::string> cuts;
  for (int i = 50; i < 400; i += 50) {
    cuts.push_back(key(i));
  }
  auto split = client_->split(cuts);
  ASSERT_TRUE(split.is_ok()) << split.status().to_string();
  ASSERT_TRUE(pd_knows_regions(8));
  // Delete all but every 40th key (400 KiB → a few KiB: every region is small now).
  ASSERT_TRUE(client_->raw_delete_range(key(0), key(400)).is_ok());
  for (int i = 0; i < 400; i += 40) {
    kept[key(i)] = fmt::format("kept{}", i);
    ASSERT_TRUE(client_->raw_put(key(i), kept[key(i)]).is_ok());
  }
  // A writer keeps going while regions merge: its writes may wait or be retried, never lost.
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::map<std::string, std::string> acknowledged;
  std::atomic<int> failures{0};
  std::thread writer([&] {
    for (int n = 0; !stop.load(); ++n) {
      std::string k = fmt::format("w{:03}-{}", n % 97, key((n * 37) % 400));
      std::string v = fmt::format("v{}", n);
      if (client_->raw_put(k, v).is_ok()) {
        std::lock_guard lock(mu);
        acknowledged[k] = v;
      } else {
        failures.fetch_add(1);
      }
    }
  });
  bool merged = testing::poll_until(
      [&] {
        auto st = client_->cluster_status();
        return st.is_ok() && st->regions.size() <= 2;
      },
      std::chrono::seconds(90));
  stop = true;
  writer.join();
  if (!merged) {
    // What PD sees, and what the daemons said about merges: for the next reader.
    if (auto st = client_->cluster_status(); st.is_ok()) {
      for (const auto& r : st->regions) {
        std::cerr << fmt::format("region {} [{}, {}) size {} keys {} leader store {}\n", r.id, r.start_key, r.end_key,
                                 r.approximate_size, r.approximate_keys, r.leader.store_id);
      }
    }
    auto merge_lines = [](const std::string& logs) {
      std::string out;
      std::size_t pos = 0;
      while (pos < logs.size()) {
        std::size_t end = logs.find('\n', pos);
        std::string line = logs.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
        if (line.find("merg") != std::string::npos) {
          out += line + "\n";
        }
        pos = end == std::string::npos ? logs.size() : end + 1;
      }
      return out;
    };
    std::cerr << "pd:\n" << merge_lines(cluster_.pd().logs());
    for (const char* s : {"s1", "s2", "s3"}) {
      std::cerr << s << ":\n" << merge_lines(cluster_.store(s).logs());
    }
  }
  ASSERT_TRUE(merged) << "the small regions did not merge";
  EXPECT_EQ(failures.load(), 0) << "writes failed while regions merged";
  for (const auto& [k, v] : kept) {
    auto got = client_->raw_get(k);
    ASSERT_TRUE(got.is_ok()) << got.status().to_string();
    ASSERT_TRUE(got->has_value()) << k << " is gone";
    EXPECT_EQ(**got, v);
  }
  auto all = client_->raw_scan("", "", ScanOptions{10240, false, false});
  ASSERT_TRUE(all.is_ok()) << all.status().to_string();
  std::map<std::string, std::string> expect = kept;
  for (const auto& [k, v] : acknowledged) {
    expect[k] = v;
  }
  ASSERT_EQ(all->size(), expect.size()) << "the scan after the merges sees every key once";
  auto it = expect.begin();
  for (const auto& kv : *all) {
    EXPECT_EQ(kv.key, it->first);
    EXPECT_EQ(kv.value, it->second);
    ++it;
  }
}

}  // namespace
}  // namespace rdb
