#include "server/kv_applier.h"

#include <gtest/gtest.h>

#include "storage/rocks_engine.h"
#include "support/temp_dir.h"

namespace rdb {
namespace {

using raft_serverpb::KvCommand;

KvCommand cas(const std::string& key, std::uint64_t expected, std::optional<std::string> value) {
  KvCommand c;
  c.set_type(KvCommand::CAS);
  c.add_keys(key);
  c.set_expected_version(expected);
  if (value) {
    c.add_values(*value);
  } else {
    c.set_cas_delete(true);
  }
  return c;
}

KvCommand put(const std::string& key, const std::string& value) {
  KvCommand c;
  c.set_type(KvCommand::RAW_PUT);
  c.add_keys(key);
  c.add_values(value);
  return c;
}

class KvApplierTest : public ::testing::Test {
 protected:
  testing::TempDir dir_;
  std::unique_ptr<RocksEngine> engine_ = std::move(RocksEngine::open(dir_.path())).value();
  KvApplier applier_{*engine_};
};

TEST_F(KvApplierTest, CasCommandsInOneBatchSeeEachOther) {
  WriteBatch wb;
  auto a = applier_.apply(cas("k", 0, "one"), wb);
  auto b = applier_.apply(cas("k", 1, "two"), wb);    // sees "one" from the same batch
  auto c = applier_.apply(cas("k", 1, "stale"), wb);  // conflicts with "two"
  auto d = applier_.apply(cas("k", 2, std::nullopt), wb);
  auto e = applier_.apply(cas("k", 0, "again"), wb);  // re-create: version continues
  ASSERT_TRUE(a.is_ok() && b.is_ok() && c.is_ok() && d.is_ok() && e.is_ok());
  EXPECT_TRUE(a->cas_succeeded());
  EXPECT_EQ(b->cas_version(), 2u);
  EXPECT_FALSE(c->cas_succeeded());
  EXPECT_EQ(c->cas_current_value(), "two");
  EXPECT_EQ(d->cas_version(), 3u);
  EXPECT_EQ(e->cas_version(), 4u);
  ASSERT_TRUE(engine_->write(wb, true).is_ok());
  applier_.batch_written();
  auto got = engine_->get("k");
  EXPECT_EQ(got->value, "again");
  EXPECT_EQ(got->version, 4u);
}

TEST_F(KvApplierTest, SameCommandsGiveTheSameAnswerAsTheLocalEngine) {
  // The replicated state machine and the local engine share one CAS rule.
  testing::TempDir other;
  auto local = std::move(RocksEngine::open(other.path())).value();
  std::vector<KvCommand> cmds = {cas("x", 0, "a"), cas("x", 0, "b"), cas("x", 1, std::nullopt),
                                 cas("x", 1, "c"), cas("x", 0, "d"), cas("y", 0, std::nullopt)};
  for (const auto& cmd : cmds) {
    WriteBatch wb;
    auto replicated = applier_.apply(cmd, wb);
    ASSERT_TRUE(engine_->write(wb, true).is_ok());
    applier_.batch_written();
    std::optional<std::string> value;
    if (!cmd.cas_delete()) {
      value = cmd.values(0);
    }
    auto direct = local->compare_and_swap(cmd.keys(0), cmd.expected_version(), value);
    ASSERT_TRUE(replicated.is_ok() && direct.is_ok());
    EXPECT_EQ(replicated->cas_succeeded(), direct->succeeded);
    EXPECT_EQ(replicated->cas_version(), direct->version);
    EXPECT_EQ(replicated->cas_current_value(), direct->current_value);
  }
}

TEST_F(KvApplierTest, RawCommandsAndRefusals) {
  WriteBatch wb;
  ASSERT_TRUE(applier_.apply(put("a", "1"), wb).is_ok());
  KvCommand batch;
  batch.set_type(KvCommand::RAW_BATCH_PUT);
  batch.add_keys("b");
  batch.add_values("2");
  batch.add_keys("c");
  batch.add_values("3");
  ASSERT_TRUE(applier_.apply(batch, wb).is_ok());
  KvCommand bad = put("", "v");
  auto refused = applier_.apply(bad, wb);
  ASSERT_TRUE(refused.is_ok());
  EXPECT_NE(refused->error().find("empty"), std::string::npos);
  std::size_t before = wb.count();
  KvCommand mismatched;
  mismatched.set_type(KvCommand::RAW_BATCH_PUT);
  mismatched.add_keys("z");
  EXPECT_FALSE(applier_.apply(mismatched, wb)->error().empty());
  EXPECT_EQ(wb.count(), before) << "a refused command must write nothing";
  ASSERT_TRUE(engine_->write(wb, true).is_ok());
  EXPECT_EQ(engine_->raw_get("c")->value(), "3");
  WriteBatch del;
  KvCommand range;
  range.set_type(KvCommand::RAW_DELETE_RANGE);
  range.add_keys("a");
  range.add_keys("c");
  ASSERT_TRUE(applier_.apply(range, del)->error().empty());
  ASSERT_TRUE(engine_->write(del, true).is_ok());
  EXPECT_FALSE(engine_->raw_get("a")->has_value());
  EXPECT_FALSE(engine_->raw_get("b")->has_value());
  EXPECT_TRUE(engine_->raw_get("c")->has_value());
}

}  // namespace
}  // namespace rdb

