// Batch splits on RaftStores replicating through an in-process transport: the
// region is cut on every store, the new regions elect leaders and serve, requests
// under the old epoch or outside the new ranges are refused, and all of it survives
// restarts and a store that was away during the split.
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <future>

#include "server/raft_store_fixture.h"

namespace rdb {
namespace {

class RaftStoreSplitTest : public RaftStoreTest {
 protected:
  std::optional<RegionStatus> status_of(std::uint64_t store, std::uint64_t region_id) {
    if (!nodes_[store].store) {
      return std::nullopt;
    }
    for (const auto& s : nodes_[store].store->regions()) {
      if (s.region.id() == region_id) {
        return s;
      }
    }
    return std::nullopt;
  }

  std::optional<RegionStatus> leader_of(std::uint64_t region_id) {
    for (auto& [id, n] : nodes_) {
      if (auto s = status_of(id, region_id); s && s->is_leader) {
        return s;
      }
    }
    return std::nullopt;
  }

  // Proposes `cmd` to region `region_id`'s leader, retrying while leadership settles.
  ProposeResult write_to(std::uint64_t region_id, const KvCommand& cmd) {
    ProposeResult last;
    for (int attempt = 0; attempt < 200; ++attempt) {
      auto leader = leader_of(region_id);
      if (!leader) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));  // back off: no leader yet
        continue;
      }
      kvrpc::Context ctx;
      ctx.set_region_id(region_id);
      *ctx.mutable_region_epoch() = leader->region.region_epoch();
      last = propose_with(leader->self.store_id(), ctx, cmd);
      if (!last.region_error || last.region_error->has_key_not_in_region()) {
        return last;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // back off while leadership settles
    }
    ADD_FAILURE() << "region " << region_id << " never accepted the write";
    return last;
  }

  ProposeResult propose_with(std::uint64_t store, const kvrpc::Context& ctx, const KvCommand& cmd) {
    auto p = std::make_shared<std::promise<ProposeResult>>();
    auto f = p->get_future();
    std::vector<std::string> keys(cmd.keys().begin(), cmd.keys().end());
    nodes_[store].store->propose(ctx, keys, cmd, [p](ProposeResult r) { p->set_value(std::move(r)); });
    EXPECT_EQ(f.wait_for(std::chrono::seconds(20)), std::future_status::ready);
    return f.get();
  }

  // A split of region 100 at `keys`, new regions 200, 300, ... with peers 2001.., 3001..
  static KvCommand split_at(const std::vector<std::string>& keys, int peers = 3) {
    KvCommand c;
    c.set_type(KvCommand::BATCH_SPLIT);
    std::uint64_t id = 200;
    for (const auto& k : keys) {
      auto* s = c.add_splits();
      s->set_split_key(k);
      s->set_new_region_id(id);
      for (int p = 1; p <= peers; ++p) {
        s->add_new_peer_ids(id * 10 + static_cast<std::uint64_t>(p));
      }
      id += 100;
    }
    return c;
  }

  bool store_has_regions(std::uint64_t store, std::size_t n) {
    return nodes_[store].store && nodes_[store].store->regions().size() == n;
  }

  void start_three() {
    auto region = region_with({1, 2, 3});
    for (std::uint64_t s = 1; s <= 3; ++s) {
      start(s, region);
    }
    wait_for_leader();
  }
};

