// RaftStores replicating through an in-process transport: real RocksDB engines,
// real Raft loops, no network.
#include "server/raft_store.h"

#include <gtest/gtest.h>

#include <future>

#include "storage/rocks_engine.h"
#include "support/process.h"
#include "support/temp_dir.h"

namespace rdb {
namespace {

using raft_serverpb::KvCommand;

class LocalTransport final : public RaftTransport {
 public:
  void attach(std::uint64_t store_id, RaftStore* store) {
    std::lock_guard lock(mu_);
    stores_[store_id] = store;
  }
  void detach(std::uint64_t store_id) {
    std::lock_guard lock(mu_);
    stores_.erase(store_id);
  }
  void send(std::vector<raftsvc::RaftMessage> messages) override {
    std::lock_guard lock(mu_);
    for (auto& m : messages) {
      auto it = stores_.find(m.to_peer().store_id());
      if (it != stores_.end()) {
        it->second->deliver(std::move(m));
      }
    }
  }

 private:
  std::mutex mu_;
  std::map<std::uint64_t, RaftStore*> stores_;
};

struct Node {
  std::unique_ptr<RocksEngine> engine;
  std::unique_ptr<RaftStore> store;
};

class RaftStoreTest : public ::testing::Test {
 protected:
  void TearDown() override {
    // Detach everyone first: a running store must never send to one being destroyed.
    for (auto& [id, n] : nodes_) {
      transport_.detach(id);
    }
    nodes_.clear();
  }

  metapb::Region region_with(std::vector<std::uint64_t> stores) {
    metapb::Region r;
    r.set_id(100);
    r.mutable_region_epoch()->set_conf_ver(1);
    r.mutable_region_epoch()->set_version(1);
    for (auto s : stores) {
      auto* p = r.add_peers();
      p->set_id(1000 + s);
      p->set_store_id(s);
    }
    return r;
  }

  void start(std::uint64_t id, const std::optional<metapb::Region>& bootstrap) {
    Node& n = nodes_[id];
    if (!n.engine) {
      n.engine = std::move(RocksEngine::open(dir_.sub("store" + std::to_string(id)))).value();
    }
    RaftStoreConfig c;
    c.store_id = id;
    c.tick_interval = std::chrono::milliseconds(10);
    c.log_gc_threshold = 50;  // compact often, so new members need snapshots
    c.seed = id;
    n.store = std::make_unique<RaftStore>(*n.engine, c, transport_);
    transport_.attach(id, n.store.get());
    ASSERT_TRUE(n.store->start(bootstrap).is_ok());
  }

  void stop(std::uint64_t id) {
    transport_.detach(id);
    nodes_[id].store.reset();
  }

  std::optional<RegionStatus> leader_status() {
    for (auto& [id, n] : nodes_) {
      if (!n.store) {
        continue;
      }
      for (const auto& s : n.store->regions()) {
        if (s.is_leader) {
          return s;
        }
      }
    }
    return std::nullopt;
  }

  std::uint64_t wait_for_leader() {
    std::uint64_t leader = 0;
    bool ok = testing::poll_until(
        [&] {
          auto s = leader_status();
          leader = s ? s->self.store_id() : 0;
          return leader != 0;
        },
        std::chrono::seconds(20));
    EXPECT_TRUE(ok) << "no leader elected";
    return leader;
  }

  kvrpc::Context context() {
    auto s = leader_status();
    kvrpc::Context ctx;
    ctx.set_region_id(100);
    if (s) {
      *ctx.mutable_region_epoch() = s->region.region_epoch();
    }
    return ctx;
  }

  ProposeResult propose_on(std::uint64_t store, KvCommand cmd) {
    auto p = std::make_shared<std::promise<ProposeResult>>();
    auto f = p->get_future();
    std::vector<std::string> keys(cmd.keys().begin(), cmd.keys().end());
    nodes_[store].store->propose(context(), keys, cmd, [p](ProposeResult r) { p->set_value(std::move(r)); });
    EXPECT_EQ(f.wait_for(std::chrono::seconds(20)), std::future_status::ready);
    return f.get();
  }