#include "server/region_apply.h"

namespace rdb {
namespace {

// Each committed entry's outcome is explicit: a command's result, a region error that
// kept it from applying, or a membership change the store must carry out.
TEST_F(KvApplierTest, EntriesApplyWithExplicitOutcomes) {
  metapb::Region region;
  region.set_id(3);
  region.mutable_region_epoch()->set_conf_ver(1);
  region.mutable_region_epoch()->set_version(1);
  auto* p = region.add_peers();
  p->set_id(30);
  p->set_store_id(1);
  auto entry = [](std::uint64_t index, const std::string& data, raftpb::EntryType type = raftpb::ENTRY_NORMAL) {
    raft::Entry e;
    e.set_index(index);
    e.set_term(2);
    e.set_type(type);
    e.set_data(data);
    return e;
  };
  KvCommand ok = put("a", "1");
  ok.set_epoch_version(1);
  KvCommand stale = put("b", "1");
  stale.set_epoch_version(0);  // proposed before a split that never happened here: refused
  raft::ConfChange cc;
  cc.set_type(raftpb::ADD_LEARNER_NODE);
  cc.set_node_id(31);
  metapb::Peer learner;
  learner.set_id(31);
  learner.set_store_id(2);
  cc.set_context(learner.SerializeAsString());
  WriteBatch wb;
  auto applied = apply_entries(applier_, region,
                               {entry(6, ""), entry(7, ok.SerializeAsString()), entry(8, stale.SerializeAsString()),
                                entry(9, cc.SerializeAsString(), raftpb::ENTRY_CONF_CHANGE), entry(10, "garbage\xff")},
                               wb);
  ASSERT_TRUE(applied.is_ok());
  ASSERT_EQ(applied->size(), 5u);
  EXPECT_TRUE(std::holds_alternative<std::monostate>((*applied)[0].outcome));
  const auto& put_result = std::get<ProposeResult>((*applied)[1].outcome);
  EXPECT_FALSE(put_result.region_error.has_value());
  EXPECT_TRUE(put_result.result.error().empty());
  const auto& refused = std::get<ProposeResult>((*applied)[2].outcome);
  ASSERT_TRUE(refused.region_error.has_value());
  EXPECT_TRUE(refused.region_error->has_epoch_not_match());
  const auto& change = std::get<ChangePeerResult>((*applied)[3].outcome);
  ASSERT_EQ(change.cc.changes_size(), 1);
  EXPECT_EQ(change.cc.changes(0).node_id(), 31u);
  EXPECT_TRUE(change.error.empty()) << change.error;
  EXPECT_EQ(region.peers_size(), 2);
  EXPECT_TRUE(region.peers(1).is_learner());
  EXPECT_EQ(region.region_epoch().conf_ver(), 2u);
  EXPECT_EQ(region.region_epoch().version(), 1u) << "membership changes bump conf_ver only";
  EXPECT_FALSE(std::get<ProposeResult>((*applied)[4].outcome).result.error().empty()) << "garbage is an error";
  ASSERT_TRUE(engine_->write(wb, true).is_ok());
  EXPECT_EQ(engine_->raw_get("a")->value(), "1");
  EXPECT_FALSE(engine_->raw_get("b")->has_value());
}

}  // namespace
}  // namespace rdb

