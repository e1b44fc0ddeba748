// The client's commit against a scripted TxnSender: the outcomes a store cannot show on
// demand — a one-phase commit whose answer is lost, settled by the rollback that follows.
#include <gtest/gtest.h>

#include "client/txn_sender.h"

namespace rdb {
namespace {

// Answers as scripted; counts what was sent.
class ScriptedSender final : public TxnSender {
 public:
  Status prewrite_fails = Status::unavailable("connection broke after the request was written");
  std::optional<std::uint64_t> rollback_finds_commit;  // answer already_committed at this ts
  Status rollback_fails = Status::ok();
  int prewrites = 0, rollbacks = 0, commits = 0;
  bool last_try_one_pc = false;
  std::vector<std::pair<std::string, txnpb::MutationOp>> last_mutations;
  std::vector<std::string> last_rollback_keys;

  Result<std::uint64_t> timestamp() override { return next_ts_++; }
  std::chrono::milliseconds timeout() const override { return std::chrono::seconds(1); }
  Result<kvrpc::KvGetResponse> kv_get(const kvrpc::KvGetRequest&) override { return kvrpc::KvGetResponse(); }
  Result<kvrpc::KvScanResponse> kv_scan(const kvrpc::KvScanRequest&) override { return kvrpc::KvScanResponse(); }
  Result<kvrpc::KvScanChangesResponse> kv_scan_changes(const kvrpc::KvScanChangesRequest&) override {
    return kvrpc::KvScanChangesResponse();
  }
  Result<kvrpc::KvCheckTxnStatusResponse> kv_check_txn_status(const kvrpc::KvCheckTxnStatusRequest&) override {
    return kvrpc::KvCheckTxnStatusResponse();
  }
  Result<kvrpc::KvTxnHeartBeatResponse> kv_heart_beat(const kvrpc::KvTxnHeartBeatRequest&) override {
    return kvrpc::KvTxnHeartBeatResponse();
  }
  Status kv_batch_get(const kvrpc::KvBatchGetRequest&,
                      const std::function<Status(kvrpc::KvBatchGetResponse&)>&) override {
    return Status::ok();
  }
  Status kv_prewrite(const kvrpc::KvPrewriteRequest& req,
                     const std::function<Status(kvrpc::KvPrewriteResponse&)>&) override {
    ++prewrites;
    last_try_one_pc = req.try_one_pc();
    last_mutations.clear();
    for (const auto& m : req.mutations()) {
      last_mutations.emplace_back(m.key(), m.op());
    }
    return prewrite_fails;
  }
  Status kv_commit(const kvrpc::KvCommitRequest&, const std::function<Status(kvrpc::KvCommitResponse&)>&) override {
    ++commits;
    return Status::ok();
  }
  Status kv_batch_rollback(const kvrpc::KvBatchRollbackRequest& req,
                           const std::function<Status(kvrpc::KvBatchRollbackResponse&)>& on_part) override {
    ++rollbacks;
    last_rollback_keys.assign(req.keys().begin(), req.keys().end());
    RDB_RETURN_IF_ERROR(rollback_fails);
    kvrpc::KvBatchRollbackResponse resp;
    if (rollback_finds_commit) {
      resp.mutable_error()->set_already_committed(true);
      resp.mutable_error()->set_commit_ts(*rollback_finds_commit);
    }
    return on_part(resp);
  }
  Status kv_resolve_lock(const kvrpc::KvResolveLockRequest&,
                         const std::function<Status(kvrpc::KvResolveLockResponse&)>&) override {
    return Status::ok();
  }

