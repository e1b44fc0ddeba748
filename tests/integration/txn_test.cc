// Transactions against real rdb-pd and rdb-server processes: snapshot isolation,
// write conflicts, the key spaces kept apart, a crashed client's locks resolved by
// its primary, transactions across regions, and rdb-cli txn's contract.
#include <fmt/format.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/limits.h"
#include "kvrpc.grpc.pb.h"
#include "local_cluster.h"
#include "rdb/client.h"

namespace rdb {
namespace {

using namespace std::chrono_literals;
using testing::LocalCluster;

class TxnTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    cluster_ = new LocalCluster();
    // No leader balancing: a leader move loses change feeds and starts new terms, which
    // the tests here make happen only when they mean to.
    cluster_->start_pd({"--max-replicas", "3", "--store-up-window-ms", "2000", "--leader-schedule-limit", "0"});
    for (const char* s : {"s1", "s2", "s3"}) {
      cluster_->start_store(s);
    }
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }

  static std::unique_ptr<RdbClient> client(std::chrono::milliseconds timeout = 10s) {
    ClientOptions o;
    o.pd_endpoints = {cluster_->pd().addr};
    o.timeout = timeout;
    auto c = RdbClient::connect(o);
    EXPECT_TRUE(c.is_ok()) << c.status().to_string();
    return std::move(c).value();
  }

  static std::unique_ptr<Transaction> begin(RdbClient& c) {
    auto t = c.begin();
    EXPECT_TRUE(t.is_ok()) << t.status().to_string();
    return std::move(t).value();
  }

  // Sends a request to whichever store leads the region holding `key` (what a client
  // that crashed half-way left behind is made with this).
  template <typename Req, typename Resp>
  static Resp on_leader(const std::string& key, Req req,
                        grpc::Status (kvrpc::Kv::Stub::*rpc)(grpc::ClientContext*, const Req&, Resp*)) {
    Resp resp;
    EXPECT_TRUE(testing::poll_until(
        [&] {
          for (const char* name : {"s1", "s2", "s3"}) {
            auto stub =
                kvrpc::Kv::NewStub(grpc::CreateChannel(cluster_->store(name).addr, grpc::InsecureChannelCredentials()));
            kvrpc::StoreInfoResponse info;
            grpc::ClientContext info_ctx;
            if (!stub->StoreInfo(&info_ctx, kvrpc::StoreInfoRequest(), &info).ok()) {
              continue;
            }
            for (const auto& r : info.regions()) {
              if (key < r.start_key() || (!r.end_key().empty() && key >= r.end_key())) {
                continue;
              }
              req.mutable_context()->set_region_id(r.id());
              *req.mutable_context()->mutable_region_epoch() = r.region_epoch();
              resp.Clear();
              grpc::ClientContext ctx;
              ctx.set_deadline(std::chrono::system_clock::now() + 5s);
              if (((*stub).*rpc)(&ctx, req, &resp).ok() && !resp.has_region_error()) {
                return true;
              }
            }
          }
          return false;
        },
        20s))
        << "no store led the region of " << key;
    return resp;
  }

  // Prewrites `keys` (the first is the primary) for a transaction that then "crashes".
  static std::uint64_t crashed_prewrite(RdbClient& c, const std::vector<std::string>& keys, std::uint64_t ttl_ms) {
    auto start = c.get_tso(1);
    EXPECT_TRUE(start.is_ok());
    for (const auto& k : keys) {
      kvrpc::KvPrewriteRequest req;
      req.set_primary_lock(keys.front());
      req.set_start_version(*start);
      req.set_lock_ttl(ttl_ms);
      auto* m = req.add_mutations();
      m->set_key(k);
      m->set_op(txnpb::PUT);
      m->set_value("from-crashed-" + k);
      auto resp = on_leader(k, req, &kvrpc::Kv::Stub::KvPrewrite);
      EXPECT_EQ(resp.errors_size(), 0) << resp.DebugString();
    }
    return *start;
  }

  static LocalCluster* cluster_;
};

LocalCluster* TxnTest::cluster_ = nullptr;

TEST_F(TxnTest, ReadsAreASnapshotAndSeeTheirOwnWrites) {
  auto c = client();
  auto setup = begin(*c);
  ASSERT_TRUE(setup->put("si/a", "1").is_ok());
  ASSERT_TRUE(setup->put("si/b", "2").is_ok());
  ASSERT_TRUE(setup->commit().is_ok());
  EXPECT_GT(setup->commit_ts(), setup->start_ts());

  auto reader = begin(*c);
  auto writer = begin(*c);
  ASSERT_TRUE(writer->put("si/a", "changed").is_ok());
  ASSERT_TRUE(writer->erase("si/b").is_ok());
  ASSERT_TRUE(writer->put("si/c", "new").is_ok());
  ASSERT_TRUE(writer->commit().is_ok());

  // The reader started before that commit: it keeps its snapshot.
  EXPECT_EQ(reader->get("si/a")->value_or("?"), "1");
  EXPECT_EQ(reader->get("si/b")->value_or("?"), "2");
  EXPECT_FALSE(reader->get("si/c")->has_value());
  auto snapshot = reader->scan("si/", "si0", 100);
  ASSERT_TRUE(snapshot.is_ok()) << snapshot.status().to_string();
  ASSERT_EQ(snapshot->size(), 2u);
  // Its own writes come first, in reads and scans alike.
  ASSERT_TRUE(reader->put("si/d", "mine").is_ok());
  ASSERT_TRUE(reader->erase("si/a").is_ok());
  auto mixed = reader->scan("si/", "si0", 100);
  ASSERT_EQ(mixed->size(), 2u);
  EXPECT_EQ((*mixed)[0].key, "si/b");
  EXPECT_EQ((*mixed)[1].key, "si/d");
  auto batch = reader->batch_get({"si/a", "si/b", "si/d", "si/zz"});
  ASSERT_TRUE(batch.is_ok());
  ASSERT_EQ(batch->size(), 2u);
  EXPECT_EQ((*batch)[1].value, "mine");
  ASSERT_TRUE(reader->rollback().is_ok());
  EXPECT_EQ(reader->get("si/a").status().code(), StatusCode::kInvalidArgument) << "finished";

  auto later = begin(*c);
  EXPECT_EQ(later->get("si/a")->value_or("?"), "changed");
  EXPECT_FALSE(later->get("si/b")->has_value());
  EXPECT_FALSE(later->get("si/d")->has_value()) << "rolled back";
}