TEST_F(RaftStoreSplitTest, BatchSplitCutsTheRegionOnEveryStore) {
  start_three();
  for (char c = 'a'; c <= 'z'; ++c) {
    ASSERT_FALSE(write_to(100, put(std::string(1, c), "v")).region_error);
  }
  ProposeResult split = write_to(100, split_at({"h", "p"}));
  ASSERT_FALSE(split.region_error);
  ASSERT_EQ(split.result.error(), "");
  ASSERT_EQ(split.result.split_regions_size(), 3);
  const auto& regions = split.result.split_regions();
  EXPECT_EQ(regions[0].id(), 100u);
  EXPECT_EQ(regions[0].start_key(), "");
  EXPECT_EQ(regions[0].end_key(), "h");
  EXPECT_EQ(regions[1].id(), 200u);
  EXPECT_EQ(regions[1].start_key(), "h");
  EXPECT_EQ(regions[1].end_key(), "p");
  EXPECT_EQ(regions[2].id(), 300u);
  EXPECT_EQ(regions[2].start_key(), "p");
  EXPECT_EQ(regions[2].end_key(), "");
  for (const auto& r : regions) {
    EXPECT_EQ(r.region_epoch().version(), 3u) << "a split bumps version by the number of new regions";
    EXPECT_EQ(r.region_epoch().conf_ver(), 1u);
    ASSERT_EQ(r.peers_size(), 3);
  }
  EXPECT_EQ(regions[1].peers(0).id(), 2001u);
  EXPECT_EQ(regions[1].peers(0).store_id(), 1u);

  for (std::uint64_t s = 1; s <= 3; ++s) {
    EXPECT_TRUE(testing::poll_until([&] { return store_has_regions(s, 3); }, std::chrono::seconds(20)))
        << "store " << s << " did not apply the split";
  }
  // Each new region elects a leader and takes writes; the data before the split is there.
  for (std::uint64_t id : {200u, 300u}) {
    EXPECT_TRUE(testing::poll_until([&] { return leader_of(id).has_value(); }, std::chrono::seconds(20)))
        << "region " << id << " elected no leader";
  }
  ASSERT_FALSE(write_to(200, put("k", "after")).region_error);
  ASSERT_FALSE(write_to(300, put("zz", "after")).region_error);
  for (std::uint64_t s = 1; s <= 3; ++s) {
    EXPECT_TRUE(testing::poll_until([&] { return has_value(s, "zz", "after"); }, std::chrono::seconds(20)));
    EXPECT_TRUE(has_value(s, "a", "v"));
    EXPECT_TRUE(has_value(s, "q", "v"));
  }

  // The original region no longer takes keys past its new end...
  ProposeResult outside = write_to(100, put("q", "x"));
  ASSERT_TRUE(outside.region_error.has_value());
  EXPECT_TRUE(outside.region_error->has_key_not_in_region());
  // ...and a request under the old epoch is told the current region.
  auto leader = leader_of(100);
  ASSERT_TRUE(leader.has_value());
  kvrpc::Context old;
  old.set_region_id(100);
  old.mutable_region_epoch()->set_conf_ver(1);
  old.mutable_region_epoch()->set_version(1);
  ProposeResult stale = propose_with(leader->self.store_id(), old, put("a", "x"));
  ASSERT_TRUE(stale.region_error.has_value());
  ASSERT_TRUE(stale.region_error->has_epoch_not_match());
  const auto& current = stale.region_error->epoch_not_match().current_regions();
  ASSERT_EQ(current.size(), 3) << "the region and the ones its split made";
  EXPECT_EQ(current[0].end_key(), "h");
  EXPECT_EQ(current[1].start_key(), "h");
  EXPECT_EQ(current[2].start_key(), "p");
}

TEST_F(RaftStoreSplitTest, InvalidSplitsAreRefusedAndChangeNothing) {
  start_three();
  struct Case {
    const char* what;
    KvCommand cmd;
  };
  std::vector<Case> cases;
  cases.push_back({"no keys", split_at({})});
  cases.push_back({"the region's own start key", split_at({""})});
  cases.push_back({"keys out of order", split_at({"p", "h"})});
  cases.push_back({"a repeated key", split_at({"h", "h"})});
  cases.push_back({"too few peer ids", split_at({"h"}, 2)});
  KvCommand reused = split_at({"h"});
  reused.mutable_splits(0)->set_new_region_id(100);
  cases.push_back({"the region's own id", reused});
  KvCommand repeated_peer = split_at({"h"});
  repeated_peer.mutable_splits(0)->set_new_peer_ids(1, 1001);
  cases.push_back({"an existing peer id", repeated_peer});
  for (const auto& c : cases) {
    ProposeResult r = write_to(100, c.cmd);
    EXPECT_FALSE(r.region_error) << c.what;
    EXPECT_NE(r.result.error(), "") << c.what << " was accepted";
  }
  auto leader = leader_of(100);
  ASSERT_TRUE(leader.has_value());
  EXPECT_EQ(leader->region.region_epoch().version(), 1u);
  EXPECT_EQ(leader->region.end_key(), "");
  EXPECT_EQ(nodes_[leader->self.store_id()].store->regions().size(), 1u);
}

