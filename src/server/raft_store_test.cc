// RaftStores replicating through an in-process transport: real RocksDB engines,
// real Raft loops, no network.
#include "server/raft_store.h"

#include <filesystem>
#include <fstream>
#include <future>
#include <limits>
#include <set>

#include "raftdisk/engine_options.h"
#include "raftdisk/raft_keys.h"
#include "server/raft_store_fixture.h"
#include "server/snapshot_data.h"

namespace rdb {
namespace {

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

// Reads that reach the loop together share one read index round (one heartbeat
// context), and each is still answered once its point applied. The loop is held by a
// read whose answer blocks while the others queue.
TEST_F(RaftStoreTest, ReadsArrivingTogetherShareOneReadIndexRound) {
  auto region = region_with({1, 2, 3});
  for (std::uint64_t s = 1; s <= 3; ++s) {
    start(s, region);
  }
  std::uint64_t leader = wait_for_leader();
  ASSERT_FALSE(write(put("k", "v")).region_error.has_value());  // committed in this term
  std::promise<void> release;
  auto released = release.get_future().share();
  auto first = std::make_shared<std::promise<bool>>();
  nodes_[leader].store->read_index(context(), {"k"}, [first, released](auto err) {
    first->set_value(!err.has_value());
    released.wait();  // holds the loop: the reads below queue meanwhile
  });
  ASSERT_TRUE(first->get_future().get());
  constexpr int kReads = 20;
  std::vector<std::future<bool>> answers;
  for (int i = 0; i < kReads; ++i) {
    auto p = std::make_shared<std::promise<bool>>();
    answers.push_back(p->get_future());
    nodes_[leader].store->read_index(context(), {"k"}, [p](auto err) { p->set_value(!err.has_value()); });
  }
  release.set_value();
  for (auto& a : answers) {
    ASSERT_EQ(a.wait_for(std::chrono::seconds(10)), std::future_status::ready);
    EXPECT_TRUE(a.get());
  }
  std::set<std::string> rounds;
  for (const auto& m : transport_.recent()) {
    if (m.message().type() == raftpb::MSG_HEARTBEAT && !m.message().context().empty()) {
      rounds.insert(m.message().context());
    }
  }
  EXPECT_EQ(rounds.size(), 2U) << "one round for the first read, one for the " << kReads << " queued together";
}

// A leader that cannot reach its followers proposes, then is deposed: the proposals cut
// off the end of its log are answered UNDETERMINED then, not left waiting for their log
// index to apply (the next leader's log may never grow that far), which would hold a
// 1PC's latches and memory locks for as long.
TEST_F(RaftStoreTest, ADeposedLeadersProposalsAreAnsweredWhenTheirEntriesAreCutFromTheLog) {
  auto region = region_with({1, 2, 3});
  for (std::uint64_t s = 1; s <= 3; ++s) {
    start(s, region);
  }
  std::uint64_t old_leader = wait_for_leader();
  ASSERT_FALSE(write(put("before", "v")).region_error.has_value());
  transport_.mute(old_leader, true);
  // Three entries: the next leader's no-op replaces the first; nothing reaches the others' indexes.
  std::vector<std::future<ProposeResult>> answers;
  for (int i = 0; i < 3; ++i) {
    auto answered = std::make_shared<std::promise<ProposeResult>>();
    answers.push_back(answered->get_future());
    KvCommand cmd = put("lost" + std::to_string(i), "v");
    std::vector<std::string> keys(cmd.keys().begin(), cmd.keys().end());
    nodes_[old_leader].store->propose(context(), keys, cmd,
                                      [answered](ProposeResult r) { answered->set_value(std::move(r)); });
  }
  // The others elect a leader of their own; once the old one hears of it, it steps down.
  std::uint64_t next = 0;
  ASSERT_TRUE(testing::poll_until(
      [&] {
        for (std::uint64_t s = 1; s <= 3; ++s) {
          for (const auto& st : nodes_[s].store->regions()) {
            if (s != old_leader && st.is_leader) {
              next = s;
            }
          }
        }
        return next != 0;
      },
      std::chrono::seconds(20)));
  // Healed, and nothing more is written: the next leader's log stays shorter than the
  // deposed one's was. The first proposal's index is overwritten by the new leader's
  // no-op (told so when it applies); the two cut off the end are answered UNDETERMINED.
  transport_.mute(old_leader, false);
  std::vector<ProposeResult> results;
  for (auto& answer : answers) {
    ASSERT_EQ(answer.wait_for(std::chrono::seconds(20)), std::future_status::ready)
        << "the deposed leader's proposal " << results.size() << " was never answered";
    results.push_back(answer.get());
  }
  EXPECT_TRUE(results[0].region_error.has_value() || results[0].undetermined);
  EXPECT_TRUE(results[1].undetermined);
  EXPECT_TRUE(results[2].undetermined);
  EXPECT_NE(results[2].undetermined_why.find("new leader cut its entry"), std::string::npos)
      << results[2].undetermined_why;
  EXPECT_FALSE(has_value(next, "lost1", "v"));
}

// The Raft thread's queue is bounded: past it, proposals and reads are refused with
// ServerIsBusy at once instead of queueing without limit.
TEST_F(RaftStoreTest, FullRaftQueueRefusesWithServerIsBusy) {
  RaftStoreConfig c;
  c.store_id = 1;
  c.max_pending_tasks = 0;  // every task finds the queue full
  c.snap_dir = dir_.sub("full-snap");
  nodes_[1].engine = std::move(RocksEngine::open(dir_.sub("full"), raft_disk_engine_options())).value();
  RaftStore store(*nodes_[1].engine, c, transport_);
  ASSERT_TRUE(store.start(region_with({1})).is_ok());
  auto p = std::make_shared<std::promise<ProposeResult>>();
  kvrpc::Context ctx;
  ctx.set_region_id(100);
  store.propose(ctx, {"k"}, put("k", "v"), [p](ProposeResult r) { p->set_value(std::move(r)); });
  auto r = p->get_future().get();
  ASSERT_TRUE(r.region_error.has_value());
  EXPECT_TRUE(r.region_error->has_server_is_busy()) << r.region_error->ShortDebugString();
  auto rp = std::make_shared<std::promise<std::optional<kvrpc::RegionError>>>();
  store.read_index(ctx, {"k"}, [rp](auto err) { rp->set_value(std::move(err)); });
  auto read = rp->get_future().get();
  ASSERT_TRUE(read.has_value());
  EXPECT_TRUE(read->has_server_is_busy());
}

// A store whose start-up fails never runs its loop: stopping it must still answer
// what clients queued meanwhile, or gRPC's shutdown would wait for them forever.
TEST_F(RaftStoreTest, StopWithoutStartAnswersQueuedRequests) {
  RaftStoreConfig c;
  c.store_id = 1;
  nodes_[1].engine = std::move(RocksEngine::open(dir_.sub("never-started"), raft_disk_engine_options())).value();
  RaftStore store(*nodes_[1].engine, c, transport_);
  auto p = std::make_shared<std::promise<ProposeResult>>();
  kvrpc::Context ctx;
  ctx.set_region_id(100);
  store.propose(ctx, {"k"}, put("k", "v"), [p](ProposeResult r) { p->set_value(std::move(r)); });
  auto f = p->get_future();
  EXPECT_EQ(f.wait_for(std::chrono::milliseconds(0)), std::future_status::timeout) << "queued, not answered yet";
  store.stop();
  ASSERT_EQ(f.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  auto r = f.get();
  ASSERT_TRUE(r.region_error.has_value());
  EXPECT_TRUE(r.region_error->has_server_is_busy());
}

TEST_F(RaftStoreTest, AddingAPeerBringsANewStoreUpBySnapshot) {
  start(1, region_with({1}));
  wait_for_leader();
  // Values big enough that the files cross many transport chunks; a versioned key too.
  const std::string big(20 << 10, 'v');
  for (int i = 0; i < 100; ++i) {
    ASSERT_FALSE(write(put("d" + std::to_string(i), i == 50 ? big : "x")).region_error.has_value());
    ASSERT_FALSE(write(put("e" + std::to_string(i), big)).region_error.has_value());
  }
  KvCommand cas;
  cas.set_type(KvCommand::CAS);
  cas.add_keys("c");
  cas.add_values("versioned");
  cas.set_expected_version(0);
  ASSERT_TRUE(write(cas).result.cas_succeeded());
  start(2, std::nullopt);  // an empty store
  metapb::Peer p;
  p.set_id(2002);
  p.set_store_id(2);
  for (auto type : {raftpb::ADD_LEARNER_NODE, raftpb::ADD_NODE}) {
    auto done = std::make_shared<std::promise<Status>>();
    nodes_[1].store->change_peer(100, type, p, [done](const Status& s) { done->set_value(s); });
    auto f = done->get_future();
    ASSERT_EQ(f.wait_for(std::chrono::seconds(20)), std::future_status::ready);
    ASSERT_TRUE(f.get().is_ok());
  }
  EXPECT_TRUE(testing::poll_until([&] { return has_value(2, "d99", "x"); }, std::chrono::seconds(20)));
  EXPECT_TRUE(has_value(2, "d50", big));
  EXPECT_TRUE(has_value(2, "e99", big));
  EXPECT_EQ(nodes_[2].engine->get("c")->value, "versioned");
  EXPECT_EQ(nodes_[2].engine->get("c")->version, 1u);
  // Installed files are gone from the receiver's snapshot directory once ingested.
  EXPECT_TRUE(
      testing::poll_until([&] { return std::filesystem::is_empty(dir_.sub("snap2")); }, std::chrono::seconds(10)));
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

namespace rdb {
namespace {

// A store stopped between persisting a snapshot's position and ingesting its files
// finds the marker at start and ingests them before serving anything.
TEST_F(RaftStoreTest, SnapshotIngestInterruptedByACrashFinishesAtStart) {
  start(1, region_with({1}));
  wait_for_leader();
  ASSERT_FALSE(write(put("old", "1")).region_error.has_value());
  stop(1);
  // The files a received snapshot left, and the marker persisted with its position.
  auto other = std::move(RocksEngine::open(dir_.sub("other"), raft_disk_engine_options())).value();
  ASSERT_TRUE(other->raw_put("new", "2").is_ok());
  const std::string path = dir_.sub("snap1") + "/rcv_100_1_raw.sst";
  ASSERT_TRUE(other->export_sst(*other->snapshot(), ColumnFamily::kRaw, "", max_key(), path).is_ok());
  raftsvc::SnapshotIngest marker;
  marker.add_cfs("raw");
  marker.add_paths(path);
  WriteBatch wb;
  wb.delete_range(ColumnFamily::kRaw, "", max_key());
  wb.put(ColumnFamily::kRaft, raft_keys::snapshot_ingest_key(100), marker.SerializeAsString());
  ASSERT_TRUE(nodes_[1].engine->write(wb, true).is_ok());
  // A stray file from an unfinished receive is cleaned up too.
  { std::ofstream(dir_.sub("snap1") + "/rcv_100_2_raw.sst.tmp") << "partial"; }

  start(1, std::nullopt);
  EXPECT_TRUE(has_value(1, "new", "2"));
  EXPECT_FALSE(nodes_[1].engine->raw_get("old")->has_value());
  EXPECT_FALSE(nodes_[1].engine->get_cf(ColumnFamily::kRaft, raft_keys::snapshot_ingest_key(100))->has_value());
  EXPECT_TRUE(std::filesystem::is_empty(dir_.sub("snap1")));
}

}  // namespace
}  // namespace rdb

namespace rdb {
namespace {

// The loop's ticks follow the clock it is given: with time standing still no election
// timeout passes however long the loops run; stepping the clock elects a leader.
TEST_F(RaftStoreTest, TicksFollowTheInjectedClock) {
  auto clock = std::make_shared<ManualClock>(1'000);
  clock_ = clock;
  auto region = region_with({1, 2, 3});
  for (std::uint64_t s = 1; s <= 3; ++s) {
    start(s, region);
  }
  // Many loop rounds on every store (each read is answered by its loop), no time passing.
  for (int round = 0; round < 30; ++round) {
    for (std::uint64_t s = 1; s <= 3; ++s) {
      auto p = std::make_shared<std::promise<bool>>();
      kvrpc::Context ctx;
      ctx.set_region_id(100);
      *ctx.mutable_region_epoch() = region.region_epoch();
      nodes_[s].store->read_index(ctx, {"k"}, [p](auto err) { p->set_value(err.has_value()); });
      auto f = p->get_future();
      ASSERT_EQ(f.wait_for(std::chrono::seconds(10)), std::future_status::ready);
      EXPECT_TRUE(f.get()) << "no leader yet: the read is refused";
    }
  }
  EXPECT_FALSE(leader_status().has_value()) << "an election timeout passed with the clock standing still";
  // Step time one tick at a time: within two election timeouts a leader is elected.
  int steps = 0;
  EXPECT_TRUE(testing::poll_until(
      [&] {
        if (leader_status()) {
          return true;
        }
        clock->advance(10);
        ++steps;
        for (std::uint64_t s = 1; s <= 3; ++s) {
          nodes_[s].store->wake();
        }
        return false;
      },
      std::chrono::seconds(20)));
  EXPECT_GE(steps, 10) << "elected before the election timeout (10 ticks) passed";
}

// A store holds one peer of a region: adding a second one there (PD acting on a stale
// view) is refused before it enters the log.
TEST_F(RaftStoreTest, ASecondPeerOnTheSameStoreIsRefused) {
  auto region = region_with({1, 2, 3});
  for (std::uint64_t s = 1; s <= 3; ++s) {
    start(s, region);
  }
  std::uint64_t leader = wait_for_leader();
  metapb::Peer second;
  second.set_id(5000);
  second.set_store_id(leader % 3 + 1);
  auto p = std::make_shared<std::promise<Status>>();
  auto f = p->get_future();
  nodes_[leader].store->change_peer(100, raftpb::ADD_LEARNER_NODE, second, [p](const Status& s) { p->set_value(s); });
  ASSERT_EQ(f.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  Status s = f.get();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("already holds"), std::string::npos) << s.to_string();
  EXPECT_EQ(leader_status()->region.peers_size(), 3);
}

}  // namespace
}  // namespace rdb

namespace rdb {
namespace {

// PD's replica move: a learner catches up, then replaces a voter in one joint step
// (enter, then the leader leaves by itself); the region never has four voters.
TEST_F(RaftStoreTest, AJointStepSwapsALearnerInForAVoter) {
  auto region = region_with({1, 2, 3});
  for (std::uint64_t s = 1; s <= 3; ++s) {
    start(s, region);
  }
  std::uint64_t leader = wait_for_leader();
  ASSERT_FALSE(write(put("before", "1")).region_error.has_value());
  start(4, std::nullopt);
  metapb::Peer learner;
  learner.set_id(1004);
  learner.set_store_id(4);
  auto change = [&](std::vector<std::pair<raftpb::ConfChangeType, metapb::Peer>> changes) {
    auto done = std::make_shared<std::promise<Status>>();
    auto f = done->get_future();
    nodes_[leader].store->change_peers(100, std::move(changes), [done](const Status& s) { done->set_value(s); });
    EXPECT_EQ(f.wait_for(std::chrono::seconds(20)), std::future_status::ready);
    return f.get();
  };
  ASSERT_TRUE(change({{raftpb::ADD_LEARNER_NODE, learner}}).is_ok());
  ASSERT_TRUE(testing::poll_until([&] { return has_value(4, "before", "1"); }, std::chrono::seconds(20)));
  const std::uint64_t victim_store = leader % 3 + 1;  // a follower
  metapb::Peer victim;
  victim.set_id(1000 + victim_store);
  victim.set_store_id(victim_store);
  const std::uint64_t conf_ver = leader_status()->region.region_epoch().conf_ver();
  ASSERT_TRUE(change({{raftpb::ADD_NODE, learner}, {raftpb::REMOVE_NODE, victim}}).is_ok());
  // The leader leaves the joint configuration by itself.
  ASSERT_TRUE(testing::poll_until(
      [&] {
        auto st = leader_status();
        return st && st->region.region_epoch().conf_ver() == conf_ver + 2;
      },
      std::chrono::seconds(20)))
      << leader_status()->region.ShortDebugString();
  auto st = leader_status();
  ASSERT_EQ(st->region.peers_size(), 3) << st->region.ShortDebugString();
  for (const auto& p : st->region.peers()) {
    EXPECT_NE(p.store_id(), victim_store);
    EXPECT_EQ(p.role(), metapb::VOTER) << p.ShortDebugString();
    EXPECT_FALSE(p.is_learner());
  }
  // The new voter counts: with the removed store gone, writes still commit.
  stop(victim_store);
  ASSERT_FALSE(write(put("after", "2")).region_error.has_value());
  EXPECT_TRUE(testing::poll_until([&] { return has_value(4, "after", "2"); }, std::chrono::seconds(20)));
  // None that would put two peers on one store.
  metapb::Peer twin;
  twin.set_id(5000);
  twin.set_store_id(4);
  Status refused = change({{raftpb::ADD_LEARNER_NODE, twin}});
  EXPECT_EQ(refused.code(), StatusCode::kInvalidArgument) << refused.to_string();
}

}  // namespace
}  // namespace rdb

namespace rdb {
namespace {

// Large values must not pile up in the Raft log: past --raft-log-gc-size-limit bytes
// the log is compacted even though far fewer entries than the count threshold exist.
class RaftLogGcTest : public RaftStoreTest {
 protected:
  // Whether the region's first written entry is still in the log after 1.25 MiB of puts.
  bool first_entry_kept(std::uint64_t size_limit) {
    configure_ = [size_limit](RaftStoreConfig& c) {
      c.log_gc_threshold = 100000;
      c.log_gc_size_limit = size_limit;
      c.log_gc_replicated_entries = 0;  // a single replica "has" every entry: only the size limit here
    };
    start(1, region_with({1}));
    wait_for_leader();
    const std::string big(32 << 10, 'x');
    for (int i = 0; i < 40; ++i) {  // 40 entries
      EXPECT_FALSE(write(put("k" + std::to_string(i), big)).region_error.has_value());
    }
    EXPECT_TRUE(has_value(1, "k0", big));
    EXPECT_TRUE(has_value(1, "k39", big));
    auto entry = nodes_[1].engine->get_cf(ColumnFamily::kRaft, raft_keys::log_key(100, 7));
    EXPECT_TRUE(entry.is_ok());
    return entry.is_ok() && entry->has_value();
  }
};

TEST_F(RaftLogGcTest, WithoutASizeLimitFewEntriesStay) {
  EXPECT_TRUE(first_entry_kept(0)) << "40 entries are far below the count threshold";
}

TEST_F(RaftLogGcTest, BytesPastTheSizeLimitCompactTheLog) {
  EXPECT_FALSE(first_entry_kept(256 << 10)) << "the log kept more than the size limit";
}

// Entries every peer holds and the leader applied are compacted soon, on every replica
// (followers learn the index from the leader's appends), with no snapshot needed; a peer
// that falls behind keeps them in the leader's log (and its followers') until it is back.
class ReplicatedLogGcTest : public RaftStoreTest {
 protected:
  void SetUp() override {
    configure_ = [](RaftStoreConfig& c) {
      c.log_gc_threshold = 100000;  // only the replicated rule compacts here
      c.log_gc_size_limit = 0;
      c.log_gc_replicated_entries = 16;
    };
    transport_.on_send([this](const raftsvc::RaftMessage& m) {
      if (m.has_message() && m.message().type() == raftpb::MSG_SNAP) {
        ++snapshots_sent_;
      }
    });
    for (std::uint64_t id : {1, 2, 3}) {
      start(id, region_with({1, 2, 3}));
    }
  }
  bool has_entry(std::uint64_t store, std::uint64_t index) {
    auto entry = nodes_[store].engine->get_cf(ColumnFamily::kRaft, raft_keys::log_key(100, index));
    EXPECT_TRUE(entry.is_ok());
    return entry.is_ok() && entry->has_value();
  }
  void write_many(int n, const std::string& prefix) {
    for (int i = 0; i < n; ++i) {
      ASSERT_FALSE(write(put(prefix + std::to_string(i), "v")).region_error.has_value());
    }
  }
  std::atomic<int> snapshots_sent_{0};
};

TEST_F(ReplicatedLogGcTest, EntriesEveryPeerHoldsAreCompactedEverywhere) {
  wait_for_leader();
  write_many(100, "k");
  for (std::uint64_t id : {1, 2, 3}) {
    EXPECT_TRUE(testing::poll_until([&] { return !has_entry(id, 7); }, std::chrono::seconds(20)))
        << "store " << id << " kept the log's first entries";
    EXPECT_TRUE(testing::poll_until([&] { return has_value(id, "k99", "v"); }, std::chrono::seconds(20)));
  }
  EXPECT_EQ(snapshots_sent_.load(), 0);
}

// log_gc_index arrives from the network: a forged one (the largest index there is) makes
// a follower compact at most what it applied itself; it keeps replicating and serving.
TEST_F(ReplicatedLogGcTest, AForgedIndexCompactsNothingTheFollowerHasNotApplied) {
  const std::uint64_t leader = wait_for_leader();
  write_many(30, "k");
  const std::uint64_t follower = leader == 1 ? 2 : 1;
  std::optional<raftsvc::RaftMessage> forged;
  for (const auto& m : transport_.recent()) {
    if (m.message().type() == raftpb::MSG_APP && m.to_peer().store_id() == follower) {
      forged = m;
    }
  }
  ASSERT_TRUE(forged.has_value()) << "no append reached the follower";
  forged->set_log_gc_index(std::numeric_limits<std::uint64_t>::max());
  nodes_[follower].store->deliver(*forged);
  write_many(30, "after");
  EXPECT_TRUE(testing::poll_until([&] { return has_value(follower, "after29", "v"); }, std::chrono::seconds(20)));
  EXPECT_TRUE(has_value(follower, "k0", "v"));
  for (const auto& s : nodes_[follower].store->regions()) {
    auto apply = nodes_[follower].engine->get_cf(ColumnFamily::kRaft, raft_keys::apply_state_key(s.region.id()));
    ASSERT_TRUE(apply.is_ok() && apply->has_value());
    raft_serverpb::RaftApplyState state;
    ASSERT_TRUE(state.ParseFromString(**apply));
    EXPECT_LE(state.truncated_index(), state.applied_index());
  }
  EXPECT_EQ(snapshots_sent_.load(), 0);
}

TEST_F(ReplicatedLogGcTest, APeerBehindKeepsTheLogUntilItCatchesUp) {
  const std::uint64_t leader = wait_for_leader();
  const std::uint64_t behind = leader == 1 ? 2 : 1;
  const std::uint64_t other = 6 - leader - behind;
  write_many(1, "first");
  ASSERT_TRUE(testing::poll_until([&] { return has_value(behind, "first0", "v"); }, std::chrono::seconds(20)));
  transport_.detach(behind);      // hears nothing ...
  transport_.mute(behind, true);  // ... and says nothing
  write_many(100, "k");
  ASSERT_TRUE(testing::poll_until([&] { return has_value(other, "k99", "v"); }, std::chrono::seconds(20)));
  // The entry after "first0" is needed by the peer behind: neither the leader nor the
  // other follower (told by the leader) may drop it.
  std::uint64_t needed = 0;
  for (std::uint64_t i = 6; i < 20 && needed == 0; ++i) {
    if (!has_entry(behind, i) && has_entry(leader, i)) {
      needed = i;
    }
  }
  ASSERT_NE(needed, 0U) << "no entry the detached peer misses";
  EXPECT_TRUE(has_entry(leader, needed));
  EXPECT_TRUE(has_entry(other, needed));

  transport_.mute(behind, false);
  transport_.attach(behind, nodes_[behind].store.get());
  write_many(1, "after");
  EXPECT_TRUE(testing::poll_until([&] { return has_value(behind, "k99", "v"); }, std::chrono::seconds(20)));
  EXPECT_EQ(snapshots_sent_.load(), 0) << "the peer behind should catch up from the log";
  for (std::uint64_t id : {1, 2, 3}) {
    // Followers learn the new index on the leader's next append: keep writing.
    EXPECT_TRUE(testing::poll_until(
        [&] {
          (void)write(put("more", "v"));
          return !has_entry(id, needed);
        },
        std::chrono::seconds(20)))
        << "store " << id << " kept the log once every peer had it";
  }
}

}  // namespace
}  // namespace rdb