TEST_F(TxnTest, AWriteConflictAbortsAndAppliesNothing) {
  auto c = client();
  auto first = begin(*c);
  auto second = begin(*c);
  // The second reads the key before the first commits (a read-modify-write): the first's
  // commit lands above that read (even a 1PC one), so the second's write conflicts.
  // (Without the read, a 1PC commit may land below the second's start: no conflict is
  // then due, the second simply comes after it.)
  ASSERT_TRUE(second->get("wc/k").is_ok());
  ASSERT_TRUE(first->put("wc/k", "first").is_ok());
  ASSERT_TRUE(second->put("wc/k", "second").is_ok());
  ASSERT_TRUE(second->put("wc/other", "second").is_ok());
  ASSERT_TRUE(first->commit().is_ok());
  Status s = second->commit();
  EXPECT_EQ(s.code(), StatusCode::kAborted) << s.to_string();
  EXPECT_NE(s.message().find("wc/k"), std::string::npos) << "names the key: " << s.message();
  auto check = begin(*c);
  EXPECT_EQ(check->get("wc/k")->value_or("?"), "first");
  EXPECT_FALSE(check->get("wc/other")->has_value()) << "nothing of the aborted transaction applied";
}

TEST_F(TxnTest, TheKeySpacesNeverSeeEachOther) {
  auto c = client();
  ASSERT_TRUE(c->raw_put("ks/raw", "r").is_ok());
  auto t = begin(*c);
  EXPECT_FALSE(t->get("ks/raw")->has_value());
  ASSERT_TRUE(t->put("ks/txn", "t").is_ok());
  ASSERT_TRUE(t->commit().is_ok());
  EXPECT_FALSE(c->raw_get("ks/txn")->has_value());
  EXPECT_FALSE(c->get("ks/txn")->found);
}