namespace rdb {
namespace {

// A write is bounded to its region: keys outside it, or a delete-range reaching past
// its end, are refused with KeyNotInRegion — at apply time too, not only when proposed.
TEST_F(KvApplierTest, WritesOutsideTheRegionNeverApply) {
  metapb::Region region;
  region.set_id(4);
  region.set_start_key("b");
  region.set_end_key("m");
  region.mutable_region_epoch()->set_version(1);
  KvCommand inside = put("c", "1");
  KvCommand outside = put("z", "1");
  KvCommand range_past_end;
  range_past_end.set_type(KvCommand::RAW_DELETE_RANGE);
  range_past_end.add_keys("c");
  range_past_end.add_keys("n");
  KvCommand range_to_end = range_past_end;
  range_to_end.set_keys(1, "m");
  EXPECT_FALSE(check_command_range(inside, region).has_value());
  EXPECT_FALSE(check_command_range(range_to_end, region).has_value()) << "the end is exclusive";
  auto err = check_command_range(outside, region);
  ASSERT_TRUE(err.has_value());
  EXPECT_TRUE(err->has_key_not_in_region());
  EXPECT_EQ(err->key_not_in_region().end_key(), "m");
  EXPECT_TRUE(check_command_range(range_past_end, region).has_value());

  std::vector<raft::Entry> entries;
  for (KvCommand* c : {&inside, &outside, &range_past_end}) {
    c->set_epoch_version(1);
    raft::Entry e;
    e.set_index(entries.size() + 6);
    e.set_term(1);
    e.set_data(c->SerializeAsString());
    entries.push_back(e);
  }
  WriteBatch wb;
  auto applied = apply_entries(applier_, region, entries, wb);
  ASSERT_TRUE(applied.is_ok());
  EXPECT_FALSE(std::get<ProposeResult>((*applied)[0].outcome).region_error.has_value());
  EXPECT_TRUE(std::get<ProposeResult>((*applied)[1].outcome).region_error->has_key_not_in_region());
  EXPECT_TRUE(std::get<ProposeResult>((*applied)[2].outcome).region_error->has_key_not_in_region());
  ASSERT_TRUE(engine_->write(wb, true).is_ok());
  EXPECT_TRUE(engine_->raw_get("c")->has_value());
  EXPECT_FALSE(engine_->raw_get("z")->has_value());
}

}  // namespace
}  // namespace rdb

