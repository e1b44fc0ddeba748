#include "raftdisk/peer_storage.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "raft/raw_node.h"
#include "raftdisk/engine_options.h"
#include "raftdisk/raft_keys.h"
#include "storage/rocks_engine.h"
#include "support/temp_dir.h"

namespace rdb {
namespace {

raft::Entry entry(std::uint64_t index, std::uint64_t term, const std::string& data = "") {
  raft::Entry e;
  e.set_index(index);
  e.set_term(term);
  e.set_data(data);
  return e;
}

class PeerStorageTest : public ::testing::Test {
 protected:
  void SetUp() override { reopen(); }
  void reopen() {
    ps_.reset();
    engine_.reset();
    engine_ = std::move(RocksEngine::open(dir_.path(), raft_disk_engine_options())).value();
    auto ps = PeerStorage::open(*engine_, 7);
    ASSERT_TRUE(ps.is_ok()) << ps.status().to_string();
    ps_ = std::move(ps).value();
  }
  void write(WriteBatch& wb) { ASSERT_TRUE(engine_->write(wb, true).is_ok()); }
  void append(std::vector<raft::Entry> ents) {
    WriteBatch wb;
    ps_->append(std::move(ents), wb);
    write(wb);
  }

  testing::TempDir dir_;
  std::unique_ptr<RocksEngine> engine_;
  std::unique_ptr<PeerStorage> ps_;
};

TEST_F(PeerStorageTest, FreshRegionIsEmpty) {
  EXPECT_EQ(*ps_->first_index(), 1u);
  EXPECT_EQ(*ps_->last_index(), 0u);
  EXPECT_EQ(*ps_->term(0), 0u);
  auto init = ps_->initial_state();
  ASSERT_TRUE(init.is_ok());
  EXPECT_EQ(init->hard_state.term(), 0u);
  EXPECT_TRUE(raft::is_snapshot_temporarily_unavailable(ps_->snapshot().status()));
}

TEST_F(PeerStorageTest, EntriesSurviveReopenAndAreReadFromDisk) {
  append({entry(1, 1, "a"), entry(2, 1, "b"), entry(3, 2, "c")});
  reopen();  // the entry cache is cold now: reads go to RocksDB
  EXPECT_EQ(*ps_->last_index(), 3u);
  EXPECT_EQ(*ps_->term(3), 2u);
  EXPECT_EQ(*ps_->term(2), 1u);
  auto ents = ps_->entries(1, 4, raft::kNoLimit);
  ASSERT_TRUE(ents.is_ok());
  ASSERT_EQ(ents->size(), 3u);
  EXPECT_EQ((*ents)[1].data(), "b");
  EXPECT_EQ(ps_->entries(1, 4, 1)->size(), 1u);  // size limit keeps at least one
  EXPECT_TRUE(raft::is_unavailable(ps_->term(9).status()));
}

// The in-memory tail of the log is bounded in bytes, not only in entries: big values
// fall back to the engine instead of piling up in memory.
TEST_F(PeerStorageTest, EntryCacheIsBoundedInBytes) {
  const std::string mib(1 << 20, 'x');
  for (std::uint64_t i = 1; i <= 100; ++i) {
    append({entry(i, 1, mib + std::to_string(i))});
  }
  EXPECT_LE(ps_->cached_bytes(), std::size_t{32} << 20);
  EXPECT_GT(ps_->cached_bytes(), 0u);
  auto first = ps_->entries(1, 3, raft::kNoLimit);
  ASSERT_TRUE(first.is_ok());
  ASSERT_EQ(first->size(), 2u);
  EXPECT_EQ((*first)[1].data(), mib + "2");
  auto last = ps_->entries(100, 101, raft::kNoLimit);
  ASSERT_TRUE(last.is_ok());
  EXPECT_EQ((*last)[0].data(), mib + "100");
}

// The store shares one entry cache budget among its regions: a smaller share trims the
// cache at once (oldest first) and bounds later appends; entries still read back.
TEST_F(PeerStorageTest, EntryCacheFollowsTheStoresShare) {
  const std::string kib64(64 << 10, 'y');
  for (std::uint64_t i = 1; i <= 64; ++i) {
    append({entry(i, 1, kib64)});
  }
  EXPECT_GE(ps_->cached_bytes(), std::size_t{4} << 20);
  ps_->set_cache_limit(std::size_t{1} << 20);
  EXPECT_LE(ps_->cached_bytes(), std::size_t{1} << 20);
  EXPECT_GT(ps_->cached_bytes(), 0u);
  for (std::uint64_t i = 65; i <= 80; ++i) {
    append({entry(i, 1, kib64)});
  }
  EXPECT_LE(ps_->cached_bytes(), std::size_t{1} << 20);
  ps_->set_cache_limit(std::size_t{1} << 40);
  EXPECT_EQ(ps_->cache_limit(), std::size_t{32} << 20) << "a share never exceeds the per-region cap";
  auto early = ps_->entries(2, 4, raft::kNoLimit);
  ASSERT_TRUE(early.is_ok());
  ASSERT_EQ(early->size(), 2u);
  EXPECT_EQ((*early)[0].data(), kib64);
}

TEST_F(PeerStorageTest, ConflictingSuffixIsTruncated) {
  append({entry(1, 1), entry(2, 1), entry(3, 1), entry(4, 1), entry(5, 1)});
  append({entry(3, 2, "new")});  // a new leader's entry at 3 replaces 3..5
  EXPECT_EQ(*ps_->last_index(), 3u);
  reopen();
  EXPECT_EQ(*ps_->last_index(), 3u);
  EXPECT_EQ(*ps_->term(3), 2u);
  auto ents = ps_->entries(1, 4, raft::kNoLimit);
  ASSERT_TRUE(ents.is_ok());
  EXPECT_EQ((*ents)[2].data(), "new");
  auto raw = engine_->scan_cf(ColumnFamily::kRaft, raft_keys::log_key(7, 4), raft_keys::log_key(7, 100), 0);
  EXPECT_TRUE(raw->empty()) << "stale entries 4 and 5 are still on disk";
}

TEST(RaftKeysTest, InsertHintGroupsAreALogAndEachRewrittenState) {
  using namespace raft_keys;
  auto group_of = [](const std::string& key) { return key.substr(0, insert_hint_group(key)); };
  EXPECT_GT(insert_hint_group(log_key(7, 5)), 0u);
  EXPECT_EQ(group_of(log_key(7, 5)), group_of(log_key(7, 1u << 20)));
  EXPECT_NE(group_of(log_key(7, 5)), group_of(log_key(8, 5)));
  EXPECT_GT(insert_hint_group(local_state_key(7)), 0u);
  EXPECT_GT(insert_hint_group(apply_state_key(7)), 0u);
  EXPECT_NE(group_of(local_state_key(7)), group_of(apply_state_key(7)));
  EXPECT_NE(group_of(local_state_key(7)), group_of(log_key(7, 5)));
  for (const std::string& none : {region_state_key(7), snapshot_ingest_key(7), merge_state_key(7),
                                  region_range(7).first, region_range(7).second, std::string(), std::string("x")}) {
    EXPECT_EQ(insert_hint_group(none), 0u);
  }
}

TEST(RaftKeysTest, ALogRangeStartsBetweenTheEntriesItKeepsAndThoseItDeletes) {
  using namespace raft_keys;
  for (std::uint64_t index : {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{2}, std::uint64_t{255},
                              std::uint64_t{256}, std::uint64_t{1} << 40, ~std::uint64_t{0}}) {
    std::string start = log_range_start(7, index);
    EXPECT_EQ(insert_hint_group(start), 0u) << index;
    EXPECT_LE(start, log_key(7, index)) << index;
    if (index > 0) {
      EXPECT_GT(start, log_key(7, index - 1)) << index;
    }
    EXPECT_GT(start, region_range(7).first) << index;
    EXPECT_LT(start, local_state_key(7)) << index;
  }
}

// Two regions' logs interleave in one engine with insert hints on: appends, conflicting
// suffixes and compactions (range deletions) in turn, then everything is read from disk.
TEST(PeerStorageHintTest, InterleavedLogsSurviveTruncationsAndCompactions) {
  testing::TempDir dir;
  auto engine = std::move(RocksEngine::open(dir.path(), raft_disk_engine_options())).value();
  std::vector<std::unique_ptr<PeerStorage>> peers;
  for (std::uint64_t region : {7, 8}) {
    peers.push_back(std::move(PeerStorage::open(*engine, region)).value());
  }
  std::uint64_t last = 0;
  for (int round = 1; round <= 60; ++round) {
    WriteBatch wb;
    for (auto& ps : peers) {
      std::vector<raft::Entry> ents;
      for (int i = 1; i <= 5; ++i) {
        ents.push_back(entry(last + i, 1, "r" + std::to_string(round)));
      }
      ps->append(std::move(ents), wb);
      if (round % 7 == 0) {  // a new leader replaces the last two entries
        ps->append({entry(last + 4, 1, "again"), entry(last + 5, 1, "again")}, wb);
      }
      ps->set_applied(last + 5, wb);
      if (round % 10 == 0) {
        ASSERT_TRUE(ps->compact_to(last + 3, wb).is_ok());
      }
    }
    ASSERT_TRUE(engine->write(wb, false).is_ok());
    last += 5;
  }
  peers.clear();
  engine.reset();
  engine = std::move(RocksEngine::open(dir.path(), raft_disk_engine_options())).value();
  for (std::uint64_t region : {7, 8}) {
    auto ps = std::move(PeerStorage::open(*engine, region)).value();
    EXPECT_EQ(*ps->first_index(), 59 * 5 + 4) << region;  // compacted to 59*5+3 in round 60
    EXPECT_EQ(*ps->last_index(), last) << region;
    auto ents = ps->entries(*ps->first_index(), last + 1, raft::kNoLimit);
    ASSERT_TRUE(ents.is_ok()) << ents.status().to_string();
    ASSERT_EQ(ents->size(), last + 1 - *ps->first_index());
    EXPECT_EQ(ents->back().data(), "r60");
    EXPECT_EQ((*ents)[0].index(), *ps->first_index());
    auto raw =
        engine->scan_cf(ColumnFamily::kRaft, raft_keys::log_key(region, 0), raft_keys::log_key(region, last + 1), 0);
    EXPECT_EQ(raw->size(), ents->size()) << "compacted entries are still on disk";
  }
}

TEST_F(PeerStorageTest, HardStateAndConfStatePersist) {
  raft::HardState hs;
  hs.set_term(5);
  hs.set_vote(2);
  hs.set_commit(0);
  raft::ConfState cs;
  cs.add_voters(1);
  cs.add_voters(2);
  cs.add_learners(3);
  WriteBatch wb;
  ps_->set_hard_state(hs, wb);
  ps_->set_conf_state(cs, wb);
  write(wb);
  reopen();
  auto init = ps_->initial_state();
  EXPECT_EQ(init->hard_state.term(), 5u);
  EXPECT_EQ(init->hard_state.vote(), 2u);
  EXPECT_EQ(init->conf_state.voters_size(), 2);
  EXPECT_EQ(init->conf_state.learners(0), 3u);
}

// A Ready's entries and hard state write the local state once, and both survive a restart.
TEST_F(PeerStorageTest, ARoundsEntriesAndHardStateWriteTheLocalStateOnce) {
  raft::HardState hs;
  hs.set_term(3);
  hs.set_vote(1);
  hs.set_commit(1);
  WriteBatch wb;
  ps_->save_ready({entry(1, 3, "a"), entry(2, 3, "b")}, hs, wb);
  auto local_state_writes = std::count_if(wb.writes().begin(), wb.writes().end(), [](const WriteBatch::Write& w) {
    return w.key == raft_keys::local_state_key(7);
  });
  EXPECT_EQ(local_state_writes, 1);
  EXPECT_EQ(wb.count(), 3U) << "two entries and the local state";
  write(wb);

  WriteBatch commit_only;
  hs.set_commit(2);
  ps_->save_ready({}, hs, commit_only);
  EXPECT_EQ(commit_only.count(), 1U);
  write(commit_only);
  WriteBatch nothing;
  ps_->save_ready({}, std::nullopt, nothing);
  EXPECT_TRUE(nothing.empty());

  reopen();
  auto init = ps_->initial_state();
  ASSERT_TRUE(init.is_ok());
  EXPECT_EQ(init->hard_state.term(), 3U);
  EXPECT_EQ(init->hard_state.commit(), 2U);
  EXPECT_EQ(*ps_->last_index(), 2U);
  EXPECT_EQ(*ps_->term(2), 3U);
}

TEST_F(PeerStorageTest, CompactionMovesFirstIndexAndKeepsTheBoundaryTerm) {
  append({entry(1, 1), entry(2, 1), entry(3, 2), entry(4, 2)});
  WriteBatch wb;
  ps_->set_applied(3, wb);
  ASSERT_TRUE(ps_->compact_to(2, wb).is_ok());
  write(wb);
  reopen();
  EXPECT_EQ(*ps_->first_index(), 3u);
  EXPECT_EQ(*ps_->term(2), 1u);
  EXPECT_TRUE(raft::is_compacted(ps_->term(1).status()));
  EXPECT_TRUE(raft::is_compacted(ps_->entries(2, 4, raft::kNoLimit).status()));
  EXPECT_EQ(ps_->entries(3, 5, raft::kNoLimit)->size(), 2u);
  WriteBatch bad;
  EXPECT_FALSE(ps_->compact_to(4, bad).is_ok()) << "compacting past the applied index";
  EXPECT_TRUE(raft::is_compacted(ps_->compact_to(2, bad)));
}

TEST_F(PeerStorageTest, ApplyIndexIsAtomicWithTheDataItCovers) {
  append({entry(1, 1, "x")});
  {
    // A crash before the batch is written: neither the data nor the apply index.
    WriteBatch wb;
    wb.put(ColumnFamily::kRaw, "k", "x");
    ps_->set_applied(1, wb);
  }
  reopen();
  EXPECT_EQ(ps_->applied_index(), 0u);
  EXPECT_FALSE(engine_->raw_get("k")->has_value());
  // Written: both, so on restart apply resumes after index 1 and never repeats it.
  WriteBatch wb;
  wb.put(ColumnFamily::kRaw, "k", "x");
  ps_->set_applied(1, wb);
  write(wb);
  reopen();
  EXPECT_EQ(ps_->applied_index(), 1u);
  EXPECT_EQ(engine_->raw_get("k")->value(), "x");
}

TEST_F(PeerStorageTest, SnapshotCarriesAppliedPositionAndSnapshotMetaResetsTheLog) {
  append({entry(1, 1), entry(2, 3)});
  WriteBatch wb;
  ps_->set_applied(2, wb);
  raft::ConfState cs;
  cs.add_voters(1);
  ps_->set_conf_state(cs, wb);
  write(wb);
  EXPECT_TRUE(raft::is_snapshot_temporarily_unavailable(ps_->snapshot().status()));
  auto at = ps_->snapshot_metadata();
  ASSERT_TRUE(at.is_ok());
  EXPECT_EQ(at->index(), 2u);
  EXPECT_EQ(at->term(), 3u);
  EXPECT_EQ(at->conf_state().voters_size(), 1);
  ps_->set_snapshot_builder([&] {
    raft::Snapshot s;
    *s.mutable_metadata() = *ps_->snapshot_metadata();
    s.set_data("region-data");
    return Result<raft::Snapshot>(s);
  });
  auto snap = ps_->snapshot();
  ASSERT_TRUE(snap.is_ok());
  EXPECT_EQ(snap->metadata().index(), 2u);
  EXPECT_EQ(snap->data(), "region-data");

  raft::SnapshotMetadata meta;
  meta.set_index(10);
  meta.set_term(4);
  meta.mutable_conf_state()->add_voters(1);
  meta.mutable_conf_state()->add_voters(2);
  WriteBatch sb;
  ps_->apply_snapshot_meta(meta, sb);
  write(sb);
  reopen();
  EXPECT_EQ(*ps_->first_index(), 11u);
  EXPECT_EQ(*ps_->last_index(), 10u);
  EXPECT_EQ(*ps_->term(10), 4u);
  EXPECT_EQ(ps_->applied_index(), 10u);
  EXPECT_EQ(ps_->conf_state().voters_size(), 2);
  EXPECT_GE(ps_->hard_state().commit(), 10u);
}

TEST_F(PeerStorageTest, DrivesARaftNodeAcrossRestart) {
  raft::ConfState cs;
  cs.add_voters(1);
  {
    WriteBatch wb;
    ps_->set_conf_state(cs, wb);
    write(wb);
  }
  auto run = [&](const std::string& prefix, int proposals) {
    raft::Config c;
    c.id = 1;
    c.applied = ps_->applied_index();
    auto node = raft::RawNode::create(c, *ps_);
    ASSERT_TRUE(node.is_ok()) << node.status().to_string();
    ASSERT_TRUE((*node)->campaign().is_ok());
    for (int i = 0; i < proposals; ++i) {
      ASSERT_TRUE((*node)->propose(prefix + std::to_string(i)).is_ok());
    }
    while ((*node)->has_ready()) {
      raft::Ready rd = (*node)->ready();
      WriteBatch wb;
      ps_->append(rd.entries, wb);
      if (rd.hard_state) {
        ps_->set_hard_state(*rd.hard_state, wb);
      }
      for (const auto& e : rd.committed_entries) {
        if (!e.data().empty()) {
          wb.put(ColumnFamily::kRaw, e.data(), std::to_string(e.index()));
        }
      }
      if (!rd.committed_entries.empty()) {
        ps_->set_applied(rd.committed_entries.back().index(), wb);
      }
      write(wb);
      (*node)->advance(rd);
    }
  };
  run("first", 3);
  std::uint64_t applied = ps_->applied_index();
  std::uint64_t term = ps_->hard_state().term();
  reopen();
  EXPECT_EQ(ps_->applied_index(), applied);
  run("second", 2);  // a new term; the old entries are not applied again
  EXPECT_GT(ps_->hard_state().term(), term);
  EXPECT_EQ(engine_->raw_get("first0")->value(), "2");  // applied once, at its original index
  EXPECT_EQ(engine_->raw_get("second1")->value(), std::to_string(applied + 3));
  EXPECT_EQ(ps_->applied_index(), applied + 3);  // a new no-op plus two proposals
}

}  // namespace
}  // namespace rdb

