// The etcd view of stored records, and how a transaction's own writes get their
// revision once it commits.
#include "etcd/kv.h"

#include <gtest/gtest.h>

namespace rdb::etcd {
namespace {

Current current(const std::string& key, std::int64_t create, std::int64_t version, std::int64_t mod) {
  Current c;
  c.key = key;
  c.record.set_value("v-" + key);
  c.record.set_create_revision(create);
  c.record.set_version(version);
  c.record.set_lease(9);
  c.mod_revision = mod;
  return c;
}

TEST(EtcdKvViewTest, AKeysCreateRevisionIsItsFirstVersionsCommit) {
  auto kv = to_key_value(current("a", 0, 1, 500));
  EXPECT_EQ(kv.create_revision(), 500) << "0 in the record: created by this version";
  EXPECT_EQ(kv.mod_revision(), 500);
  EXPECT_EQ(kv.version(), 1);
  EXPECT_EQ(kv.lease(), 9);
  EXPECT_EQ(kv.value(), "v-a");
  auto updated = to_key_value(current("a", 500, 3, 700), /*keys_only=*/true);
  EXPECT_EQ(updated.create_revision(), 500);
  EXPECT_EQ(updated.mod_revision(), 700);
  EXPECT_TRUE(updated.value().empty());
}

TEST(EtcdKvViewTest, OwnWritesTakeTheCommitRevisionEverywhereInATxnAnswer) {
  etcdserverpb::TxnResponse r;
  *r.add_responses()->mutable_response_range()->add_kvs() = to_key_value(current("own", 0, 1, 0));
  *r.add_responses()->mutable_response_range()->add_kvs() = to_key_value(current("old", 100, 2, 200));
  auto* nested = r.add_responses()->mutable_response_txn();
  *nested->add_responses()->mutable_response_put()->mutable_prev_kv() = to_key_value(current("upd", 100, 2, 0));
  settle_revisions(&r, 999);
  EXPECT_EQ(r.header().revision(), 999);
  const auto& own = r.responses(0).response_range().kvs(0);
  EXPECT_EQ(own.create_revision(), 999);
  EXPECT_EQ(own.mod_revision(), 999);
  const auto& old = r.responses(1).response_range().kvs(0);
  EXPECT_EQ(old.create_revision(), 100);
  EXPECT_EQ(old.mod_revision(), 200);
  const auto& upd = r.responses(2).response_txn().responses(0).response_put().prev_kv();
  EXPECT_EQ(upd.create_revision(), 100) << "updated in the transaction: created earlier";
  EXPECT_EQ(upd.mod_revision(), 999);
  EXPECT_EQ(r.responses(2).response_txn().header().revision(), 999);
}

TEST(EtcdKvViewTest, RdbFailuresKeepTheirMeaningForEtcdClients) {
  EXPECT_EQ(to_grpc(Status::unavailable("x")).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(to_grpc(Status::undetermined("x")).error_code(), grpc::StatusCode::UNKNOWN);
  EXPECT_NE(to_grpc(Status::undetermined("x")).error_message().find("unknown"), std::string::npos);
  EXPECT_EQ(to_grpc(Status::aborted("x")).error_code(), grpc::StatusCode::ABORTED);
  EXPECT_EQ(to_grpc(Status::invalid_argument("x")).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(to_grpc(Status::ok()).ok());
}

}  // namespace
}  // namespace rdb::etcd
