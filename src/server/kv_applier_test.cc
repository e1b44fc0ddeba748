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