 private:
  std::uint64_t next_ts_ = 1000;
};

Status commit_one(ScriptedSender& sender, bool one_pc, std::uint64_t* commit_ts = nullptr) {
  auto txn = make_transaction(sender, 100, one_pc);
  EXPECT_TRUE(txn->put("k", "v").is_ok());
  Status s = txn->commit();
  if (commit_ts != nullptr) {
    *commit_ts = txn->commit_ts();
  }
  return s;
}

TEST(TransactionCommitTest, ALostOnePhaseAnswerThatCommittedIsReportedAsCommitted) {
  ScriptedSender sender;
  sender.rollback_finds_commit = 4242;
  std::uint64_t ts = 0;
  Status s = commit_one(sender, true, &ts);
  EXPECT_TRUE(s.is_ok()) << s.to_string();
  EXPECT_EQ(ts, 4242U) << "the rollback's refusal names when it committed";
  EXPECT_TRUE(sender.last_try_one_pc);
  EXPECT_EQ(sender.commits, 0);
}

TEST(TransactionCommitTest, ALostOnePhaseAnswerThatARollbackSettlesIsTheOriginalFailure) {
  ScriptedSender sender;
  Status s = commit_one(sender, true);
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.to_string();
  EXPECT_EQ(sender.rollbacks, 1);
}

TEST(TransactionCommitTest, AOnePhaseCommitThatRanOutOfTimeIsSettledNotCalledAborted) {
  // Its first attempt may have committed before a later lock kept the retries out: calling
  // it aborted then would be a lie (the chaos list-append found exactly that, as G1a).
  ScriptedSender sender;
  sender.prewrite_fails = Status::deadline_exceeded("a key stayed locked");
  sender.rollback_finds_commit = 777;
  std::uint64_t ts = 0;
  EXPECT_TRUE(commit_one(sender, true, &ts).is_ok());
  EXPECT_EQ(ts, 777U);
  ScriptedSender settled;
  settled.prewrite_fails = Status::deadline_exceeded("a key stayed locked");
  EXPECT_EQ(commit_one(settled, true).code(), StatusCode::kAborted) << "rolled back: a conflict, safe to retry";
  EXPECT_EQ(settled.rollbacks, 1);
}

TEST(TransactionCommitTest, ALostOnePhaseAnswerThatNothingSettlesIsUndetermined) {
  ScriptedSender sender;
  sender.rollback_fails = Status::unavailable("the store is gone too");
  Status s = commit_one(sender, true);
  EXPECT_EQ(s.code(), StatusCode::kUndetermined) << s.to_string();
}

TEST(TransactionCommitTest, WithoutOnePhaseAFailedPrewriteIsAFailureAndNeverUndetermined) {
  ScriptedSender sender;
  sender.rollback_fails = Status::unavailable("the store is gone too");
  Status s = commit_one(sender, false);
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.to_string();
  EXPECT_FALSE(sender.last_try_one_pc);
}

TEST(TransactionLockTest, LockedKeysArePrewrittenAsLocksInKeyOrderAndRolledBackWithTheWrites) {
  ScriptedSender sender;
  auto txn = make_transaction(sender, 100, false);
  ASSERT_TRUE(txn->lock("c").is_ok());
  ASSERT_TRUE(txn->put("b", "v").is_ok());
  ASSERT_TRUE(txn->lock("a").is_ok());
  ASSERT_TRUE(txn->lock("b").is_ok()) << "written already: nothing more to guard";
  EXPECT_FALSE(txn->commit().is_ok());  // the scripted prewrite fails
  using Op = std::pair<std::string, txnpb::MutationOp>;
  EXPECT_EQ(sender.last_mutations, (std::vector<Op>{{"a", txnpb::LOCK}, {"b", txnpb::PUT}, {"c", txnpb::LOCK}}));
  EXPECT_EQ(sender.last_rollback_keys, (std::vector<std::string>{"b", "a", "c"}));
}

TEST(TransactionLockTest, ATransactionThatOnlyLocksCommitsNothing) {
  ScriptedSender sender;
  auto txn = make_transaction(sender, 100, true);
  ASSERT_TRUE(txn->lock("a").is_ok());
  EXPECT_TRUE(txn->commit().is_ok());
  EXPECT_EQ(sender.prewrites, 0);
  EXPECT_EQ(txn->commit_ts(), 100U);
  EXPECT_EQ(make_transaction(sender, 100, true)->lock("").code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace rdb
