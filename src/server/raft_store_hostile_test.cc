// What a peer sends never crashes a store or stops its region: the issue's
// reproductions one by one, then a seeded randomized harness that replays,
// mutates and misaddresses real traffic while the region keeps serving writes.
#include <fmt/format.h>

#include <filesystem>
#include <random>

#include "raftdisk/engine_options.h"
#include "server/raft_store.h"
#include "server/raft_store_fixture.h"
#include "server/snap_manager.h"
#include "server/snapshot_data.h"

namespace rdb {
namespace {

class RaftStoreHostileTest : public RaftStoreTest {
 protected:
  // Three stores, a leader, and one write that every store applied.
  void start_three() {
    auto region = region_with({1, 2, 3});
    for (std::uint64_t s = 1; s <= 3; ++s) {
      start(s, region);
    }
    leader_ = wait_for_leader();
    follower_ = leader_ == 1 ? 2 : 1;
    ASSERT_FALSE(write(put("before", "1")).region_error.has_value());
    for (std::uint64_t s = 1; s <= 3; ++s) {
      ASSERT_TRUE(testing::poll_until([&] { return has_value(s, "before", "1"); }, std::chrono::seconds(10)));
    }
  }

  // A well-addressed message from the leader's peer to `to_store`'s peer.
  raftsvc::RaftMessage from_leader_to(std::uint64_t to_store, raftpb::MessageType type) {
    raftsvc::RaftMessage m;
    m.set_region_id(100);
    m.mutable_from_peer()->set_id(1000 + leader_);
    m.mutable_from_peer()->set_store_id(leader_);
    m.mutable_to_peer()->set_id(1000 + to_store);
    m.mutable_to_peer()->set_store_id(to_store);
    m.mutable_message()->set_type(type);
    m.mutable_message()->set_from(1000 + leader_);
    m.mutable_message()->set_to(1000 + to_store);
    m.mutable_message()->set_term(term_of(to_store));
    return m;
  }

  std::uint64_t term_of(std::uint64_t store) {
    for (const auto& s : nodes_[store].store->regions()) {
      return s.term;
    }
    return 0;
  }

  std::uint64_t dropped(std::uint64_t store, std::string_view reason) {
    return nodes_[store].store->dropped_messages().count(reason);
  }

  // The region still commits writes on all three stores (liveness after the attack).
  void expect_region_serves(const std::string& key) {
    ASSERT_FALSE(write(put(key, "ok")).region_error.has_value());
    for (std::uint64_t s = 1; s <= 3; ++s) {
      EXPECT_TRUE(testing::poll_until([&] { return has_value(s, key, "ok"); }, std::chrono::seconds(20)))
          << "store " << s << " stopped applying";
    }
  }

