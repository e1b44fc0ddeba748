// RaftLog, Unstable, MemoryStorage and Progress.
#include "raft/raft_log.h"

#include <gtest/gtest.h>

#include "raft/progress.h"
#include "raft/raft_test_util.h"

namespace rdb::raft {
namespace {

using testing::make_entry;

std::vector<Entry> ents(std::initializer_list<std::pair<std::uint64_t, std::uint64_t>> index_terms) {
  std::vector<Entry> out;
  for (auto [i, t] : index_terms) {
    out.push_back(make_entry(i, t));
  }
  return out;
}

TEST(MemoryStorageTest, EntriesTermCompactAndSnapshot) {
  MemoryStorage s;
  ASSERT_TRUE(s.append(ents({{1, 1}, {2, 1}, {3, 2}, {4, 2}})).is_ok());
  EXPECT_EQ(*s.first_index(), 1u);
  EXPECT_EQ(*s.last_index(), 4u);
  EXPECT_EQ(*s.term(3), 2u);
  EXPECT_TRUE(is_unavailable(s.term(9).status()));
  auto e = s.entries(2, 4, kNoLimit);
  ASSERT_TRUE(e.is_ok());
  EXPECT_EQ(e->size(), 2u);
  // The size limit returns at least one entry.
  EXPECT_EQ(s.entries(1, 5, 1)->size(), 1u);
  ConfState cs;
  cs.add_voters(1);
  ASSERT_TRUE(s.create_snapshot(2, &cs, "data").is_ok());
  ASSERT_TRUE(s.compact(2).is_ok());
  EXPECT_EQ(*s.first_index(), 3u);
  EXPECT_TRUE(is_compacted(s.entries(2, 4, kNoLimit).status()));
  EXPECT_TRUE(is_compacted(s.term(1).status()));
  EXPECT_EQ(*s.term(2), 1u);  // the compacted boundary keeps its term
  EXPECT_TRUE(is_compacted(s.compact(2)));
  EXPECT_EQ(s.snapshot()->metadata().index(), 2u);
  EXPECT_FALSE(s.create_snapshot(1, nullptr, "").is_ok());
}

TEST(MemoryStorageTest, AppendTruncatesConflictsAndSkipsCompacted) {
  MemoryStorage s;
  ASSERT_TRUE(s.append(ents({{1, 1}, {2, 1}, {3, 1}})).is_ok());
  ASSERT_TRUE(s.append(ents({{2, 2}})).is_ok());
  EXPECT_EQ(*s.last_index(), 2u);
  EXPECT_EQ(*s.term(2), 2u);
  ASSERT_TRUE(s.compact(1).is_ok());
  ASSERT_TRUE(s.append(ents({{1, 1}, {2, 2}, {3, 2}})).is_ok());
  EXPECT_EQ(*s.last_index(), 3u);
  EXPECT_FALSE(s.append(ents({{9, 2}})).is_ok()) << "a gap must be refused";
}

TEST(RaftLogTest, MaybeAppendMatchesTruncatesAndCommits) {
  MemoryStorage s;
  ASSERT_TRUE(s.append(ents({{1, 1}, {2, 2}, {3, 3}})).is_ok());
  auto log = RaftLog::create(s, kNoLimit);
  ASSERT_TRUE(log.is_ok());
  // Mismatched previous entry: refused.
  EXPECT_FALSE(log->maybe_append(3, 2, 3, ents({{4, 4}})).has_value());
  // Matching: appended and committed up to min(leader commit, last new).
  auto last = log->maybe_append(3, 3, 10, ents({{4, 4}}));
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(*last, 4u);
  EXPECT_EQ(log->committed(), 4u);
  // Conflict at 4 replaces the uncommitted suffix... but 4 is committed now: that is a bug.
  EXPECT_THROW(log->maybe_append(3, 3, 4, ents({{4, 5}})), std::logic_error);
  // Duplicate entries change nothing.
  EXPECT_EQ(*log->maybe_append(2, 2, 4, ents({{3, 3}, {4, 4}})), 4u);
  EXPECT_EQ(log->last_index(), 4u);
}

TEST(RaftLogTest, FindConflictAndConflictByTerm) {
  MemoryStorage s;
  ASSERT_TRUE(s.append(ents({{1, 1}, {2, 1}, {3, 2}, {4, 2}, {5, 3}})).is_ok());
  auto log = RaftLog::create(s, kNoLimit);
  ASSERT_TRUE(log.is_ok());
  EXPECT_EQ(log->find_conflict(ents({{1, 1}, {2, 1}})), 0u);
  EXPECT_EQ(log->find_conflict(ents({{2, 1}, {3, 9}})), 3u);
  EXPECT_EQ(log->find_conflict(ents({{5, 3}, {6, 3}})), 6u);
  EXPECT_EQ(log->find_conflict_by_term(5, 2), 4u);  // skip the whole term-3 run
  EXPECT_EQ(log->find_conflict_by_term(5, 1), 2u);
  EXPECT_EQ(log->find_conflict_by_term(5, 3), 5u);
}

TEST(RaftLogTest, UpToDateAndCommitRules) {
  MemoryStorage s;
  ASSERT_TRUE(s.append(ents({{1, 1}, {2, 2}, {3, 2}})).is_ok());
  auto log = RaftLog::create(s, kNoLimit);
  ASSERT_TRUE(log.is_ok());
  EXPECT_TRUE(log->is_up_to_date(3, 2));
  EXPECT_TRUE(log->is_up_to_date(1, 3));   // higher last term wins even if shorter
  EXPECT_FALSE(log->is_up_to_date(2, 2));  // same term, shorter
  EXPECT_FALSE(log->is_up_to_date(9, 1));  // lower last term loses even if longer
  EXPECT_FALSE(log->maybe_commit(3, 1)) << "committed an entry whose term is not the given term";
  EXPECT_TRUE(log->maybe_commit(3, 2));
  EXPECT_EQ(log->committed(), 3u);
  EXPECT_THROW(log->commit_to(9), std::logic_error);
}

TEST(RaftLogTest, UnstableEntriesBecomeStableAndCommittedEntriesAreHandedOut) {
  MemoryStorage s;
  auto log = RaftLog::create(s, kNoLimit);
  ASSERT_TRUE(log.is_ok());
  log->append(ents({{1, 1}, {2, 1}, {3, 1}}));
  EXPECT_EQ(log->unstable_entries().size(), 3u);
  log->commit_to(2);
  auto next = log->next_committed_entries();
  ASSERT_EQ(next.size(), 2u);
  ASSERT_TRUE(s.append(log->unstable_entries()).is_ok());
  log->stable_to(3, 1);
  EXPECT_TRUE(log->unstable_entries().empty());
  log->applied_to(2);
  EXPECT_FALSE(log->has_next_committed_entries());
  // stable_to with a term that no longer matches is ignored (the entry was replaced).
  log->append(ents({{4, 2}}));
  log->stable_to(4, 1);
  EXPECT_EQ(log->unstable_entries().size(), 1u);
}

TEST(ProgressTest, StatesAndBackoff) {
  Progress p(2);
  p.next = 10;
  EXPECT_FALSE(p.is_paused());
  p.sent_entries(1, 10);
  EXPECT_TRUE(p.is_paused()) << "probe sends one append at a time";
  EXPECT_FALSE(p.maybe_decr_to(5, 3)) << "a rejection of something we did not send is stale";
  EXPECT_TRUE(p.maybe_decr_to(9, 3));
  EXPECT_EQ(p.next, 4u);
  EXPECT_TRUE(p.maybe_update(6));
  p.become_replicate();
  EXPECT_EQ(p.next, 7u);
  p.sent_entries(2, 8);
  p.sent_entries(1, 9);
  EXPECT_TRUE(p.is_paused()) << "the in-flight window of 2 is full";
  p.inflights.free_le(8);
  EXPECT_FALSE(p.is_paused());
  p.become_snapshot(20);
  EXPECT_TRUE(p.is_paused());
  p.become_probe();
  EXPECT_EQ(p.next, 21u);
}

}  // namespace
}  // namespace rdb::raft