namespace rdb {
namespace {

TEST(RaftKeysTest, OneRegionsKeysAreContiguousAndNameTheirRegion) {
  auto [start, end] = raft_keys::region_range(7);
  for (const auto& k :
       {raft_keys::log_key(7, 0), raft_keys::log_key(7, ~std::uint64_t{0}), raft_keys::local_state_key(7),
        raft_keys::apply_state_key(7), raft_keys::region_state_key(7), raft_keys::snapshot_ingest_key(7)}) {
    EXPECT_GE(k, start);
    EXPECT_LT(k, end);
    EXPECT_EQ(raft_keys::region_id_of(k), 7u);
  }
  EXPECT_GE(raft_keys::log_key(8, 0), end);
  EXPECT_TRUE(raft_keys::is_region_state_key(raft_keys::region_state_key(7)));
  EXPECT_FALSE(raft_keys::is_region_state_key(raft_keys::apply_state_key(7)));
  EXPECT_TRUE(raft_keys::is_snapshot_ingest_key(raft_keys::snapshot_ingest_key(7)));
  EXPECT_FALSE(raft_keys::is_snapshot_ingest_key(raft_keys::log_key(7, 5)));
  EXPECT_EQ(raft_keys::region_id_of("x"), 0u);
  auto [all_start, all_end] = raft_keys::all_regions_range();
  EXPECT_LE(all_start, start);
  EXPECT_LE(raft_keys::region_range(~std::uint64_t{0}).second, all_end);
}

}  // namespace
}  // namespace rdb
