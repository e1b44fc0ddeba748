// The client's commit against a scripted TxnSender: the outcomes a store cannot show on
// demand — a one-phase commit whose answer is lost, settled by the rollback that follows.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <condition_variable>
#include <deque>
#include <map>

#include "client/txn_sender.h"
#include "common/limits.h"

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
  void post(std::function<void()> task) override { task(); }
  Result<kvrpc::KvGetResponse> kv_get(const kvrpc::KvGetRequest&) override { return kvrpc::KvGetResponse(); }
  Result<kvrpc::KvScanResponse> kv_scan(const kvrpc::KvScanRequest&) override { return kvrpc::KvScanResponse(); }
  Result<kvrpc::KvScanChangesResponse> kv_scan_changes(const kvrpc::KvScanChangesRequest&) override {
    return kvrpc::KvScanChangesResponse();
  }
  Result<kvrpc::KvCheckTxnStatusResponse> kv_check_txn_status(const kvrpc::KvCheckTxnStatusRequest&) override {
    return kvrpc::KvCheckTxnStatusResponse();
  }
  Result<kvrpc::KvTxnHeartBeatResponse> kv_heart_beat(const kvrpc::KvTxnHeartBeatRequest& req) override {
    std::lock_guard lock(beats_mu);
    beats.push_back(req);
    beats_cv.notify_all();
    return kvrpc::KvTxnHeartBeatResponse();
  }
  // Heart-beats seen; a prewrite may wait for some (a slow prewrite, measured in beats).
  std::mutex beats_mu;
  std::condition_variable beats_cv;
  std::vector<kvrpc::KvTxnHeartBeatRequest> beats;
  std::size_t prewrite_waits_for_beats = 0;
  Status kv_batch_get(const kvrpc::KvBatchGetRequest&,
                      const std::function<Status(kvrpc::KvBatchGetResponse&)>&) override {
    return Status::ok();
  }
  Status kv_prewrite(const kvrpc::KvPrewriteRequest& req,
                     const std::function<Status(kvrpc::KvPrewriteResponse&)>&) override {
    ++prewrites;
    if (prewrite_waits_for_beats > 0) {
      std::unique_lock lock(beats_mu);
      beats_cv.wait_for(lock, std::chrono::seconds(30), [&] { return beats.size() >= prewrite_waits_for_beats; });
    }
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
  // Change feeds: registrations answered in order; polls from each feed's queue.
  std::deque<kvrpc::KvChangeFeedRegisterResponse> registers;
  std::map<std::uint64_t, std::deque<kvrpc::KvChangeFeedPollResponse>> polls;
  std::vector<kvrpc::KvChangeFeedRegisterRequest> register_requests;
  std::vector<kvrpc::KvChangeFeedPollRequest> poll_requests;
  std::vector<std::uint64_t> canceled;
  Result<kvrpc::KvChangeFeedRegisterResponse> kv_change_feed_register(
      const kvrpc::KvChangeFeedRegisterRequest& req) override {
    register_requests.push_back(req);
    if (registers.empty()) {
      return Status::unavailable("no registration scripted");
    }
    auto r = registers.front();
    registers.pop_front();
    return r;
  }
  Result<kvrpc::KvChangeFeedPollResponse> kv_change_feed_poll(const kvrpc::KvChangeFeedPollRequest& req,
                                                              const std::string&) override {
    poll_requests.push_back(req);
    auto& q = polls[req.feed_id()];
    if (q.empty()) {
      return Status::unavailable("no poll scripted");
    }
    auto r = q.front();
    q.pop_front();
    return r;
  }
  void kv_change_feed_cancel(const kvrpc::KvChangeFeedCancelRequest& req) override {
    canceled.push_back(req.feed_id());
  }
  void set_next_ts(std::uint64_t ts) { next_ts_ = ts; }

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
  // Above the present the client fetched (1000): acknowledged once PD's timestamps pass it.
  sender.rollback_finds_commit = 1042;
  std::uint64_t ts = 0;
  Status s = commit_one(sender, true, &ts);
  EXPECT_TRUE(s.is_ok()) << s.to_string();
  EXPECT_EQ(ts, 1042U) << "the rollback's refusal names when it committed";
  auto after = sender.timestamp();
  ASSERT_TRUE(after.is_ok());
  EXPECT_GT(*after, 1042U) << "acknowledged before PD's timestamps passed the commit";
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

// A prewrite of more keys than one request carries may outlast the lock's TTL: the primary
// is heart-beaten meanwhile, each beat asking for the TTL counted from the prewrite's start.
TEST(TransactionCommitTest, ALargePrewriteKeepsItsPrimaryAlive) {
  ScriptedSender sender;
  sender.prewrite_fails = Status::ok();
  sender.prewrite_waits_for_beats = 2;
  auto txn = make_transaction(sender, 100, false);
  for (std::size_t i = 0; i <= kMaxBatchKeys; ++i) {
    ASSERT_TRUE(txn->put(fmt::format("k{:06}", i), "v").is_ok());
  }
  ASSERT_TRUE(txn->commit().is_ok());
  std::lock_guard lock(sender.beats_mu);
  ASSERT_GE(sender.beats.size(), 2u) << "the prewrite waited for beats that never came";
  EXPECT_EQ(sender.beats[0].primary_lock(), "k000000");
  EXPECT_EQ(sender.beats[0].start_version(), 100u);
  EXPECT_GT(sender.beats[1].advise_lock_ttl(), sender.beats[0].advise_lock_ttl()) << "counted from the start";
  const std::size_t after_commit = sender.beats.size();
  EXPECT_LE(after_commit, 3u) << "beats stop once the prewrite is done";
}

// A small transaction (one request) starts no keep-alive.
TEST(TransactionCommitTest, ASmallPrewriteSendsNoHeartBeat) {
  ScriptedSender sender;
  sender.prewrite_fails = Status::ok();
  auto txn = make_transaction(sender, 100, false);
  ASSERT_TRUE(txn->put("k", "v").is_ok());
  ASSERT_TRUE(txn->commit().is_ok());
  std::lock_guard lock(sender.beats_mu);
  EXPECT_TRUE(sender.beats.empty());
}

kvrpc::KvChangeFeedRegisterResponse registered(std::uint64_t id, std::uint64_t max_ts, const std::string& end) {
  kvrpc::KvChangeFeedRegisterResponse r;
  r.set_feed_id(id);
  r.set_max_ts(max_ts);
  r.set_end_key(end);
  return r;
}

void add_change(kvrpc::KvChangeFeedPollResponse& r, const std::string& key, std::uint64_t ts) {
  auto* c = r.add_changes();
  c->set_key(key);
  c->set_commit_ts(ts);
  c->set_value("v" + std::to_string(ts));
}

TEST(ChangeFeedClientTest, OpeningRegistersEveryRegionsPartAndTheFloorIsAboveEveryStoresMaxTs) {
  ScriptedSender sender;
  sender.registers = {registered(7, 900, "m"), registered(8, 1003, "")};
  {
    auto feed = open_change_feed(sender, "a", "", false);
    ASSERT_TRUE(feed.is_ok()) << feed.status().to_string();
    ASSERT_EQ(sender.register_requests.size(), 2u);
    EXPECT_EQ(sender.register_requests[0].start_key(), "a");
    EXPECT_EQ(sender.register_requests[1].start_key(), "m");
    EXPECT_GE((*feed)->floor(), 1003u);  // PD's timestamps caught up with the store that ran ahead
  }
  EXPECT_EQ(sender.canceled, (std::vector<std::uint64_t>{7, 8}));  // destroyed: both told
}

TEST(ChangeFeedClientTest, AWindowMergesThePartsInTimestampOrderUpToTheLowestResolvedTimestamp) {
  ScriptedSender sender;
  sender.registers = {registered(1, 10, "m"), registered(2, 10, "")};
  auto feed = open_change_feed(sender, "a", "", false);
  ASSERT_TRUE(feed.is_ok());
  std::uint64_t after = (*feed)->floor();
  sender.set_next_ts(after + 100);
  kvrpc::KvChangeFeedPollResponse left;
  add_change(left, "c", after + 30);
  add_change(left, "b", after + 80);  // above the right part's cut: comes again next time
  left.set_resolved_ts(after + 100);
  kvrpc::KvChangeFeedPollResponse right;
  add_change(right, "n", after + 20);
  add_change(right, "p", after + 30);
  right.set_resolved_ts(after + 50);  // cut short by its size bound
  sender.polls[1].push_back(left);
  sender.polls[2].push_back(right);
  std::uint64_t resolved = 0;
  auto changes = (*feed)->next(after, &resolved);
  ASSERT_TRUE(changes.is_ok()) << changes.status().to_string();
  EXPECT_EQ(resolved, after + 50);
  std::vector<std::pair<std::string, std::uint64_t>> got;
  for (const auto& c : *changes) {
    got.emplace_back(c.key, c.commit_ts);
  }
  EXPECT_EQ(got, (std::vector<std::pair<std::string, std::uint64_t>>{
                     {"n", after + 20}, {"c", after + 30}, {"p", after + 30}}));
  ASSERT_EQ(sender.poll_requests.size(), 2u);
  EXPECT_EQ(sender.poll_requests[0].after(), after);
  EXPECT_EQ(sender.poll_requests[0].version(), after + 100);
  // Below the floor: refused (those commits may predate the feed).
  EXPECT_EQ((*feed)->next((*feed)->floor() - 1, &resolved).status().code(), StatusCode::kInvalidArgument);
}

TEST(ChangeFeedClientTest, ALostFeedIsUnavailableSoTheReaderOpensAnother) {
  ScriptedSender sender;
  sender.registers = {registered(3, 10, "")};
  auto feed = open_change_feed(sender, "", "", false);
  ASSERT_TRUE(feed.is_ok());
  kvrpc::KvChangeFeedPollResponse lost;
  lost.set_lost("region 2 installed a snapshot on this store");
  sender.polls[3].push_back(lost);
  std::uint64_t resolved = 0;
  auto changes = (*feed)->next((*feed)->floor(), &resolved);
  EXPECT_EQ(changes.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(changes.status().message().find("change feed lost: region 2 installed a snapshot"), std::string::npos);
}

TEST(ChangeFeedClientTest, AnAnswerOutsideTheWindowIsRefusedAndOldChangesNeverComeTwice) {
  ScriptedSender sender;
  sender.registers = {registered(5, 10, "")};
  auto feed = open_change_feed(sender, "", "", false);
  ASSERT_TRUE(feed.is_ok());
  const std::uint64_t after = (*feed)->floor();
  sender.set_next_ts(after + 100);
  kvrpc::KvChangeFeedPollResponse backwards;
  backwards.set_resolved_ts(after - 1);
  sender.polls[5].push_back(backwards);
  std::uint64_t resolved = 0;
  EXPECT_EQ((*feed)->next(after, &resolved).status().code(), StatusCode::kInternal);
  sender.set_next_ts(after + 100);
  kvrpc::KvChangeFeedPollResponse stale;
  add_change(stale, "old", after);  // at `after`: the reader has it
  add_change(stale, "new", after + 5);
  stale.set_resolved_ts(after + 100);
  sender.polls[5].push_back(stale);
  auto changes = (*feed)->next(after, &resolved);
  ASSERT_TRUE(changes.is_ok()) << changes.status().to_string();
  ASSERT_EQ(changes->size(), 1u);
  EXPECT_EQ((*changes)[0].key, "new");
}

TEST(ChangeFeedClientTest, ARegistrationThatFailsCancelsThePartsAlreadyRegistered) {
  ScriptedSender sender;
  sender.registers = {registered(4, 10, "m")};  // the second region's registration fails
  auto feed = open_change_feed(sender, "a", "z", false);
  EXPECT_EQ(feed.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(sender.canceled, (std::vector<std::uint64_t>{4}));
}

}  // namespace
}  // namespace rdb