TEST_F(RaftStoreSplitTest, SplitRegionsSurviveARestart) {
  start_three();
  ASSERT_FALSE(write_to(100, split_at({"m"})).region_error);
  for (std::uint64_t s = 1; s <= 3; ++s) {
    ASSERT_TRUE(testing::poll_until([&] { return store_has_regions(s, 2); }, std::chrono::seconds(20)));
  }
  ASSERT_FALSE(write_to(200, put("x", "1")).region_error);
  for (std::uint64_t s = 1; s <= 3; ++s) {
    stop(s);
  }
  for (std::uint64_t s = 1; s <= 3; ++s) {
    start(s, std::nullopt);
  }
  for (std::uint64_t s = 1; s <= 3; ++s) {
    EXPECT_TRUE(store_has_regions(s, 2)) << "store " << s;
    auto st = status_of(s, 100);
    ASSERT_TRUE(st.has_value());
    EXPECT_EQ(st->region.end_key(), "m");
    EXPECT_EQ(st->region.region_epoch().version(), 2u);
  }
  ASSERT_FALSE(write_to(200, put("y", "2")).region_error);
  ASSERT_FALSE(write_to(100, put("a", "3")).region_error);
  EXPECT_TRUE(
      testing::poll_until([&] { return has_value(1, "y", "2") && has_value(1, "a", "3"); }, std::chrono::seconds(20)));
}

// A store away during the split applies it from the log when it returns, creates the
// new regions' peers, and catches up with what they took meanwhile.
TEST_F(RaftStoreSplitTest, AStoreAwayDuringTheSplitCatchesUp) {
  start_three();
  std::uint64_t away = leader_of(100)->self.store_id() % 3 + 1;  // a follower
  stop(away);
  ASSERT_FALSE(write_to(100, split_at({"f", "m", "t"})).region_error);
  for (const char* k : {"a", "g", "n", "u"}) {
    auto region = std::string(k) < "f" ? 100u : std::string(k) < "m" ? 200u : std::string(k) < "t" ? 300u : 400u;
    ASSERT_FALSE(write_to(region, put(k, "while-away")).region_error) << k;
  }
  start(away, std::nullopt);
  EXPECT_TRUE(testing::poll_until([&] { return store_has_regions(away, 4); }, std::chrono::seconds(20)));
  for (const char* k : {"a", "g", "n", "u"}) {
    EXPECT_TRUE(testing::poll_until([&] { return has_value(away, k, "while-away"); }, std::chrono::seconds(20)))
        << k << " did not reach the returning store";
  }
  // Every region still has exactly one leader and serves.
  for (std::uint64_t id : {100u, 200u, 300u, 400u}) {
    ASSERT_FALSE(write_to(id, put(id == 100 ? "b" : id == 200 ? "h" : id == 300 ? "o" : "v", "later")).region_error);
  }
}

// A store away during the split whose log position was compacted meanwhile catches up
// by snapshot: the region's snapshot has the smaller range (and a newer epoch), and the
// new regions come by snapshots of their own.
TEST_F(RaftStoreSplitTest, AStoreAwayDuringTheSplitCatchesUpBySnapshot) {
  start_three();
  std::uint64_t away = leader_of(100)->self.store_id() % 3 + 1;  // a follower
  stop(away);
  ASSERT_FALSE(write_to(100, split_at({"m"})).region_error);
  for (int i = 0; i < 120; ++i) {  // past the log GC threshold (50) of both regions
    ASSERT_FALSE(write_to(100, put(fmt::format("a{:03}", i), "left")).region_error);
    ASSERT_FALSE(write_to(200, put(fmt::format("x{:03}", i), "right")).region_error);
  }
  start(away, std::nullopt);
  EXPECT_TRUE(testing::poll_until([&] { return has_value(away, "a119", "left") && has_value(away, "x119", "right"); },
                                  std::chrono::seconds(30)))
      << "the returning store did not catch up";
  EXPECT_TRUE(testing::poll_until([&] { return store_has_regions(away, 2); }, std::chrono::seconds(20)));
  auto st = status_of(away, 100);
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->region.end_key(), "m");
}