namespace rdb {
namespace {

metapb::Region merge_region_of(std::uint64_t id, const std::string& start, const std::string& end,
                               std::uint64_t version, std::vector<std::uint64_t> stores = {1, 2, 3}) {
  metapb::Region r;
  r.set_id(id);
  r.set_start_key(start);
  r.set_end_key(end);
  r.mutable_region_epoch()->set_conf_ver(3);
  r.mutable_region_epoch()->set_version(version);
  for (auto s : stores) {
    auto* p = r.add_peers();
    p->set_id(id * 10 + s);
    p->set_store_id(s);
  }
  return r;
}

raft::Entry merge_entry(std::uint64_t index, KvCommand::Type type, const metapb::Region& under,
                        const metapb::Region* other = nullptr, std::uint64_t prepare_index = 0) {
  KvCommand c;
  c.set_type(type);
  c.set_region_id(under.id());
  c.set_epoch_version(under.region_epoch().version());
  c.set_epoch_conf_ver(under.region_epoch().conf_ver());
  if (other != nullptr) {
    *c.mutable_merge()->mutable_region() = *other;
    c.mutable_merge()->set_prepare_index(prepare_index);
  }
  raft::Entry e;
  e.set_index(index);
  e.set_term(1);
  e.set_data(c.SerializeAsString());
  return e;
}

TEST(CheckMergeTest, OnlyAdjacentVoterRegionsOnTheSameStoresMerge) {
  auto left = merge_region_of(1, "", "m", 2);
  auto right = merge_region_of(2, "m", "", 2);
  EXPECT_FALSE(check_merge(left, right).has_value());
  EXPECT_FALSE(check_merge(right, left).has_value());
  EXPECT_TRUE(check_merge(left, left).has_value()) << "a region with itself";
  auto far = merge_region_of(3, "x", "", 2);
  EXPECT_NE(check_merge(left, far).value_or("").find("not adjacent"), std::string::npos);
  auto elsewhere = merge_region_of(2, "m", "", 2, {1, 2, 4});
  EXPECT_NE(check_merge(left, elsewhere).value_or("").find("same stores"), std::string::npos);
  auto with_learner = right;
  with_learner.mutable_peers(2)->set_is_learner(true);
  EXPECT_NE(check_merge(left, with_learner).value_or("").find("learner"), std::string::npos);
}

TEST_F(KvApplierTest, PrepareFreezesTheSourceAndCommitTakesItsRange) {
  auto source = merge_region_of(2, "m", "", 4);
  auto target = merge_region_of(1, "", "m", 6);
  WriteBatch wb;
  auto prepared = apply_entries(applier_, source, {merge_entry(7, KvCommand::PREPARE_MERGE, source, &target)}, wb);
  ASSERT_TRUE(prepared.is_ok());
  const auto& p = std::get<PrepareMergeResult>((*prepared)[0].outcome);
  EXPECT_EQ(p.state.prepare_index(), 7u);
  EXPECT_EQ(p.state.target().id(), 1u);
  EXPECT_EQ(source.region_epoch().version(), 5u);
  EXPECT_EQ(source.region_epoch().conf_ver(), 4u) << "prepare bumps both, so no old command applies after it";

  // The target waits while the source is not prepared on this store, then merges.
  bool ready = false;
  MergeSourceReady is_ready = [&](const raft_serverpb::MergeRequest& m, WriteBatch&) -> Result<bool> {
    EXPECT_EQ(m.prepare_index(), 7u);
    return ready;
  };
  KvCommand after = put("a", "1");
  after.set_epoch_version(7);
  raft::Entry after_entry;
  after_entry.set_index(11);
  after_entry.set_data(after.SerializeAsString());
  std::vector<raft::Entry> entries{merge_entry(10, KvCommand::COMMIT_MERGE, target, &source, 7), after_entry};
  auto blocked = apply_entries(applier_, target, entries, wb, is_ready);
  ASSERT_TRUE(blocked.is_ok());
  EXPECT_TRUE(blocked->empty()) << "nothing applies before the source is ready";
  EXPECT_EQ(target.end_key(), "m");
  ready = true;
  auto merged = apply_entries(applier_, target, entries, wb, is_ready);
  ASSERT_TRUE(merged.is_ok());
  ASSERT_EQ(merged->size(), 2u);
  EXPECT_EQ(std::get<CommitMergeResult>((*merged)[0].outcome).source.id(), 2u);
  EXPECT_EQ(target.start_key(), "");
  EXPECT_EQ(target.end_key(), "") << "the target spans both ranges";
  EXPECT_EQ(target.region_epoch().version(), 7u) << "max(6, 5) + 1";
  EXPECT_FALSE(std::get<ProposeResult>((*merged)[1].outcome).region_error.has_value());
}

TEST_F(KvApplierTest, ACommitUnderAnOldTargetEpochNeverApplies) {
  auto source = merge_region_of(2, "m", "", 5);
  auto target = merge_region_of(1, "", "m", 6);
  auto old_target = target;
  old_target.mutable_region_epoch()->set_version(5);  // the target split since PREPARE_MERGE saw it
  WriteBatch wb;
  auto applied = apply_entries(applier_, target, {merge_entry(9, KvCommand::COMMIT_MERGE, old_target, &source, 7)}, wb,
                               [](const auto&, WriteBatch&) -> Result<bool> { return true; });
  ASSERT_TRUE(applied.is_ok());
  ASSERT_EQ(applied->size(), 1u);
  EXPECT_TRUE(std::get<ProposeResult>((*applied)[0].outcome).region_error->has_epoch_not_match());
  EXPECT_EQ(target.end_key(), "m");
  EXPECT_EQ(target.region_epoch().version(), 6u);
}

TEST_F(KvApplierTest, RollbackReopensTheSourceUnderANewVersion) {
  auto source = merge_region_of(2, "m", "", 5);
  WriteBatch wb;
  auto applied = apply_entries(applier_, source, {merge_entry(9, KvCommand::ROLLBACK_MERGE, source)}, wb);
  ASSERT_TRUE(applied.is_ok());
  EXPECT_TRUE(std::holds_alternative<RollbackMergeResult>((*applied)[0].outcome));
  EXPECT_EQ(source.region_epoch().version(), 6u) << "clients holding the merging epoch refresh";
}

}  // namespace
}  // namespace rdb