  // Proposes on whoever leads, retrying on region errors (leader changes).
  ProposeResult write(KvCommand cmd) {
    for (int attempt = 0; attempt < 200; ++attempt) {
      std::uint64_t leader = wait_for_leader();
      ProposeResult r = propose_on(leader, cmd);
      if (!r.region_error) {
        return r;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // back off while leadership settles
    }
    ADD_FAILURE() << "write never succeeded";
    return {};
  }

  static KvCommand put(const std::string& k, const std::string& v) {
    KvCommand c;
    c.set_type(KvCommand::RAW_PUT);
    c.add_keys(k);
    c.add_values(v);
    return c;
  }

  bool has_value(std::uint64_t store, const std::string& k, const std::string& v) {
    auto got = nodes_[store].engine->raw_get(k);
    return got.is_ok() && got->has_value() && **got == v;
  }

  testing::TempDir dir_;
  LocalTransport transport_;
  std::map<std::uint64_t, Node> nodes_;
};

TEST_F(RaftStoreTest, SingleReplicaRegionServesWritesAndReads) {
  start(1, region_with({1}));
  wait_for_leader();
  ASSERT_FALSE(write(put("a", "1")).region_error.has_value());
  EXPECT_TRUE(has_value(1, "a", "1"));
  auto p = std::make_shared<std::promise<bool>>();
  nodes_[1].store->read_index(context(), {"a"}, [p](auto err) { p->set_value(!err.has_value()); });
  auto f = p->get_future();
  ASSERT_EQ(f.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_TRUE(f.get());
}

TEST_F(RaftStoreTest, ThreeReplicasReplicateFailOverAndCatchUp) {
  auto region = region_with({1, 2, 3});
  for (std::uint64_t s = 1; s <= 3; ++s) {
    start(s, region);
  }
  std::uint64_t leader = wait_for_leader();
  for (int i = 0; i < 20; ++i) {
    ASSERT_FALSE(write(put("k" + std::to_string(i), "v")).region_error.has_value());
  }
  for (std::uint64_t s = 1; s <= 3; ++s) {
    EXPECT_TRUE(testing::poll_until([&] { return has_value(s, "k19", "v"); }, std::chrono::seconds(10)))
        << "store " << s << " did not replicate";
  }
  // CAS goes through the log and is decided at apply time.
  KvCommand cas;
  cas.set_type(KvCommand::CAS);
  cas.add_keys("c");
  cas.add_values("x");
  cas.set_expected_version(0);
  auto first = write(cas);
  EXPECT_TRUE(first.result.cas_succeeded());
  auto second = write(cas);
  EXPECT_FALSE(second.result.cas_succeeded());
  EXPECT_EQ(second.result.cas_version(), 1u);

  // The leader's store stops: the other two elect a leader and keep serving.
  stop(leader);
  std::uint64_t next = wait_for_leader();
  EXPECT_NE(next, leader);
  for (int i = 20; i < 120; ++i) {  // enough to compact the log past the stopped store
    ASSERT_FALSE(write(put("k" + std::to_string(i), "w")).region_error.has_value());
  }
  // It comes back and catches up (by snapshot: the log was compacted meanwhile).
  start(leader, std::nullopt);
  EXPECT_TRUE(testing::poll_until([&] { return has_value(leader, "k119", "w"); }, std::chrono::seconds(20)));
  EXPECT_TRUE(has_value(leader, "k0", "v"));
  EXPECT_EQ(nodes_[leader].engine->get("c")->version, 1u);
}

TEST_F(RaftStoreTest, AddingAPeerBringsANewStoreUpBySnapshot) {
  start(1, region_with({1}));
  wait_for_leader();
  for (int i = 0; i < 100; ++i) {
    ASSERT_FALSE(write(put("d" + std::to_string(i), "x")).region_error.has_value());
  }
  start(2, std::nullopt);  // an empty store
  metapb::Peer p;
  p.set_id(2002);
  p.set_store_id(2);
  for (auto type : {raftpb::ADD_LEARNER_NODE, raftpb::ADD_NODE}) {
    auto done = std::make_shared<std::promise<Status>>();
    nodes_[1].store->change_peer(100, type, p, [done](Status s) { done->set_value(s); });
    auto f = done->get_future();
    ASSERT_EQ(f.wait_for(std::chrono::seconds(20)), std::future_status::ready);
    ASSERT_TRUE(f.get().is_ok());
  }
  EXPECT_TRUE(testing::poll_until([&] { return has_value(2, "d99", "x"); }, std::chrono::seconds(20)));
  auto s = leader_status();
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->region.peers_size(), 2);
  EXPECT_EQ(s->region.region_epoch().conf_ver(), 3u);
  // Stale epochs are refused.
  kvrpc::Context stale;
  stale.set_region_id(100);
  stale.mutable_region_epoch()->set_conf_ver(1);
  stale.mutable_region_epoch()->set_version(1);
  auto pr = std::make_shared<std::promise<ProposeResult>>();
  nodes_[s->self.store_id()].store->propose(stale, {"z"}, put("z", "1"),
                                            [pr](ProposeResult r) { pr->set_value(std::move(r)); });
  auto r = pr->get_future().get();
  ASSERT_TRUE(r.region_error.has_value());
  EXPECT_TRUE(r.region_error->has_epoch_not_match());
}

}  // namespace
}  // namespace rdb
