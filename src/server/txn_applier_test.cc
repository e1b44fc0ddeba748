// The Percolator commands as the state machine applies them, edge cases first:
// commit after rollback, rollback after commit, retries, a crashed client's locks,
// reads that meet a lock, and commands of one batch that see each other.
#include "server/txn_applier.h"

#include <gtest/gtest.h>

#include "server/mvcc_reader.h"
#include "storage/mvcc_codec.h"
#include "storage/rocks_engine.h"
#include "support/temp_dir.h"

namespace rdb {
namespace {

constexpr std::uint64_t ts(std::uint64_t ms, std::uint64_t logical = 0) {
  return (ms << 18) | logical;
}

class TxnApplierTest : public ::testing::Test {
 protected:
  // Applies one command in its own batch (the common case), or into `wb` when given.
  txnpb::TxnResult run(const txnpb::TxnCommand& cmd, WriteBatch* into = nullptr) {
    WriteBatch own;
    WriteBatch& wb = into != nullptr ? *into : own;
    auto r = applier_.apply(cmd, wb);
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    if (into == nullptr) {
      flush(own);
    }
    return r.is_ok() ? *r : txnpb::TxnResult();
  }
  void flush(WriteBatch& wb) {
    ASSERT_TRUE(engine_->write(wb, false).is_ok());
    applier_.batch_written();
    wb.clear();
  }

  static txnpb::TxnCommand prewrite(std::uint64_t start, const std::string& primary,
                                    std::vector<std::pair<std::string, std::optional<std::string>>> writes,
                                    std::uint64_t ttl = 3000) {
    txnpb::TxnCommand c;
    auto* p = c.mutable_prewrite();
    p->set_start_ts(start);
    p->set_primary(primary);
    p->set_ttl_ms(ttl);
    for (auto& [k, v] : writes) {
      auto* m = p->add_mutations();
      m->set_key(k);
      m->set_op(v ? txnpb::PUT : txnpb::DEL);
      if (v) {
        m->set_value(*v);
      }
    }
    return c;
  }
  static txnpb::TxnCommand commit(std::uint64_t start, std::uint64_t commit_ts, std::vector<std::string> keys) {
    txnpb::TxnCommand c;
    c.mutable_commit()->set_start_ts(start);
    c.mutable_commit()->set_commit_ts(commit_ts);
    for (auto& k : keys) {
      c.mutable_commit()->add_keys(k);
    }
    return c;
  }
  static txnpb::TxnCommand rollback(std::uint64_t start, std::vector<std::string> keys) {
    txnpb::TxnCommand c;
    c.mutable_rollback()->set_start_ts(start);
    for (auto& k : keys) {
      c.mutable_rollback()->add_keys(k);
    }
    return c;
  }
  static txnpb::TxnCommand check(const std::string& primary, std::uint64_t lock_ts, std::uint64_t now,
                                 bool rollback_if_not_exist = false) {
    txnpb::TxnCommand c;
    auto* s = c.mutable_check_status();
    s->set_primary(primary);
    s->set_lock_ts(lock_ts);
    s->set_current_ts(now);
    s->set_rollback_if_not_exist(rollback_if_not_exist);
    return c;
  }
  static txnpb::TxnCommand resolve(std::uint64_t start, std::uint64_t commit_ts, std::vector<std::string> keys) {
    txnpb::TxnCommand c;
    c.mutable_resolve()->set_start_ts(start);
    c.mutable_resolve()->set_commit_ts(commit_ts);
    for (auto& k : keys) {
      c.mutable_resolve()->add_keys(k);
    }
    return c;
  }

  MvccRead read(const std::string& key, std::uint64_t at) {
    EngineSource source(*engine_);
    MvccReader reader(source);
    auto r = reader.get(key, at);
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    return r.is_ok() ? *r : MvccRead();
  }