// The leader notices its region grew past the limits and splits it by itself, with
// ids from the allocator (PD in a real store).
TEST_F(RaftStoreSplitTest, ARegionThatGrewTooBigSplitsByItself) {
  auto next_id = std::make_shared<std::atomic<std::uint64_t>>(5000);
  configure_ = [next_id](RaftStoreConfig& c) {
    c.split_limits = SplitLimits{20'000, 1'000'000, 64};
    c.split_check_interval = std::chrono::milliseconds(20);
    c.alloc_ids = [next_id](std::uint32_t count) -> Result<std::uint64_t> { return next_id->fetch_add(count); };
  };
  start_three();
  // 100,000 bytes of keys and values: more than 1.5 times 20,000. The region splits
  // while they are written: each put goes to the region holding its key then.
  for (int i = 0; i < 400; ++i) {
    std::string key = fmt::format("k{:05}", i);
    bool written = false;
    for (int attempt = 0; attempt < 200 && !written; ++attempt) {
      std::uint64_t region = 0;
      for (const auto& s : nodes_[1].store->regions()) {
        if (s.region.start_key() <= key && (s.region.end_key().empty() || key < s.region.end_key())) {
          region = s.region.id();
        }
      }
      ProposeResult r = write_to(region, put(key, std::string(244, 'v')));
      written = !r.region_error;
    }
    ASSERT_TRUE(written) << key;
  }
  for (std::uint64_t s = 1; s <= 3; ++s) {
    EXPECT_TRUE(testing::poll_until([&] { return nodes_[s].store->regions().size() >= 4; }, std::chrono::seconds(20)))
        << "store " << s << " has " << nodes_[s].store->regions().size() << " regions";
  }
  auto regions = nodes_[1].store->regions();
  std::sort(regions.begin(), regions.end(),
            [](const RegionStatus& a, const RegionStatus& b) { return a.region.start_key() < b.region.start_key(); });
  EXPECT_EQ(regions.front().region.start_key(), "");
  EXPECT_EQ(regions.back().region.end_key(), "");
  for (std::size_t i = 1; i < regions.size(); ++i) {
    EXPECT_EQ(regions[i - 1].region.end_key(), regions[i].region.start_key()) << "regions must tile the key space";
    EXPECT_GE(regions[i].region.id(), 5000u) << "new ids come from the allocator";
  }
}

class RaftStoreMergeTest : public RaftStoreSplitTest {
 protected:
  // merge_region on whichever store leads `source`, retrying while it is not possible yet.
  Status merge(std::uint64_t source, std::uint64_t target, int attempts = 200) {
    Status last = Status::unavailable("no leader");
    for (int attempt = 0; attempt < attempts; ++attempt) {
      if (auto leader = leader_of(source)) {
        auto p = std::make_shared<std::promise<Status>>();
        auto f = p->get_future();
        nodes_[leader->self.store_id()].store->merge_region(source, target, [p](const Status& s) { p->set_value(s); });
        EXPECT_EQ(f.wait_for(std::chrono::seconds(20)), std::future_status::ready);
        last = f.get();
        if (last.is_ok() || last.code() == StatusCode::kInvalidArgument) {
          return last;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // back off while replicas catch up
    }
    return last;
  }

  bool holds_only_whole_region(std::uint64_t store) {
    auto regions = nodes_[store].store ? nodes_[store].store->regions() : std::vector<RegionStatus>{};
    return regions.size() == 1 && regions[0].region.id() == 100 && regions[0].region.start_key().empty() &&
           regions[0].region.end_key().empty();
  }

  void split_in_two() {
    start_three();
    for (char c = 'a'; c <= 'z'; ++c) {
      ASSERT_FALSE(write_to(100, put(std::string(1, c), "v")).region_error);
    }
    ASSERT_FALSE(write_to(100, split_at({"m"})).region_error);
    ASSERT_TRUE(testing::poll_until(
        [&] { return store_has_regions(1, 2) && store_has_regions(2, 2) && store_has_regions(3, 2) && leader_of(200); },
        std::chrono::seconds(20)));
  }
};

TEST_F(RaftStoreMergeTest, MergeJoinsTwoRegionsOnEveryStore) {
  split_in_two();
  ASSERT_FALSE(write_to(200, put("x", "before")).region_error);
  Status merged = merge(200, 100);
  ASSERT_TRUE(merged.is_ok()) << merged.to_string();
  ASSERT_TRUE(testing::poll_until(
      [&] { return holds_only_whole_region(1) && holds_only_whole_region(2) && holds_only_whole_region(3); },
      std::chrono::seconds(20)))
      << "the merge did not complete on every store";
  // The target serves the whole range; every key written before is still there.
  ASSERT_FALSE(write_to(100, put("z", "after")).region_error);
  EXPECT_TRUE(testing::poll_until(
      [&] {
        for (std::uint64_t s = 1; s <= 3; ++s) {
          if (!has_value(s, "a", "v") || !has_value(s, "x", "before") || !has_value(s, "z", "after")) {
            return false;
          }
        }
        return true;
      },
      std::chrono::seconds(20)));
  // The source is gone: a request for it is refused.
  kvrpc::Context ctx;
  ctx.set_region_id(200);
  auto gone = propose_with(1, ctx, put("y", "1"));
  ASSERT_TRUE(gone.region_error.has_value());
  EXPECT_TRUE(gone.region_error->has_region_not_found()) << gone.region_error->message();
}

TEST_F(RaftStoreMergeTest, AMergeIsRefusedWhenItCannotBe) {
  split_in_two();
  EXPECT_EQ(merge(200, 200).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(merge(200, 999, 1).code(), StatusCode::kUnavailable) << "no such target here";
  ASSERT_TRUE(merge(200, 100).is_ok());
  ASSERT_TRUE(testing::poll_until([&] { return holds_only_whole_region(1); }, std::chrono::seconds(20)));
  EXPECT_EQ(merge(200, 100, 1).code(), StatusCode::kUnavailable) << "the source is gone";
}

TEST_F(RaftStoreMergeTest, AReplicaAwayDuringTheMergeCatchesUpAndEverythingSurvivesARestart) {
  split_in_two();
  ASSERT_FALSE(write_to(200, put("x", "before")).region_error);
  ASSERT_TRUE(testing::poll_until([&] { return has_value(3, "x", "before"); }, std::chrono::seconds(20)));
  std::uint64_t away = 3;
  if (leader_of(200)->self.store_id() == away || leader_of(100)->self.store_id() == away) {
    away = leader_of(200)->self.store_id() != 2 && leader_of(100)->self.store_id() != 2 ? 2 : 1;
  }
  stop(away);
  Status merged = merge(200, 100);
  ASSERT_TRUE(merged.is_ok()) << merged.to_string();
  std::vector<std::uint64_t> up;
  for (std::uint64_t s = 1; s <= 3; ++s) {
    if (s != away) {
      up.push_back(s);
    }
  }
  ASSERT_TRUE(testing::poll_until([&] { return holds_only_whole_region(up[0]) && holds_only_whole_region(up[1]); },
                                  std::chrono::seconds(20)));
  ASSERT_FALSE(write_to(100, put("z", "after")).region_error);
  start(away, std::nullopt);
  EXPECT_TRUE(testing::poll_until([&] { return holds_only_whole_region(away) && has_value(away, "z", "after"); },
                                  std::chrono::seconds(30)))
      << "the replica that was away never finished the merge";
  EXPECT_TRUE(has_value(away, "x", "before"));
  for (std::uint64_t s = 1; s <= 3; ++s) {
    stop(s);
  }
  for (std::uint64_t s = 1; s <= 3; ++s) {
    start(s, std::nullopt);
  }
  EXPECT_TRUE(testing::poll_until(
      [&] { return holds_only_whole_region(1) && holds_only_whole_region(2) && holds_only_whole_region(3); },
      std::chrono::seconds(20)));
  ASSERT_FALSE(write_to(100, put("y", "restarted")).region_error);
}

}  // namespace
}  // namespace rdb