  std::uint64_t leader_ = 0;
  std::uint64_t follower_ = 0;
};

TEST_F(RaftStoreHostileTest, MessageForUnknownRegionWithoutMetadataIsDropped) {
  start_three();
  auto m = from_leader_to(follower_, raftpb::MSG_HEARTBEAT);
  m.set_region_id(999);  // no region carried: nothing to create a peer from
  nodes_[follower_].store->deliver(m);
  EXPECT_TRUE(testing::poll_until([&] { return dropped(follower_, "unknown_region") == 1; }, std::chrono::seconds(5)));
  EXPECT_EQ(nodes_[follower_].store->regions().size(), 1u);
  expect_region_serves("after");
}

TEST_F(RaftStoreHostileTest, ReadIndexWithoutEntriesIsDropped) {
  start_three();
  auto m = from_leader_to(leader_, raftpb::MSG_READ_INDEX);
  m.mutable_from_peer()->set_id(1000 + follower_);
  m.mutable_from_peer()->set_store_id(follower_);
  m.mutable_message()->set_from(1000 + follower_);
  nodes_[leader_].store->deliver(m);
  EXPECT_EQ(dropped(leader_, "bad_entries"), 1u);
  expect_region_serves("after");
}

TEST_F(RaftStoreHostileTest, HeartbeatCommittingPastTheLogIsDropped) {
  start_three();
  auto m = from_leader_to(follower_, raftpb::MSG_HEARTBEAT);
  m.mutable_message()->set_commit(1'000'000);
  nodes_[follower_].store->deliver(m);
  EXPECT_TRUE(testing::poll_until([&] { return dropped(follower_, "bad_commit") == 1; }, std::chrono::seconds(5)));
  expect_region_serves("after");
}

TEST_F(RaftStoreHostileTest, HugeTermIsRefusedNeverPersisted) {
  start_three();
  for (std::uint64_t term : {~std::uint64_t{0}, raft::kMaxTerm + 1}) {
    auto m = from_leader_to(follower_, raftpb::MSG_APP_RESP);
    m.mutable_message()->set_term(term);
    nodes_[follower_].store->deliver(m);
  }
  EXPECT_EQ(dropped(follower_, "bad_term"), 2u);
  expect_region_serves("after");
  EXPECT_LT(term_of(follower_), 1000u);
  // It survives a restart too: nothing of it reached the disk.
  stop(follower_);
  start(follower_, std::nullopt);
  expect_region_serves("after-restart");
}

TEST_F(RaftStoreHostileTest, BadSnapshotsAreDroppedNotInstalled) {
  start_three();
  RaftStore& to = *nodes_[follower_].store;
  // A MsgSnap naming `region` (its data a descriptor of `files`), as a leader would send it.
  auto snap = [&](const metapb::Region& region, const std::vector<raftsvc::SnapshotFile>& files) {
    auto m = from_leader_to(follower_, raftpb::MSG_SNAP);
    auto* s = m.mutable_message()->mutable_snapshot();
    s->mutable_metadata()->set_index(1'000);
    s->mutable_metadata()->set_term(term_of(follower_));
    s->mutable_metadata()->mutable_conf_state()->add_voters(1000 + leader_);
    raftsvc::SnapshotDescriptor d;
    *d.mutable_region() = region;
    for (const auto& f : files) {
      *d.add_files() = f;
    }
    s->set_data(d.SerializeAsString());
    return m;
  };
  // A real table file holding "evil" and "zzz" (the out-of-range key), made by another engine.
  auto other = std::move(RocksEngine::open(dir_.sub("other"), raft_disk_engine_options())).value();
  ASSERT_TRUE(other->raw_put("evil", "x").is_ok());
  ASSERT_TRUE(other->raw_put("zzz", "x").is_ok());
  std::string sst_path = dir_.sub("other-snap") + "/raw.sst";
  ASSERT_TRUE(std::filesystem::create_directories(dir_.sub("other-snap")) || true);
  auto info = other->export_sst(*other->snapshot(), ColumnFamily::kRaw, "", max_key(), sst_path);
  ASSERT_TRUE(info.is_ok()) << info.status().to_string();
  std::string sst;
  ASSERT_TRUE(stream_snapshot_files({sst_path}, 1 << 20, nullptr, [&](std::string_view b) {
                sst.append(b);
                return true;
              }).is_ok());
  raftsvc::SnapshotFile good_file;
  good_file.set_cf("raw");
  good_file.set_size(sst.size());
  good_file.set_crc32(snapshot_crc32(sst));
  good_file.set_keys(2);
  // Streams `bytes` as the snapshot's files; the first error on the way, or OK once delivered.
  auto send = [&](const raftsvc::RaftMessage& m, std::uint64_t total, const std::string& bytes) -> Status {
    RDB_ASSIGN_OR_RETURN(auto receiver, to.receive_snapshot(m, total));
    RDB_RETURN_IF_ERROR(receiver->write(bytes));
    RDB_ASSIGN_OR_RETURN(auto msg, receiver->finish());
    to.deliver(std::move(msg));
    return Status::ok();
  };
  auto region = region_with({1, 2, 3});
  auto expect_refused = [&](const Status& s, std::string_view why) {
    EXPECT_FALSE(s.is_ok()) << why;
    EXPECT_NE(s.message().find(why), std::string::npos) << s.to_string();
  };

  // A descriptor that does not parse, or names another region.
  auto garbage = from_leader_to(follower_, raftpb::MSG_SNAP);
  garbage.mutable_message()->mutable_snapshot()->mutable_metadata()->set_index(1'000);
  garbage.mutable_message()->mutable_snapshot()->set_data("\xff\xff garbage");
  expect_refused(send(garbage, 0, ""), "does not parse");
  auto region7 = region;
  region7.set_id(7);
  expect_refused(send(snap(region7, {}), 0, ""), "region 7");
  // Announced sizes that do not add up, more bytes than announced, a CRC that fails.
  expect_refused(send(snap(region, {good_file}), sst.size() + 1, sst), "add up");
  expect_refused(send(snap(region, {good_file}), sst.size(), sst + "more"), "more bytes than announced");
  auto bad_crc = good_file;
  bad_crc.set_crc32(good_file.crc32() ^ 1);
  expect_refused(send(snap(region, {bad_crc}), sst.size(), sst), "CRC32");
  // Bytes with a matching CRC that are no table file; a key count that lies.
  std::string junk(sst.size(), 'j');
  auto junk_file = good_file;
  junk_file.set_crc32(snapshot_crc32(junk));
  expect_refused(send(snap(region, {junk_file}), junk.size(), junk), "table file");
  auto lying = good_file;
  lying.set_keys(1);
  expect_refused(send(snap(region, {lying}), sst.size(), sst), "announced");
  // A well-formed file holding a key outside the region's range.
  auto bounded = region;
  bounded.set_end_key("m");
  expect_refused(send(snap(bounded, {good_file}), sst.size(), sst), "outside the region's range");
  // A MsgSnap on the ordinary message path: no files arrived for it.
  to.deliver(snap(region, {good_file}));
  EXPECT_TRUE(testing::poll_until([&] { return dropped(follower_, "bad_snapshot") >= 1; }, std::chrono::seconds(5)));

  expect_region_serves("after");
  EXPECT_FALSE(has_value(follower_, "evil", "x"));
  EXPECT_TRUE(has_value(follower_, "before", "1"));
  // Nothing refused stays on disk.
  std::size_t files = 0;
  for ([[maybe_unused]] const auto& e :
       std::filesystem::directory_iterator(dir_.sub("snap" + std::to_string(follower_)))) {
    ++files;
  }
  EXPECT_EQ(files, 0u);
}

TEST_F(RaftStoreHostileTest, AppendWithGapsOrBehindCommitIsDropped) {
  start_three();
  auto m = from_leader_to(follower_, raftpb::MSG_APP);
  m.mutable_message()->set_index(1);  // far behind the commit index
  m.mutable_message()->set_log_term(1);
  auto* e = m.mutable_message()->add_entries();
  e->set_index(7);  // not index + 1: entries must be contiguous
  e->set_term(1);
  nodes_[follower_].store->deliver(m);
  EXPECT_EQ(dropped(follower_, "bad_entries"), 1u);
  expect_region_serves("after");
}

TEST_F(RaftStoreHostileTest, MisaddressedAndForgedEnvelopesAreDropped) {
  start_three();
  auto m = from_leader_to(follower_, raftpb::MSG_HEARTBEAT);
  m.mutable_to_peer()->set_store_id(42);  // for another store
  nodes_[follower_].store->deliver(m);
  m = from_leader_to(follower_, raftpb::MSG_HEARTBEAT);
  m.mutable_message()->set_to(5555);  // envelope and Raft message disagree
  nodes_[follower_].store->deliver(m);
  m = from_leader_to(follower_, raftpb::MSG_PROP);  // proposals never travel between stores
  m.mutable_message()->set_term(0);
  m.mutable_message()->add_entries()->set_data("forged");
  nodes_[follower_].store->deliver(m);
  EXPECT_EQ(dropped(follower_, "misaddressed"), 1u);
  EXPECT_EQ(dropped(follower_, "bad_peer"), 1u);
  EXPECT_EQ(dropped(follower_, "bad_type"), 1u);
  expect_region_serves("after");
}

// Seeded: replays, duplicates, mutates and misaddresses the region's real traffic
// at every store while writes go on; then the region must still commit everywhere.
TEST_F(RaftStoreHostileTest, SeededHostileTrafficNeverStopsTheRegion) {
  const char* forced = std::getenv("RDB_HOSTILE_SEED");
  const std::uint64_t seed = forced != nullptr ? std::strtoull(forced, nullptr, 10) : std::random_device{}();
  SCOPED_TRACE(fmt::format("seed {} (replay: RDB_HOSTILE_SEED={})", seed, seed));
  std::mt19937_64 rng(seed);
  auto pick = [&](std::uint64_t n) { return std::uniform_int_distribution<std::uint64_t>(0, n - 1)(rng); };
  auto interesting = [&](std::uint64_t near) -> std::uint64_t {
    const std::uint64_t values[] = {0, 1, near, near + 1, near + 100, raft::kMaxTerm, ~std::uint64_t{0}, rng()};
    return values[pick(8)];
  };
  start_three();
  std::uint64_t injected = 0;
  for (int round = 0; round < 30; ++round) {
    ASSERT_FALSE(write(put(fmt::format("k{}", round), "v")).region_error.has_value());
    auto traffic = transport_.recent();
    for (int i = 0; i < 40 && !traffic.empty(); ++i) {
      raftsvc::RaftMessage m = traffic[pick(traffic.size())];
      raftpb::Message& r = *m.mutable_message();
      switch (pick(9)) {
        case 0:
          break;  // a stale or duplicated copy
        case 1:
          r.set_term(interesting(r.term()));
          break;
        case 2:
          r.set_commit(interesting(r.commit()));
          break;
        case 3:
          r.set_index(interesting(r.index()));
          r.set_log_term(interesting(r.log_term()));
          break;
        case 4:
          r.set_type(static_cast<raftpb::MessageType>(pick(20)));
          break;
        case 5:
          r.clear_entries();
          break;
        case 6:
          if (r.entries_size() > 0) {
            r.mutable_entries(0)->set_index(interesting(r.entries(0).index()));
          }
          break;
        case 7:
          m.set_region_id(interesting(m.region_id()));
          break;
        default:
          m.mutable_to_peer()->set_id(interesting(m.to_peer().id()));
          break;
      }
      std::uint64_t to = 1 + pick(3);  // sometimes not the store it was meant for
      nodes_[to].store->deliver(std::move(m));
      ++injected;
    }
  }
  EXPECT_GT(injected, 0u);
  expect_region_serves("after-attack");
  for (std::uint64_t s = 1; s <= 3; ++s) {
    for (int round = 0; round < 30; ++round) {
      EXPECT_TRUE(has_value(s, fmt::format("k{}", round), "v")) << "store " << s << " lost k" << round;
    }
  }
  std::uint64_t refused = 0;
  for (std::uint64_t s = 1; s <= 3; ++s) {
    refused += nodes_[s].store->dropped_messages().total();
  }
  EXPECT_GT(refused, 0u) << "the mutations should have produced invalid messages";
}

}  // namespace
}  // namespace rdb