  testing::TempDir dir_;
  std::unique_ptr<RocksEngine> engine_ = std::move(RocksEngine::open(dir_.path())).value();
  TxnApplier applier_{*engine_};
};

TEST_F(TxnApplierTest, ReadsSeeExactlyWhatCommittedBeforeTheirTimestamp) {
  EXPECT_EQ(run(prewrite(ts(100), "a", {{"a", "1"}, {"b", "2"}})).errors_size(), 0);
  // Locked: a read after the lock's start waits for it; a read before does not see it.
  auto blocked = read("a", ts(150));
  ASSERT_TRUE(blocked.locked.has_value());
  EXPECT_EQ(blocked.locked->lock_version(), ts(100));
  EXPECT_EQ(blocked.locked->primary_lock(), "a");
  EXPECT_FALSE(read("a", ts(99)).locked.has_value());
  EXPECT_FALSE(read("a", ts(99)).found);

  EXPECT_EQ(run(commit(ts(100), ts(200), {"a", "b"})).errors_size(), 0);
  EXPECT_FALSE(read("a", ts(199)).found) << "committed after the snapshot";
  auto after = read("a", ts(200));
  EXPECT_TRUE(after.found);
  EXPECT_EQ(after.value, "1");

  // A delete at 400 hides the key from later snapshots only.
  EXPECT_EQ(run(prewrite(ts(300), "a", {{"a", std::nullopt}})).errors_size(), 0);
  EXPECT_EQ(run(commit(ts(300), ts(400), {"a"})).errors_size(), 0);
  EXPECT_TRUE(read("a", ts(399)).found);
  EXPECT_FALSE(read("a", ts(400)).found);

  EngineSource source(*engine_);
  MvccReader reader(source);
  auto scanned = reader.scan("", "", ts(250), 10, false, 0);
  ASSERT_TRUE(scanned.is_ok());
  ASSERT_EQ(scanned->pairs.size(), 2u);
  EXPECT_EQ(scanned->pairs[0].key, "a");
  EXPECT_EQ(scanned->pairs[1].value, "2");
  auto later = reader.scan("", "", ts(500), 10, false, 0);
  ASSERT_EQ(later->pairs.size(), 1u);
  EXPECT_EQ(later->pairs[0].key, "b");
}

TEST_F(TxnApplierTest, RangeReadsPassLockOnlyLocksButNotTheWriteLocksAfterThem) {
  // "a" is only locked (Transaction::lock: commits no change); "b" is being written.
  auto lock_only = prewrite(ts(100), "a", {{"a", "x"}});
  lock_only.mutable_prewrite()->mutable_mutations(0)->set_op(txnpb::LOCK);
  lock_only.mutable_prewrite()->mutable_mutations(0)->clear_value();
  EXPECT_EQ(run(lock_only).errors_size(), 0);
  EXPECT_EQ(run(prewrite(ts(110), "b", {{"b", "2"}})).errors_size(), 0);

  EngineSource source(*engine_);
  MvccReader reader(source);
  auto scanned = reader.scan("", "", ts(200), 10, false, 0);
  ASSERT_TRUE(scanned.is_ok());
  ASSERT_TRUE(scanned->locked.has_value()) << "the write lock on b hides behind the lock-only one on a";
  EXPECT_EQ(scanned->locked->key(), "b");
  auto changes = reader.scan_changes("", "", ts(50), ts(200), 10, false, 0);
  ASSERT_TRUE(changes.is_ok());
  ASSERT_TRUE(changes->locked.has_value());
  EXPECT_EQ(changes->locked->key(), "b");
  // Before the write's start, nothing blocks.
  auto early = reader.scan("", "", ts(105), 10, false, 0);
  ASSERT_TRUE(early.is_ok());
  EXPECT_FALSE(early->locked.has_value());
}

TEST_F(TxnApplierTest, WriteConflictsNameTheCommitThatWon) {
  run(prewrite(ts(100), "k", {{"k", "first"}}));
  // Another transaction meets the lock.
  auto locked = run(prewrite(ts(110), "k", {{"k", "second"}, {"other", "x"}}));
  ASSERT_EQ(locked.errors_size(), 1);
  EXPECT_TRUE(locked.errors(0).has_locked());
  EXPECT_FALSE(read("other", ts(1000)).locked.has_value()) << "a refused prewrite writes nothing";
  run(commit(ts(100), ts(120), {"k"}));
  // Started before that commit: a conflict naming it.
  auto conflict = run(prewrite(ts(110), "k", {{"k", "second"}}));
  ASSERT_EQ(conflict.errors_size(), 1);
  ASSERT_TRUE(conflict.errors(0).has_conflict());
  EXPECT_EQ(conflict.errors(0).conflict().conflict_commit_ts(), ts(120));
  EXPECT_EQ(conflict.errors(0).conflict().conflict_start_ts(), ts(100));
  // Started after it: fine.
  EXPECT_EQ(run(prewrite(ts(130), "k", {{"k", "third"}})).errors_size(), 0);
}

TEST_F(TxnApplierTest, CommitAfterRollbackAndRollbackAfterCommitAreRefused) {
  run(prewrite(ts(100), "p", {{"p", "v"}}));
  EXPECT_EQ(run(rollback(ts(100), {"p"})).errors_size(), 0);
  auto late_commit = run(commit(ts(100), ts(150), {"p"}));
  ASSERT_EQ(late_commit.errors_size(), 1);
  EXPECT_FALSE(late_commit.errors(0).abort().empty());
  auto late_prewrite = run(prewrite(ts(100), "p", {{"p", "v"}}));
  ASSERT_EQ(late_prewrite.errors_size(), 1) << "the rollback record stops a prewrite that arrives late";
  EXPECT_FALSE(read("p", ts(1000)).found);

  run(prewrite(ts(200), "q", {{"q", "v"}}));
  run(commit(ts(200), ts(250), {"q"}));
  auto late_rollback = run(rollback(ts(200), {"q"}));
  ASSERT_EQ(late_rollback.errors_size(), 1);
  EXPECT_TRUE(late_rollback.errors(0).already_committed());
  EXPECT_EQ(late_rollback.errors(0).commit_ts(), ts(250));
  EXPECT_TRUE(read("q", ts(1000)).found);
  // Retries of what happened are harmless.
  EXPECT_EQ(run(commit(ts(200), ts(250), {"q"})).errors_size(), 0);
  EXPECT_EQ(run(prewrite(ts(200), "q", {{"q", "v"}})).errors_size(), 0);
  EXPECT_EQ(run(rollback(ts(100), {"p"})).errors_size(), 0);
  // A rollback of a transaction never seen here leaves a record, so it never lands.
  EXPECT_EQ(run(rollback(ts(300), {"never"})).errors_size(), 0);
  EXPECT_EQ(run(prewrite(ts(300), "never", {{"never", "v"}})).errors_size(), 1);
}

TEST_F(TxnApplierTest, ACrashedClientsLocksAreResolvedByItsPrimary) {
  // Crashed after prewrite: the primary's lock expires, check-status rolls it back.
  run(prewrite(ts(1000), "p1", {{"p1", "a"}, {"s1", "b"}}, /*ttl=*/500));
  auto alive = run(check("p1", ts(1000), ts(1400)));
  EXPECT_GT(alive.lock_ttl(), 0u);
  EXPECT_EQ(alive.action(), txnpb::NO_ACTION);
  auto dead = run(check("p1", ts(1000), ts(1500)));
  EXPECT_EQ(dead.action(), txnpb::TTL_EXPIRE_ROLLBACK);
  EXPECT_EQ(dead.lock_ttl(), 0u);
  EXPECT_EQ(dead.commit_ts(), 0u);
  run(resolve(ts(1000), 0, {"s1"}));
  EXPECT_FALSE(read("s1", ts(2000)).locked.has_value());
  EXPECT_FALSE(read("s1", ts(2000)).found);

  // Crashed after committing its primary: the secondaries roll forward.
  run(prewrite(ts(3000), "p2", {{"p2", "a"}, {"s2", "b"}}));
  run(commit(ts(3000), ts(3100), {"p2"}));
  auto committed = run(check("p2", ts(3000), ts(9000)));
  EXPECT_EQ(committed.commit_ts(), ts(3100));
  run(resolve(ts(3000), committed.commit_ts(), {"s2"}));
  auto s2 = read("s2", ts(3200));
  EXPECT_TRUE(s2.found);
  EXPECT_EQ(s2.value, "b");
  EXPECT_FALSE(read("s2", ts(3099)).found) << "rolled forward at the primary's commit";

  // Never prewrote its primary: not found, or rolled back on request.
  auto missing = run(check("p3", ts(5000), ts(9000)));
  ASSERT_EQ(missing.errors_size(), 1);
  EXPECT_TRUE(missing.errors(0).txn_not_found());
  EXPECT_EQ(run(check("p3", ts(5000), ts(9000), true)).action(), txnpb::LOCK_NOT_EXIST_ROLLBACK);
  EXPECT_EQ(run(prewrite(ts(5000), "p3", {{"p3", "late"}})).errors_size(), 1);
}

TEST_F(TxnApplierTest, CommandsInOneBatchSeeEachOther) {
  WriteBatch wb;
  EXPECT_EQ(run(prewrite(ts(100), "k", {{"k", "1"}}), &wb).errors_size(), 0);
  EXPECT_EQ(run(prewrite(ts(101), "k", {{"k", "2"}}), &wb).errors_size(), 1) << "the lock in the open batch";
  EXPECT_EQ(run(commit(ts(100), ts(102), {"k"}), &wb).errors_size(), 0);
  auto conflict = run(prewrite(ts(101), "k", {{"k", "2"}}), &wb);
  ASSERT_EQ(conflict.errors_size(), 1);
  EXPECT_TRUE(conflict.errors(0).has_conflict()) << "the commit in the open batch";
  flush(wb);
  EXPECT_EQ(read("k", ts(103)).value, "1");
}

TEST_F(TxnApplierTest, MalformedCommandsAreRefusedAndWriteNothing) {
  WriteBatch wb;
  EXPECT_FALSE(applier_.apply(txnpb::TxnCommand(), wb).is_ok());
  EXPECT_FALSE(applier_.apply(prewrite(0, "k", {{"k", "v"}}), wb).is_ok()) << "no start timestamp";
  EXPECT_FALSE(applier_.apply(prewrite(ts(1), "k", {{"k", "v"}, {"k", "w"}}), wb).is_ok()) << "a key twice";
  EXPECT_FALSE(applier_.apply(prewrite(ts(1), "", {{"", "v"}}), wb).is_ok()) << "an empty key";
  EXPECT_FALSE(applier_.apply(commit(ts(5), ts(5), {"k"}), wb).is_ok()) << "commit not above start";
  EXPECT_FALSE(applier_.apply(commit(ts(5), ts(6), {}), wb).is_ok()) << "no keys";
  EXPECT_FALSE(applier_.apply(resolve(ts(5), ts(4), {"k"}), wb).is_ok());
  EXPECT_TRUE(wb.empty());
}

TEST_F(TxnApplierTest, AHeartBeatKeepsALongTransactionAlive) {
  run(prewrite(ts(1000), "p", {{"p", "v"}}, 100));
  txnpb::TxnCommand hb;
  hb.mutable_heart_beat()->set_primary("p");
  hb.mutable_heart_beat()->set_start_ts(ts(1000));
  hb.mutable_heart_beat()->set_advise_ttl_ms(5000);
  EXPECT_EQ(run(hb).lock_ttl(), 5000u);
  EXPECT_GT(run(check("p", ts(1000), ts(3000))).lock_ttl(), 0u) << "alive past its first TTL";
  hb.mutable_heart_beat()->set_start_ts(ts(999));
  EXPECT_TRUE(run(hb).errors(0).txn_not_found());
}

}  // namespace
}  // namespace rdb