TEST_F(TxnTest, ACrashedClientsLocksAreRolledBackOrForwardByItsPrimary) {
  auto c = client();
  // Crashed after prewrite: once its primary's TTL passes, a reader rolls it back.
  crashed_prewrite(*c, {"cr/p1", "cr/s1"}, 300);
  auto reader = begin(*c);
  auto s1 = reader->get("cr/s1");
  ASSERT_TRUE(s1.is_ok()) << s1.status().to_string();
  EXPECT_FALSE(s1->has_value());

  // Crashed after committing its primary: a reader rolls the secondary forward.
  std::uint64_t start = crashed_prewrite(*c, {"cr/p2", "cr/s2"}, 60'000);
  auto commit_ts = c->get_tso(1);
  kvrpc::KvCommitRequest commit;
  commit.set_start_version(start);
  commit.set_commit_version(*commit_ts);
  commit.add_keys("cr/p2");
  EXPECT_FALSE(on_leader("cr/p2", commit, &kvrpc::Kv::Stub::KvCommit).has_error());
  auto after = begin(*c);
  auto s2 = after->get("cr/s2");
  ASSERT_TRUE(s2.is_ok()) << s2.status().to_string();
  EXPECT_EQ(s2->value_or("?"), "from-crashed-cr/s2");

  // A live lock (long TTL, primary not committed): a reader waits, within its deadline.
  crashed_prewrite(*c, {"cr/p3"}, 60'000);
  auto impatient = client(1500ms);
  auto waiting = begin(*impatient);
  auto blocked = waiting->get("cr/p3");
  EXPECT_EQ(blocked.status().code(), StatusCode::kDeadlineExceeded) << blocked.status().to_string();
  // A writer meeting it is aborted, and applies nothing.
  auto writer = begin(*impatient);
  ASSERT_TRUE(writer->put("cr/p3", "mine").is_ok());
  EXPECT_EQ(writer->commit().code(), StatusCode::kAborted);
}

TEST_F(TxnTest, ATransactionSpansRegionsAtomically) {
  auto c = client();
  ASSERT_TRUE(c->split({"xr/m"}).is_ok());
  auto t = begin(*c);
  for (const char* k : {"xr/a", "xr/b", "xr/n", "xr/z"}) {
    ASSERT_TRUE(t->put(k, std::string("v-") + k).is_ok());
  }
  ASSERT_TRUE(t->commit().is_ok());
  auto r = begin(*c);
  auto all = r->scan("xr/", "xr0", 100);
  ASSERT_TRUE(all.is_ok()) << all.status().to_string();
  ASSERT_EQ(all->size(), 4u);
  EXPECT_EQ((*all)[2].key, "xr/n");
  auto limited = r->scan("xr/", "", 3);
  ASSERT_EQ(limited->size(), 3u);
  EXPECT_EQ((*limited)[2].key, "xr/n");
}

// 1PC: every key in one region, so the leader commits the prewrite itself — above
// every read it served of those keys (a reader with a later timestamp read the key
// first, and must never see it change under its snapshot), at or below the client's
// present (max_commit_ts), and without locks. A read served above that present makes
// it an ordinary prewrite.
TEST_F(TxnTest, OnePhaseCommitLandsAboveEveryReadItMightHaveMissed) {
  auto c = client();
  // A leader's first 1PC in its term raises max_ts to a fresh TSO timestamp (reads of
  // earlier leaders), above this client's bound: that one falls back to two phases.
  auto warm = begin(*c);
  ASSERT_TRUE(warm->put("1pc/warm", "x").is_ok());
  ASSERT_TRUE(warm->commit().is_ok());
  auto start = c->get_tso(1);
  ASSERT_TRUE(start.is_ok());
  auto reader_ts = c->get_tso(1);  // a reader that started after the writer
  ASSERT_TRUE(reader_ts.is_ok());
  kvrpc::KvGetRequest get;
  get.set_key("1pc/k");
  get.set_version(*reader_ts);
  EXPECT_TRUE(on_leader("1pc/k", get, &kvrpc::Kv::Stub::KvGet).not_found());

  auto now = c->get_tso(1);
  ASSERT_TRUE(now.is_ok());
  kvrpc::KvPrewriteRequest prewrite;
  prewrite.set_primary_lock("1pc/k");
  prewrite.set_start_version(*start);
  prewrite.set_lock_ttl(3000);
  prewrite.set_try_one_pc(true);
  prewrite.set_max_commit_ts(*now);
  auto* m = prewrite.add_mutations();
  m->set_key("1pc/k");
  m->set_op(txnpb::PUT);
  m->set_value("v");
  auto done = on_leader("1pc/k", prewrite, &kvrpc::Kv::Stub::KvPrewrite);
  ASSERT_EQ(done.errors_size(), 0) << done.DebugString();
  ASSERT_NE(done.one_pc_commit_ts(), 0U) << "one region and a TSO: the store commits in one step";
  EXPECT_GT(done.one_pc_commit_ts(), *reader_ts) << "a 1PC commit below a read already served changes its snapshot";
  EXPECT_LE(done.one_pc_commit_ts(), *now);

  EXPECT_TRUE(on_leader("1pc/k", get, &kvrpc::Kv::Stub::KvGet).not_found()) << "the reader's snapshot is unchanged";
  get.set_version(done.one_pc_commit_ts());
  EXPECT_EQ(on_leader("1pc/k", get, &kvrpc::Kv::Stub::KvGet).value(), "v");
  kvrpc::KvScanLockRequest locks;
  locks.set_start_key("1pc/");
  locks.set_end_key("1pc0");
  locks.set_max_version(~std::uint64_t{0});
  locks.set_limit(10);
  EXPECT_EQ(on_leader("1pc/", locks, &kvrpc::Kv::Stub::KvScanLock).locks_size(), 0) << "1PC leaves no lock";
  auto again = on_leader("1pc/k", prewrite, &kvrpc::Kv::Stub::KvPrewrite);
  EXPECT_EQ(again.one_pc_commit_ts(), done.one_pc_commit_ts()) << "a retry answers when it really committed";

  // A reader from the future (a second ahead): no 1PC may land below it, and none may
  // land above the client's present, so the prewrite is an ordinary one.
  auto start2 = c->get_tso(1);
  get.set_key("1pc/f");
  get.set_version(*start2 + (1000ULL << 18));
  EXPECT_TRUE(on_leader("1pc/f", get, &kvrpc::Kv::Stub::KvGet).not_found());
  prewrite.set_start_version(*start2);
  prewrite.set_primary_lock("1pc/f");
  prewrite.set_max_commit_ts(*c->get_tso(1));
  prewrite.mutable_mutations(0)->set_key("1pc/f");
  auto plain = on_leader("1pc/f", prewrite, &kvrpc::Kv::Stub::KvPrewrite);
  ASSERT_EQ(plain.errors_size(), 0) << plain.DebugString();
  EXPECT_EQ(plain.one_pc_commit_ts(), 0U);
  locks.set_start_key("1pc/f");
  EXPECT_EQ(on_leader("1pc/f", locks, &kvrpc::Kv::Stub::KvScanLock).locks_size(), 1) << "a plain prewrite locks";
  kvrpc::KvCommitRequest commit;
  commit.set_start_version(*start2);
  commit.set_commit_version(*c->get_tso(1));
  commit.add_keys("1pc/f");
  EXPECT_FALSE(on_leader("1pc/f", commit, &kvrpc::Kv::Stub::KvCommit).has_error());
}

// Under load, readers that started after a writer fetched its present push the store's
// max_ts past it. The client lets a 1PC land a little above its present (a window of
// 50 ms) instead of falling back to two phases, and acknowledges it only once PD's
// timestamps passed the commit: a transaction started afterwards still sees it.
TEST_F(TxnTest, AOnePhaseCommitAboveThePresentIsAcknowledgedOnlyOncePdPassedIt) {
  auto c = client();
  // Until a 1PC bounded by the present commits in one phase: the leader's first 1PC in
  // its term syncs max_ts, and a reader from the future (as in the test above) keeps
  // max_ts ahead of PD until PD's clock passes it.
  int probe = 0;
  ASSERT_TRUE(testing::poll_until(
      [&] {
        auto start = c->get_tso(1);
        auto now = c->get_tso(1);
        if (!start.is_ok() || !now.is_ok()) {
          return false;
        }
        kvrpc::KvPrewriteRequest req;
        req.set_primary_lock(fmt::format("1pwprobe/{}", ++probe));
        req.set_start_version(*start);
        req.set_lock_ttl(1);
        req.set_try_one_pc(true);
        req.set_max_commit_ts(*now);
        auto* m = req.add_mutations();
        m->set_key(req.primary_lock());
        m->set_op(txnpb::PUT);
        m->set_value("p");
        return on_leader(req.primary_lock(), req, &kvrpc::Kv::Stub::KvPrewrite).one_pc_commit_ts() != 0;
      },
      20s));
  auto w = begin(*c);
  ASSERT_TRUE(w->put("1pw/k", "v").is_ok());
  auto now = c->get_tso(1);
  ASSERT_TRUE(now.is_ok());
  kvrpc::KvGetRequest get;  // a reader 20 ms ahead of PD, as a burst of readers would be
  get.set_key("1pw/k");
  get.set_version(*now + (20ULL << 18));
  EXPECT_TRUE(on_leader("1pw/k", get, &kvrpc::Kv::Stub::KvGet).not_found());
  Status committed = w->commit();
  ASSERT_TRUE(committed.is_ok()) << committed.to_string();
  EXPECT_GT(w->commit_ts(), get.version()) << "above the read it would otherwise change";
  kvrpc::KvScanLockRequest locks;
  locks.set_start_key("1pw/");
  locks.set_end_key("1pw0");
  locks.set_max_version(~std::uint64_t{0});
  locks.set_limit(10);
  EXPECT_EQ(on_leader("1pw/", locks, &kvrpc::Kv::Stub::KvScanLock).locks_size(), 0) << "one phase: no lock";
  auto r = begin(*c);
  EXPECT_GE(r->start_ts(), w->commit_ts()) << "acknowledged before PD's timestamps passed the commit";
  auto got = r->get("1pw/k");
  ASSERT_TRUE(got.is_ok()) << got.status().to_string();
  EXPECT_EQ(got->value_or("(none)"), "v");
}

// Through the client: one region's transaction commits in one step, a multi-region one
// in two; both are seen whole, and 1PC can be turned off.
TEST_F(TxnTest, TransactionsCommitInOneStepWhenOneRegionHoldsThemAll) {
  for (bool one_pc : {true, false}) {
    ClientOptions o;
    o.pd_endpoints = {cluster_->pd().addr};
    o.txn_one_pc = one_pc;
    auto c = std::move(RdbClient::connect(o)).value();
    const std::string prefix = one_pc ? "op1/" : "op2/";
    auto t = begin(*c);
    ASSERT_TRUE(t->put(prefix + "a", "1").is_ok());
    ASSERT_TRUE(t->put(prefix + "b", "2").is_ok());
    ASSERT_TRUE(t->erase(prefix + "gone").is_ok());
    ASSERT_TRUE(t->commit().is_ok());
    EXPECT_GT(t->commit_ts(), t->start_ts());
    auto r = begin(*c);
    EXPECT_GE(r->start_ts(), t->commit_ts()) << "a later transaction starts at or above the commit (and sees it)";
    auto got = r->batch_get({prefix + "a", prefix + "b", prefix + "gone"});
    ASSERT_TRUE(got.is_ok()) << got.status().to_string();
    EXPECT_EQ(got->size(), 2U);
    kvrpc::KvScanLockRequest locks;
    locks.set_start_key(prefix);
    locks.set_end_key(prefix + "\xff");
    locks.set_max_version(~std::uint64_t{0});
    locks.set_limit(10);
    if (one_pc) {
      EXPECT_EQ(on_leader(prefix, locks, &kvrpc::Kv::Stub::KvScanLock).locks_size(), 0) << "1PC leaves no lock";
    }
  }
}

// Versioned reads say when each version committed (an etcd layer's mod_revision); this
// transaction's own writes say 0, and its deletes hide what they delete.
TEST_F(TxnTest, VersionedReadsSayWhenEachVersionCommitted) {
  auto c = client();
  auto first = begin(*c);
  ASSERT_TRUE(first->put("cv/a", "1").is_ok());
  ASSERT_TRUE(first->put("cv/b", "2").is_ok());
  ASSERT_TRUE(first->commit().is_ok());
  auto second = begin(*c);
  ASSERT_TRUE(second->put("cv/b", "3").is_ok());
  ASSERT_TRUE(second->commit().is_ok());

  auto r = begin(*c);
  auto a = r->get_versioned("cv/a");
  ASSERT_TRUE(a.is_ok()) << a.status().to_string();
  ASSERT_TRUE(a->has_value());
  EXPECT_EQ(**a, (TxnVersion{"cv/a", "1", first->commit_ts()}));
  auto all = r->scan_versioned("cv/", "cv0", 10);
  ASSERT_TRUE(all.is_ok()) << all.status().to_string();
  EXPECT_EQ(*all, (std::vector<TxnVersion>{{"cv/a", "1", first->commit_ts()}, {"cv/b", "3", second->commit_ts()}}));

  ASSERT_TRUE(r->put("cv/c", "own").is_ok());
  ASSERT_TRUE(r->erase("cv/a").is_ok());
  EXPECT_FALSE(r->get_versioned("cv/a")->has_value());
  EXPECT_EQ(r->get_versioned("cv/c")->value().commit_ts, 0U);
  EXPECT_EQ(*r->scan_versioned("cv/", "cv0", 10),
            (std::vector<TxnVersion>{{"cv/b", "3", second->commit_ts()}, {"cv/c", "own", 0}}));
  EXPECT_EQ(r->scan("cv/", "cv0", 10)->size(), 2U);

  // A snapshot at the first commit sees exactly it; it is read-only.
  auto then = c->snapshot_at(first->commit_ts());
  ASSERT_TRUE(then.is_ok()) << then.status().to_string();
  EXPECT_EQ(*(*then)->scan_versioned("cv/", "cv0", 10),
            (std::vector<TxnVersion>{{"cv/a", "1", first->commit_ts()}, {"cv/b", "2", first->commit_ts()}}));
  EXPECT_EQ((*then)->put("cv/z", "no").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*then)->commit().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(c->snapshot_at(0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(c->snapshot_at(~std::uint64_t{0} >> 1).status().code(), StatusCode::kInvalidArgument)
      << "a snapshot in the future";
}

// A transaction's buffer is bounded: 10,240 keys and 48 MiB of keys and values.
// A change feed's catch-up read: every committed put and delete in a window, final once
// answered — across regions, and including a commit whose secondary lock is still there.
TEST_F(TxnTest, ChangesInAWindowAreCompleteFinalAndCarryWhatTheyReplaced) {
  auto c = client();
  const std::uint64_t t0 = *c->get_tso(1);
  auto commit = [&](const std::string& key, std::optional<std::string> value) {
    auto t = begin(*c);
    EXPECT_TRUE((value ? t->put(key, *value) : t->erase(key)).is_ok());
    EXPECT_TRUE(t->commit().is_ok());
    return t->commit_ts();
  };
  const auto a1 = commit("chg/a", "1");
  const auto b1 = commit("chg/b", "1");
  const auto a2 = commit("chg/a", "2");
  const auto b_del = commit("chg/b", std::nullopt);
  const auto c1 = commit("chg/c", "1");
  ASSERT_TRUE(c->split({"chg/b"}).is_ok()) << "the window spans two regions";
  // A transaction whose primary committed while its secondary is still locked: the read
  // must roll it forward and report it, or a feed would miss it for good.
  const std::uint64_t crashed = crashed_prewrite(*c, {"chg/p", "chg/q"}, 60'000);
  const std::uint64_t pq = *c->get_tso(1);
  kvrpc::KvCommitRequest commit_primary;
  commit_primary.set_start_version(crashed);
  commit_primary.set_commit_version(pq);
  commit_primary.add_keys("chg/p");
  EXPECT_FALSE(on_leader("chg/p", commit_primary, &kvrpc::Kv::Stub::KvCommit).has_error());

  auto snap = std::move(c->snapshot_at(*c->get_tso(1))).value();
  std::string next;
  auto all = snap->changes("chg/", "chg0", t0, 100, true, &next);
  ASSERT_TRUE(all.is_ok()) << all.status().to_string();
  EXPECT_TRUE(next.empty());
  using P = std::optional<TxnVersion>;
  std::vector<TxnChange> expected = {
      {"chg/a", a1, false, "1", P()},
      {"chg/a", a2, false, "2", P(TxnVersion{"chg/a", "1", a1})},
      {"chg/b", b1, false, "1", P()},
      {"chg/b", b_del, true, "", P(TxnVersion{"chg/b", "1", b1})},
      {"chg/c", c1, false, "1", P()},
      {"chg/p", pq, false, "from-crashed-chg/p", P()},
      {"chg/q", pq, false, "from-crashed-chg/q", P()},
  };
  EXPECT_EQ(*all, expected);

  // A window: only what committed in (a1, b_del]; a's second version still names its first.
  auto window = std::move(c->snapshot_at(b_del)).value();
  auto part = window->changes("chg/", "chg0", a1, 100, false, &next);
  ASSERT_TRUE(part.is_ok());
  ASSERT_EQ(part->size(), 3U);
  EXPECT_EQ((*part)[0].commit_ts, a2);
  EXPECT_EQ((*part)[1].commit_ts, b1);
  EXPECT_EQ((*part)[2].commit_ts, b_del);
  EXPECT_FALSE((*part)[0].previous.has_value()) << "not asked for";

  // Page by page: a key's changes are never split, and the pages add up to the whole.
  std::vector<TxnChange> paged;
  std::string from = "chg/";
  int pages = 0;
  do {
    auto page = snap->changes(from, "chg0", t0, 1, true, &next);
    ASSERT_TRUE(page.is_ok()) << page.status().to_string();
    ASSERT_FALSE(page->empty());
    EXPECT_EQ(page->front().key, page->back().key) << "one key per page at limit 1";
    paged.insert(paged.end(), page->begin(), page->end());
    from = next;
    ++pages;
  } while (!next.empty() && pages < 20);
  EXPECT_EQ(paged, expected);
  EXPECT_EQ(pages, 5);

  auto empty = snap->changes("chg/", "chg0", snap->start_ts(), 10, false, &next);
  EXPECT_EQ(empty.status().code(), StatusCode::kInvalidArgument) << "an empty window";
}

// A live change feed: the region leaders keep what commits in the range from its opening
// on; each window up to a resolved timestamp holds exactly what a scan of that window
// finds — 1PC and two-phase commits across regions, a lock left behind resolved on the
// way — and a split loses the feed (the reader opens a new one).
TEST_F(TxnTest, AChangeFeedHasEveryCommitOnceInOrderAndIsLostWhenItsRegionSplits) {
  auto c = client();
  ASSERT_TRUE(c->split({"cf/m"}).is_ok());
  auto before = begin(*c);
  ASSERT_TRUE(before->put("cf/a", "0").is_ok());
  ASSERT_TRUE(before->commit().is_ok());
  auto feed = c->open_change_feed("cf/", "cf0", true);
  ASSERT_TRUE(feed.is_ok()) << feed.status().to_string();
  const std::uint64_t floor = (*feed)->floor();
  EXPECT_GE(floor, before->commit_ts()) << "the commit before the feed is below its floor";

  auto commit = [&](std::vector<std::pair<std::string, std::optional<std::string>>> writes) {
    auto t = begin(*c);
    for (const auto& [k, v] : writes) {
      EXPECT_TRUE((v ? t->put(k, *v) : t->erase(k)).is_ok());
    }
    EXPECT_TRUE(t->commit().is_ok());
    return t->commit_ts();
  };
  const auto both = commit({{"cf/a", "1"}, {"cf/n", "1"}});  // two regions: two phases
  const auto one = commit({{"cf/a", "2"}});                  // one region: 1PC
  crashed_prewrite(*c, {"cf/b"}, 300);                       // a lock left behind, rolled back on the way
  const auto gone = commit({{"cf/n", std::nullopt}});
  // Outside the range: never in the feed.
  commit({{"cf0", "x"}});

  std::vector<TxnChange> seen;
  std::uint64_t after = floor;
  ASSERT_TRUE(testing::poll_until(
      [&] {
        std::uint64_t resolved = 0;
        auto window = (*feed)->next(after, &resolved);
        EXPECT_TRUE(window.is_ok()) << window.status().to_string();
        if (!window.is_ok()) {
          return true;
        }
        EXPECT_GE(resolved, after);
        for (auto& ch : *window) {
          EXPECT_GT(ch.commit_ts, after);
          EXPECT_LE(ch.commit_ts, resolved);
          seen.push_back(std::move(ch));
        }
        after = resolved;
        return after >= gone;
      },
      20s));
  using P = std::optional<TxnVersion>;
  const auto a0 = before->commit_ts();
  std::vector<TxnChange> expected = {
      {"cf/a", both, false, "1", P(TxnVersion{"cf/a", "0", a0})},
      {"cf/n", both, false, "1", P()},
      {"cf/a", one, false, "2", P(TxnVersion{"cf/a", "1", both})},
      {"cf/n", gone, true, "", P(TxnVersion{"cf/n", "1", both})},
  };
  EXPECT_EQ(seen, expected);

  // The same window scanned: the same changes (a scan orders them by key).
  auto snap = std::move(c->snapshot_at(after)).value();
  std::string next;
  auto scanned = snap->changes("cf/", "cf0", floor, 100, true, &next);
  ASSERT_TRUE(scanned.is_ok()) << scanned.status().to_string();
  auto by_time = [](const TxnChange& x, const TxnChange& y) {
    return x.commit_ts != y.commit_ts ? x.commit_ts < y.commit_ts : x.key < y.key;
  };
  std::sort(scanned->begin(), scanned->end(), by_time);
  EXPECT_EQ(*scanned, expected);

  // A split inside a feed's region loses it: next() says so, and a new feed works.
  ASSERT_TRUE(c->split({"cf/d"}).is_ok());
  std::uint64_t resolved = 0;
  Status lost;
  ASSERT_TRUE(testing::poll_until(
      [&] {
        auto w = (*feed)->next(after, &resolved);
        if (w.is_ok()) {
          after = resolved;
          return false;
        }
        lost = w.status();
        return true;
      },
      20s));
  EXPECT_EQ(lost.code(), StatusCode::kUnavailable) << lost.to_string();
  EXPECT_NE(lost.message().find("change feed lost"), std::string::npos) << lost.to_string();
  // A new feed works (opened again should the new region's leadership still be settling:
  // a feed lives on the leader it registered with).
  std::vector<TxnChange> fresh;
  std::uint64_t last = 0;
  for (int attempt = 0; attempt < 5 && fresh.empty(); ++attempt) {
    auto again = c->open_change_feed("cf/", "cf0", false);
    ASSERT_TRUE(again.is_ok()) << again.status().to_string();
    last = commit({{"cf/z", std::to_string(attempt)}});
    after = (*again)->floor();
    Status failed;
    ASSERT_TRUE(testing::poll_until(
        [&] {
          auto w = (*again)->next(after, &resolved);
          if (!w.is_ok()) {
            failed = w.status();
            return true;
          }
          fresh.insert(fresh.end(), w->begin(), w->end());
          after = resolved;
          return after >= last;
        },
        20s));
    if (!failed.is_ok()) {
      EXPECT_NE(failed.message().find("change feed lost"), std::string::npos) << failed.to_string();
      fresh.clear();
    }
  }
  ASSERT_EQ(fresh.size(), 1u);
  EXPECT_EQ(fresh[0].key, "cf/z");
  EXPECT_EQ(fresh[0].commit_ts, last);
}

// The change feed RPCs take nothing on trust: a bad range, timestamp or window is refused
// with its reason; an unknown feed is answered "lost" (the reader registers again).
TEST_F(TxnTest, ChangeFeedRpcsRefuseGarbage) {
  auto stub = kvrpc::Kv::NewStub(grpc::CreateChannel(cluster_->store("s1").addr, grpc::InsecureChannelCredentials()));
  auto call = [&](auto rpc, const auto& req, auto* resp) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 5s);
    return ((*stub).*rpc)(&ctx, req, resp);
  };
  kvrpc::KvChangeFeedRegisterRequest inverted;
  inverted.set_start_key("b");
  inverted.set_end_key("a");
  kvrpc::KvChangeFeedRegisterResponse registered;
  grpc::Status s = call(&kvrpc::Kv::Stub::KvChangeFeedRegister, inverted, &registered);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();

  kvrpc::KvChangeFeedPollRequest poll;
  poll.set_feed_id(12345);
  poll.set_version(0);
  kvrpc::KvChangeFeedPollResponse polled;
  s = call(&kvrpc::Kv::Stub::KvChangeFeedPoll, poll, &polled);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_NE(s.error_message().find("version"), std::string::npos) << s.error_message();
  poll.set_version(10);
  poll.set_after(10);
  s = call(&kvrpc::Kv::Stub::KvChangeFeedPoll, poll, &polled);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_NE(s.error_message().find("empty window"), std::string::npos) << s.error_message();
  poll.set_after(9);
  // An unknown feed, asked of no region: the store sends the client on rather than say
  // "lost" (it may be a follower of the leader that holds the feed).
  s = call(&kvrpc::Kv::Stub::KvChangeFeedPoll, poll, &polled);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_TRUE(polled.has_region_error()) << polled.DebugString();
  EXPECT_TRUE(polled.lost().empty()) << polled.DebugString();
  // Asked of the region's leader: lost.
  polled = on_leader("garbage", poll, &kvrpc::Kv::Stub::KvChangeFeedPoll);
  EXPECT_NE(polled.lost().find("no change feed 12345"), std::string::npos) << polled.DebugString();
  EXPECT_EQ(polled.changes_size(), 0);

  kvrpc::KvChangeFeedCancelRequest cancel;  // an unknown feed: nothing to do
  cancel.set_feed_id(12345);
  kvrpc::KvChangeFeedCancelResponse canceled;
  EXPECT_TRUE(call(&kvrpc::Kv::Stub::KvChangeFeedCancel, cancel, &canceled).ok());
}

// More keys than one request carries (10,240): the prewrite, commit and reads go in
// parts, and the transaction is still one commit at one timestamp.
TEST_F(TxnTest, ALargeTransactionCommitsInPartsAtOneTimestamp) {
  auto c = client(60s);
  constexpr int kKeys = 25'000;
  auto t = begin(*c);
  for (int i = 0; i < kKeys; ++i) {
    ASSERT_TRUE(t->put(fmt::format("large/{:06}", i), std::to_string(i)).is_ok()) << i;
  }
  ASSERT_TRUE(t->commit().is_ok());
  const std::uint64_t committed_at = t->commit_ts();
  auto count = [&](std::uint64_t* commit_ts_seen) {
    auto r = begin(*c);
    std::size_t n = 0;
    std::string from = "large/";
    for (;;) {
      auto page = r->scan_versioned(from, "large0", 10240);
      EXPECT_TRUE(page.is_ok()) << page.status().to_string();
      if (!page.is_ok() || page->empty()) {
        break;
      }
      for (const auto& v : *page) {
        if (commit_ts_seen != nullptr && v.commit_ts != *commit_ts_seen) {
          ADD_FAILURE() << v.key << " committed at " << v.commit_ts << ", not " << *commit_ts_seen;
          return n;
        }
      }
      n += page->size();
      from = page->back().key + '\0';
    }
    return n;
  };
  std::uint64_t seen = committed_at;
  EXPECT_EQ(count(&seen), static_cast<std::size_t>(kKeys));
  auto d = begin(*c);
  for (int i = 0; i < kKeys; ++i) {
    ASSERT_TRUE(d->erase(fmt::format("large/{:06}", i)).is_ok());
  }
  ASSERT_TRUE(d->commit().is_ok());
  EXPECT_EQ(count(nullptr), 0u) << "one transaction deleted them all";
}

TEST_F(TxnTest, TheWriteBufferIsBounded) {
  auto c = client();
  auto t = begin(*c);
  for (std::size_t i = 0; i < kMaxTxnKeys; ++i) {
    ASSERT_TRUE(t->lock(fmt::format("b/{:07}", i)).is_ok()) << i;
  }
  EXPECT_EQ(t->put("buf/one-more", "v").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(t->lock("buf/one-more").code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(t->put("b/0000000", "replaced").is_ok()) << "a key already locked is not one more";
  EXPECT_TRUE(t->erase("b/0000001").is_ok());
  ASSERT_TRUE(t->rollback().is_ok());
  auto big = begin(*c);
  const std::string eight_mib(8 * 1024 * 1024, 'v');  // the largest value
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(big->put(fmt::format("big/{}", i), eight_mib).is_ok()) << i;
  }
  EXPECT_EQ(big->put("big/5", eight_mib).code(), StatusCode::kInvalidArgument) << "48 MiB and more";
  EXPECT_TRUE(big->put("big/0", "small").is_ok()) << "replacing a value frees its bytes";
  EXPECT_TRUE(big->put("big/5", eight_mib).is_ok());
}

// Garbage from the network is refused with INVALID_ARGUMENT naming what is wrong, and
// changes nothing.
TEST_F(TxnTest, MalformedTransactionalRequestsAreRefused) {
  auto stub = kvrpc::Kv::NewStub(grpc::CreateChannel(cluster_->store("s1").addr, grpc::InsecureChannelCredentials()));
  auto refused = [&](auto rpc, const auto& req, auto resp) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 5s);
    grpc::Status s = ((*stub).*rpc)(&ctx, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
    EXPECT_FALSE(s.error_message().empty());
  };
  kvrpc::KvPrewriteRequest no_mutations;
  no_mutations.set_primary_lock("k");
  no_mutations.set_start_version(10);
  refused(&kvrpc::Kv::Stub::KvPrewrite, no_mutations, kvrpc::KvPrewriteResponse());
  kvrpc::KvPrewriteRequest no_start = no_mutations;
  no_start.set_start_version(0);
  no_start.add_mutations()->set_key("k");
  refused(&kvrpc::Kv::Stub::KvPrewrite, no_start, kvrpc::KvPrewriteResponse());
  kvrpc::KvPrewriteRequest huge_key = no_mutations;
  huge_key.add_mutations()->set_key(std::string(9000, 'k'));
  refused(&kvrpc::Kv::Stub::KvPrewrite, huge_key, kvrpc::KvPrewriteResponse());
  kvrpc::KvCommitRequest backwards;
  backwards.set_start_version(20);
  backwards.set_commit_version(10);
  backwards.add_keys("k");
  refused(&kvrpc::Kv::Stub::KvCommit, backwards, kvrpc::KvCommitResponse());
  kvrpc::KvCommitRequest twice = backwards;
  twice.set_commit_version(30);
  twice.add_keys("k");
  refused(&kvrpc::Kv::Stub::KvCommit, twice, kvrpc::KvCommitResponse());
  kvrpc::KvGetRequest no_version;
  no_version.set_key("k");
  refused(&kvrpc::Kv::Stub::KvGet, no_version, kvrpc::KvGetResponse());
  kvrpc::KvScanRequest no_limit;
  no_limit.set_version(5);
  refused(&kvrpc::Kv::Stub::KvScan, no_limit, kvrpc::KvScanResponse());
  kvrpc::KvCheckTxnStatusRequest no_primary;
  no_primary.set_lock_ts(5);
  no_primary.set_current_ts(6);
  refused(&kvrpc::Kv::Stub::KvCheckTxnStatus, no_primary, kvrpc::KvCheckTxnStatusResponse());
  kvrpc::KvScanChangesRequest empty_window;
  empty_window.set_limit(10);
  empty_window.set_version(50);
  empty_window.set_from_version(50);
  refused(&kvrpc::Kv::Stub::KvScanChanges, empty_window, kvrpc::KvScanChangesResponse());
  kvrpc::KvScanChangesRequest changes_no_limit = empty_window;
  changes_no_limit.set_from_version(10);
  changes_no_limit.set_limit(0);
  refused(&kvrpc::Kv::Stub::KvScanChanges, changes_no_limit, kvrpc::KvScanChangesResponse());
  kvrpc::KvScanChangesRequest changes_backwards = changes_no_limit;
  changes_backwards.set_limit(10);
  changes_backwards.set_start_key("b");
  changes_backwards.set_end_key("a");
  refused(&kvrpc::Kv::Stub::KvScanChanges, changes_backwards, kvrpc::KvScanChangesResponse());
  auto c = client();
  auto t = begin(*c);
  EXPECT_FALSE(t->get("k")->has_value()) << "nothing was written";
}

// rdb-cli txn: a command per line on stdin, an answer per line, exit codes 0 / 3 / 4.
TEST_F(TxnTest, CliTxnAnswersEachLineAndExitsByOutcome) {
  auto cli = [&](const std::string& name, const std::string& script) {
    std::string path = cluster_->dir().sub(name + ".txn");
    std::ofstream(path) << script;
    return testing::run_command(
        {"/bin/sh", "-c",
         fmt::format("'{}/rdb-cli' --pd {} --json txn < '{}'", testing::bin_dir(), cluster_->pd().addr, path)},
        cluster_->dir().path(), 30s);
  };
  auto lines = [](const std::string& out) {
    std::vector<nlohmann::json> js;
    std::size_t pos = 0;
    while (pos < out.size()) {
      auto end = out.find('\n', pos);
      js.push_back(nlohmann::json::parse(out.substr(pos, end - pos)));
      pos = end == std::string::npos ? out.size() : end + 1;
    }
    return js;
  };
  auto ok = cli("ok", "put cli/k \"hello world\"\nget cli/k\nget cli/missing\nscan cli/ cli0 10\ncommit\n");
  ASSERT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  auto js = lines(ok.out);
  ASSERT_EQ(js.size(), 5u) << ok.out;
  EXPECT_EQ(js[1]["key"], "cli/k");
  EXPECT_EQ(js[1]["found"], true);
  EXPECT_EQ(js[1]["value"], "hello world");
  EXPECT_EQ(js[2]["found"], false);
  EXPECT_EQ(js[3]["kvs"].size(), 1u);
  EXPECT_EQ(js[4]["op"], "commit");
  EXPECT_GT(js[4]["commit_ts"].get<std::uint64_t>(), js[4]["start_ts"].get<std::uint64_t>());

  auto rolled = cli("rolled", "put cli/r x\nrollback\n");
  EXPECT_EQ(rolled.exit_code, 0) << rolled.out << rolled.err;
  auto unfinished = cli("unfinished", "put cli/u x\n");
  EXPECT_EQ(unfinished.exit_code, 4) << unfinished.out;
  EXPECT_TRUE(lines(unfinished.out).back().contains("error"));
  auto bad = cli("bad", "frobnicate cli/k\ncommit\n");
  EXPECT_EQ(bad.exit_code, 4);
  EXPECT_EQ(lines(bad.out).size(), 1u) << "the failing command ends the transaction";
  auto check = client();
  auto t = begin(*check);
  EXPECT_FALSE(t->get("cli/r")->has_value());
  EXPECT_FALSE(t->get("cli/u")->has_value());

  // A conflict: another transaction commits the key after this one started.
  crashed_prewrite(*check, {"cli/locked"}, 60'000);
  auto conflict = cli("conflict", "put cli/locked mine\ncommit\n");
  EXPECT_EQ(conflict.exit_code, 3) << conflict.out << conflict.err;
}

}  // namespace
}  // namespace rdb