namespace rdb {
namespace {

txnpb::TxnCommand one_pc(txnpb::TxnCommand c, std::uint64_t commit_ts) {
  c.mutable_prewrite()->set_one_pc_commit_ts(commit_ts);
  return c;
}

TEST_F(TxnApplierTest, OnePhaseCommitWritesVersionsAndNoLocks) {
  auto r = run(one_pc(prewrite(ts(100), "a", {{"a", "1"}, {"b", std::nullopt}}), ts(120)));
  EXPECT_EQ(r.errors_size(), 0);
  EXPECT_EQ(r.commit_ts(), 0U) << "committed now, not found committed earlier";
  EXPECT_FALSE(read("a", ts(119)).found) << "not visible before its commit timestamp";
  auto after = read("a", ts(120));
  EXPECT_FALSE(after.locked.has_value());
  EXPECT_TRUE(after.found);
  EXPECT_EQ(after.value, "1");
  EXPECT_FALSE(read("b", ts(200)).found);
  // A writer that started before the 1PC commit conflicts with it.
  auto late = run(prewrite(ts(110), "a", {{"a", "2"}}));
  ASSERT_EQ(late.errors_size(), 1);
  EXPECT_EQ(late.errors(0).conflict().conflict_commit_ts(), ts(120));
}

TEST_F(TxnApplierTest, OnePhaseCommitIsRefusedByAnotherLockAndWritesNothing) {
  run(prewrite(ts(100), "a", {{"a", "x"}}));
  auto r = run(one_pc(prewrite(ts(110), "b", {{"b", "1"}, {"a", "1"}}), ts(130)));
  ASSERT_EQ(r.errors_size(), 1);
  EXPECT_TRUE(r.errors(0).has_locked());
  EXPECT_FALSE(read("b", ts(200)).found) << "a refused 1PC writes nothing";
}

TEST_F(TxnApplierTest, RetriedOnePhaseCommitReportsTheFirstCommitAndTurnsItsOwnLocksIntoCommits) {
  EXPECT_EQ(run(one_pc(prewrite(ts(100), "a", {{"a", "1"}}), ts(120))).errors_size(), 0);
  auto again = run(one_pc(prewrite(ts(100), "a", {{"a", "1"}}), ts(140)));
  EXPECT_EQ(again.errors_size(), 0);
  EXPECT_EQ(again.commit_ts(), ts(120)) << "the retry answers when it really committed";
  // An ordinary prewrite whose answer was lost, then retried as 1PC: its locks commit.
  run(prewrite(ts(200), "p", {{"p", "v"}, {"q", "w"}}));
  EXPECT_EQ(run(one_pc(prewrite(ts(200), "p", {{"p", "v"}, {"q", "w"}}), ts(220))).errors_size(), 0);
  EXPECT_FALSE(read("q", ts(300)).locked.has_value());
  EXPECT_EQ(read("q", ts(300)).value, "w");
  EXPECT_FALSE(read("p", ts(219)).found);
}

TEST_F(TxnApplierTest, ARollbackAtAnotherTransactionsOnePhaseCommitTimestampKeepsThatCommit) {
  // A leader-chosen 1PC timestamp may equal a later transaction's start_ts.
  EXPECT_EQ(run(one_pc(prewrite(ts(100), "k", {{"k", "kept"}}), ts(150))).errors_size(), 0);
  EXPECT_EQ(run(rollback(ts(150), {"k"})).errors_size(), 0);
  EXPECT_EQ(run(check("k", ts(150), ts(9000), true)).errors_size(), 0);
  EXPECT_EQ(read("k", ts(200)).value, "kept");
  // The rolled-back transaction still cannot prewrite the key.
  EXPECT_EQ(run(prewrite(ts(150), "k", {{"k", "late"}})).errors_size(), 1);
}

TEST_F(TxnApplierTest, GcRemovesTheListedVersionsAndNothingAboveItsSafePoint) {
  for (std::uint64_t i = 1; i <= 3; ++i) {
    run(prewrite(ts(100 * i), "k", {{"k", "v" + std::to_string(i)}}));
    run(commit(ts(100 * i), ts(100 * i + 10), {"k"}));
  }
  txnpb::TxnCommand gc;
  gc.mutable_gc()->set_safe_point(ts(250));
  gc.mutable_gc()->add_write_keys(mvcc::write_key("k", ts(110)));
  EXPECT_EQ(run(gc).errors_size(), 0);
  EXPECT_EQ(read("k", ts(215)).value, "v2") << "kept: the newest version at or below the safe point";
  EXPECT_FALSE(read("k", ts(150)).found) << "the removed version";
  EXPECT_EQ(read("k", ts(400)).value, "v3");
  WriteBatch wb;
  gc.mutable_gc()->add_write_keys(mvcc::write_key("k", ts(310)));
  EXPECT_EQ(applier_.apply(gc, wb).status().code(), StatusCode::kInvalidArgument) << "above the safe point";
  gc.mutable_gc()->set_safe_point(0);
  EXPECT_EQ(applier_.apply(gc, wb).status().code(), StatusCode::kInvalidArgument) << "no safe point";
  EXPECT_EQ(read("k", ts(400)).value, "v3") << "a refused GC removes nothing";
  txnpb::TxnCommand garbage;
  garbage.mutable_gc()->set_safe_point(ts(250));
  garbage.mutable_gc()->add_write_keys("not a version key");
  EXPECT_EQ(applier_.apply(garbage, wb).status().code(), StatusCode::kInvalidArgument)
      << "malformed input is refused, not taken for a broken engine";
}

TEST_F(TxnApplierTest, OnePhaseCommitAtOrBelowItsStartIsMalformed) {
  WriteBatch wb;
  EXPECT_EQ(applier_.apply(one_pc(prewrite(ts(100), "a", {{"a", "1"}}), ts(100)), wb).status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace rdb

namespace rdb {
namespace {

// A 1PC whose answer was lost is retried after a later transaction locked its key: the
// retry must report the commit, not the lock (the client would call it aborted: G1a).
TEST_F(TxnApplierTest, ARetriedCommittedPrewriteReportsItsCommitEvenUnderALaterLock) {
  auto first = prewrite(ts(100), "k", {{"k", "mine"}});
  first.mutable_prewrite()->set_one_pc_commit_ts(ts(120));
  EXPECT_EQ(run(first).errors_size(), 0);
  EXPECT_EQ(run(prewrite(ts(200), "k", {{"k", "later"}})).errors_size(), 0);  // a later lock
  auto retried = run(first);
  EXPECT_EQ(retried.errors_size(), 0) << retried.DebugString();
  EXPECT_EQ(retried.commit_ts(), ts(120));
  auto plain = run(prewrite(ts(100), "k", {{"k", "mine"}}));
  EXPECT_EQ(plain.errors_size(), 0) << "a plain retry too";
  EXPECT_EQ(plain.commit_ts(), ts(120));
}

}  // namespace
}  // namespace rdb
