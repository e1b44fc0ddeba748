#include "storage/rocks_engine.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <thread>

#include "common/limits.h"
#include "support/temp_dir.h"

namespace rdb {
namespace {

using rdb::testing::TempDir;

class RocksEngineTest : public ::testing::Test {
 protected:
  void SetUp() override { reopen(); }
  void reopen() {
    engine_.reset();
    auto e = RocksEngine::open(dir_.sub("db"));
    ASSERT_TRUE(e.is_ok()) << e.status().to_string();
    engine_ = std::move(e).value();
  }
  std::vector<KvPair> scan(const std::string& start, const std::string& end, std::uint32_t limit, bool reverse = false,
                           bool keys_only = false) {
    auto r = engine_->raw_scan({start, end, limit, reverse, keys_only});
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    return r.is_ok() ? r.value() : std::vector<KvPair>{};
  }
  static std::vector<std::string> keys_of(const std::vector<KvPair>& pairs) {
    std::vector<std::string> out;
    for (const auto& p : pairs) {
      out.push_back(p.key);
    }
    return out;
  }

  TempDir dir_;
  std::unique_ptr<RocksEngine> engine_;
};

TEST_F(RocksEngineTest, RawPutGetDelete) {
  auto missing = engine_->raw_get("k");
  ASSERT_TRUE(missing.is_ok());
  EXPECT_FALSE(missing->has_value());
  ASSERT_TRUE(engine_->raw_put("k", "v1").is_ok());
  ASSERT_TRUE(engine_->raw_put("k", "v2").is_ok());
  EXPECT_EQ(engine_->raw_get("k")->value(), "v2");
  ASSERT_TRUE(engine_->raw_put("empty", "").is_ok());
  EXPECT_EQ(engine_->raw_get("empty")->value(), "");
  ASSERT_TRUE(engine_->raw_delete("k").is_ok());
  EXPECT_FALSE(engine_->raw_get("k")->has_value());
  // Deleting a missing key is fine.
  EXPECT_TRUE(engine_->raw_delete("never").is_ok());
}

// Snapshots travel as table files: exported from a consistent view (later writes
// unseen), read back with every pair, ingested over a range emptied just before.
TEST_F(RocksEngineTest, TableFilesExportReadAndIngest) {
  ASSERT_TRUE(engine_->raw_put("a", "1").is_ok());
  ASSERT_TRUE(engine_->raw_put("b", "2").is_ok());
  ASSERT_TRUE(engine_->raw_put("z", "outside").is_ok());
  auto view = engine_->snapshot();
  ASSERT_TRUE(engine_->raw_put("a", "later").is_ok());
  const std::string path = dir_.sub("files") + "/raw.sst";
  ::mkdir(dir_.sub("files").c_str(), 0755);
  auto info = engine_->export_sst(*view, ColumnFamily::kRaw, "a", "c", path);
  ASSERT_TRUE(info.is_ok()) << info.status().to_string();
  EXPECT_EQ(info->keys, 2u);
  EXPECT_GT(info->bytes, 0u);
  auto empty = engine_->export_sst(*view, ColumnFamily::kRaw, "m", "n", dir_.sub("files") + "/none.sst");
  ASSERT_TRUE(empty.is_ok());
  EXPECT_EQ(empty->keys, 0u);
  EXPECT_NE(::access((dir_.sub("files") + "/none.sst").c_str(), F_OK), 0) << "no file for an empty range";

  std::map<std::string, std::string> seen;
  ASSERT_TRUE(engine_
                  ->read_sst(path,
                             [&](std::string_view k, std::string_view v) {
                               seen[std::string(k)] = std::string(v);
                               return Status::ok();
                             })
                  .is_ok());
  EXPECT_EQ(seen, (std::map<std::string, std::string>{{"a", "1"}, {"b", "2"}}));
  Status stop =
      engine_->read_sst(path, [](std::string_view, std::string_view) { return ServerStatus::corruption("no"); });
  EXPECT_EQ(stop.code(), ServerCode::kCorruption) << "the visitor's error stops the read";
  EXPECT_FALSE(engine_->read_sst(dir_.sub("files") + "/missing.sst", [](auto, auto) { return Status::ok(); }).is_ok());

  // Replace [a, c): delete it, put a stray key, then ingest. The file wins, "z" stays.
  WriteBatch wb;
  wb.delete_range(ColumnFamily::kRaw, "a", "c");
  wb.put(ColumnFamily::kRaw, "b", "stray");
  ASSERT_TRUE(engine_->write(wb, true).is_ok());
  Status ingested = engine_->ingest_sst({{ColumnFamily::kRaw, path}});
  ASSERT_TRUE(ingested.is_ok()) << ingested.to_string();
  EXPECT_EQ(engine_->raw_get("a")->value(), "1");
  EXPECT_EQ(engine_->raw_get("b")->value(), "2");
  EXPECT_EQ(engine_->raw_get("z")->value(), "outside");
  EXPECT_EQ(::access(path.c_str(), F_OK), 0) << "the caller's file stays (ingestion links it)";
  // Ingesting the same file again is harmless (what a restart mid-ingest does).
  ingested = engine_->ingest_sst({{ColumnFamily::kRaw, path}});
  ASSERT_TRUE(ingested.is_ok()) << ingested.to_string();
  EXPECT_EQ(engine_->raw_get("a")->value(), "1");
  view.reset();  // a view must not outlive its engine
  reopen();
  EXPECT_EQ(engine_->raw_get("b")->value(), "2");
}

TEST_F(RocksEngineTest, BinaryKeysAndValues) {
  std::string key("\x00\xff\x01", 3);
  std::string value("\x00\x00\xfe", 3);
  ASSERT_TRUE(engine_->raw_put(key, value).is_ok());
  EXPECT_EQ(engine_->raw_get(key)->value(), value);
}

TEST_F(RocksEngineTest, ScanRangeLimitReverseKeysOnly) {
  for (const char* k : {"a", "b", "c", "d", "e"}) {
    ASSERT_TRUE(engine_->raw_put(k, std::string("v") + k).is_ok());
  }
  EXPECT_EQ(keys_of(scan("b", "e", 100)), (std::vector<std::string>{"b", "c", "d"}));
  EXPECT_EQ(keys_of(scan("b", "", 100)), (std::vector<std::string>{"b", "c", "d", "e"}));
  EXPECT_EQ(keys_of(scan("b", "e", 2)), (std::vector<std::string>{"b", "c"}));
  EXPECT_EQ(keys_of(scan("b", "e", 100, true)), (std::vector<std::string>{"d", "c", "b"}));
  EXPECT_EQ(keys_of(scan("b", "", 2, true)), (std::vector<std::string>{"e", "d"}));
  EXPECT_EQ(keys_of(scan("bb", "cc", 100)), (std::vector<std::string>{"c"}));
  EXPECT_TRUE(scan("x", "", 10).empty());
  EXPECT_TRUE(scan("x", "", 10, true).empty());
  auto with_values = scan("a", "b", 10);
  ASSERT_EQ(with_values.size(), 1u);
  EXPECT_EQ(with_values[0].value, "va");
  auto keys_only = scan("a", "c", 10, false, true);
  ASSERT_EQ(keys_only.size(), 2u);
  EXPECT_EQ(keys_only[0].value, "");
  // Empty start means from the beginning of the key space.
  EXPECT_EQ(scan("", "c", 10).size(), 2u);
}

TEST_F(RocksEngineTest, ScanRejectsBadLimitAndRange) {
  EXPECT_EQ(engine_->raw_scan({"a", "", 0, false, false}).status().code(), StatusCode::kInvalidArgument);
  auto over = engine_->raw_scan({"a", "", kMaxScanLimit + 1, false, false});
  EXPECT_NE(over.status().message().find("10240"), std::string::npos);
  EXPECT_EQ(engine_->raw_scan({"b", "a", 10, false, false}).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(RocksEngineTest, ReadsStopAtTheirByteBound) {
  for (char c = 'a'; c <= 'e'; ++c) {
    ASSERT_TRUE(engine_->raw_put(std::string(1, c), std::string(100, c)).is_ok());
  }
  ScanOptions o{"a", "", 10, false, false, 250};  // cut after the pair that reaches 250 bytes
  auto cut = engine_->raw_scan(o);
  ASSERT_TRUE(cut.is_ok());
  EXPECT_EQ(cut->size(), 3u);
  o.max_bytes = 1;  // at least one pair
  EXPECT_EQ(engine_->raw_scan(o)->size(), 1u);
  o.max_bytes = 0;  // unbounded
  EXPECT_EQ(engine_->raw_scan(o)->size(), 5u);
  std::vector<std::string> keys = {"a", "b", "c", "zz"};
  EXPECT_EQ(engine_->raw_batch_get(keys, 1000)->size(), 3u);
  auto over = engine_->raw_batch_get(keys, 250);
  EXPECT_EQ(over.status().code(), StatusCode::kInvalidArgument);
}

TEST_F(RocksEngineTest, BatchesAreAtomicAndOrdered) {
  ASSERT_TRUE(engine_->raw_batch_put({{"k1", "v1"}, {"k2", "v2"}, {"k3", "v3"}}).is_ok());
  auto got = engine_->raw_batch_get({"k3", "missing", "k1"});
  ASSERT_TRUE(got.is_ok());
  EXPECT_EQ(got.value(), (std::vector<KvPair>{{"k3", "v3"}, {"k1", "v1"}}));
  // One bad pair rejects the whole batch: nothing is written.
  Status bad = engine_->raw_batch_put({{"k4", "v4"}, {"", "v"}});
  EXPECT_EQ(bad.code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(engine_->raw_get("k4")->has_value());
  ASSERT_TRUE(engine_->raw_batch_delete({"k1", "k3"}).is_ok());
  EXPECT_EQ(engine_->raw_batch_get({"k1", "k2", "k3"})->size(), 1u);
  EXPECT_EQ(engine_->raw_batch_delete({"k2", std::string(kMaxKeySize + 1, 'x')}).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(engine_->raw_get("k2")->has_value());
  EXPECT_EQ(engine_->raw_batch_get({}).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(RocksEngineTest, DeleteRangeRemovesHalfOpenRange) {
  for (const char* k : {"a", "b", "c", "d"}) {
    ASSERT_TRUE(engine_->raw_put(k, "v").is_ok());
  }
  ASSERT_TRUE(engine_->raw_delete_range("b", "d").is_ok());
  EXPECT_EQ(keys_of(scan("", "", 100)), (std::vector<std::string>{"a", "d"}));
  EXPECT_EQ(engine_->raw_delete_range("b", "").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(engine_->raw_delete_range("d", "a").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(engine_->raw_delete_range("", "a").code(), StatusCode::kInvalidArgument);
}

TEST_F(RocksEngineTest, LimitsRejectAndWriteNothing) {
  std::string big_key(kMaxKeySize + 1, 'k');
  Status s = engine_->raw_put(big_key, "v");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("8 KiB"), std::string::npos);
  EXPECT_EQ(engine_->raw_put("", "v").code(), StatusCode::kInvalidArgument);
  std::string big_value(kMaxValueSize + 1, 'v');
  Status v = engine_->raw_put("k", big_value);
  EXPECT_NE(v.message().find("8 MiB"), std::string::npos);
  EXPECT_FALSE(engine_->raw_get("k")->has_value());
  auto cas = engine_->compare_and_swap("k", 0, big_value);
  EXPECT_EQ(cas.status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(engine_->get("k")->found);
  // Exactly at the limits is fine.
  EXPECT_TRUE(engine_->raw_put(std::string(kMaxKeySize, 'k'), std::string(kMaxValueSize, 'v')).is_ok());
}

TEST_F(RocksEngineTest, CasCreateUpdateConflict) {
  auto absent = engine_->get("c");
  ASSERT_TRUE(absent.is_ok());
  EXPECT_FALSE(absent->found);
  EXPECT_EQ(absent->version, 0u);

  auto created = engine_->compare_and_swap("c", 0, std::string("one"));
  ASSERT_TRUE(created.is_ok());
  EXPECT_TRUE(created->succeeded);
  EXPECT_EQ(created->version, 1u);

  auto again = engine_->compare_and_swap("c", 0, std::string("dup"));
  ASSERT_TRUE(again.is_ok());
  EXPECT_FALSE(again->succeeded);
  EXPECT_EQ(again->version, 1u);
  EXPECT_TRUE(again->current_found);
  EXPECT_EQ(again->current_value, "one");

  auto updated = engine_->compare_and_swap("c", 1, std::string("two"));
  ASSERT_TRUE(updated->succeeded);
  EXPECT_EQ(updated->version, 2u);
  auto stale = engine_->compare_and_swap("c", 1, std::string("stale"));
  EXPECT_FALSE(stale->succeeded);
  EXPECT_EQ(stale->current_value, "two");
  auto now = engine_->get("c");
  EXPECT_TRUE(now->found);
  EXPECT_EQ(now->value, "two");
  EXPECT_EQ(now->version, 2u);
  // The raw key space is separate.
  EXPECT_FALSE(engine_->raw_get("c")->has_value());
}

TEST_F(RocksEngineTest, CasDeleteAndRecreateNeverReusesVersions) {
  ASSERT_TRUE(engine_->compare_and_swap("k", 0, std::string("a"))->succeeded);  // v1
  ASSERT_TRUE(engine_->compare_and_swap("k", 1, std::string("b"))->succeeded);  // v2
  auto del = engine_->compare_and_swap("k", 2, std::nullopt);                   // tombstone v3
  ASSERT_TRUE(del->succeeded);
  EXPECT_EQ(del->version, 3u);
  EXPECT_FALSE(engine_->get("k")->found);
  // Old versions cannot match a deleted key (no ABA).
  for (std::uint64_t v : {1u, 2u, 3u}) {
    auto r = engine_->compare_and_swap("k", v, std::string("x"));
    EXPECT_FALSE(r->succeeded) << v;
    EXPECT_FALSE(r->current_found);
    EXPECT_EQ(r->version, 0u);
  }
  auto recreated = engine_->compare_and_swap("k", 0, std::string("c"));
  ASSERT_TRUE(recreated->succeeded);
  EXPECT_EQ(recreated->version, 4u);
  // Versions survive a restart.
  reopen();
  auto after = engine_->get("k");
  EXPECT_EQ(after->version, 4u);
  EXPECT_EQ(after->value, "c");
  EXPECT_FALSE(engine_->compare_and_swap("k", 2, std::string("y"))->succeeded);
  // Deleting an absent key with expected 0 succeeds and changes nothing.
  auto del_absent = engine_->compare_and_swap("absent", 0, std::nullopt);
  EXPECT_TRUE(del_absent->succeeded);
  EXPECT_FALSE(engine_->get("absent")->found);
  // Deleting a live key with the wrong version conflicts.
  auto bad_del = engine_->compare_and_swap("k", 1, std::nullopt);
  EXPECT_FALSE(bad_del->succeeded);
  EXPECT_EQ(bad_del->version, 4u);
}

TEST_F(RocksEngineTest, VersionsStrictlyIncreaseOverManyCycles) {
  std::uint64_t last = 0;
  std::uint64_t expected = 0;
  for (int i = 0; i < 200; ++i) {
    bool del = i % 3 == 2;
    auto r = engine_->compare_and_swap("m", expected, del ? std::nullopt : std::optional<std::string>("v"));
    ASSERT_TRUE(r->succeeded) << i;
    ASSERT_GT(r->version, last) << i;
    last = r->version;
    expected = del ? 0 : r->version;
  }
}

TEST_F(RocksEngineTest, ConcurrentCasHasExactlyOneWinnerPerVersion) {
  constexpr int kThreads = 8;
  constexpr int kRoundsPerThread = 200;
  std::atomic<int> wins{0};
  std::vector<std::vector<std::uint64_t>> won(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRoundsPerThread; ++i) {
        auto cur = engine_->get("hot");
        ASSERT_TRUE(cur.is_ok());
        auto r = engine_->compare_and_swap("hot", cur->version, std::to_string(t));
        ASSERT_TRUE(r.is_ok());
        if (r->succeeded) {
          ++wins;
          won[static_cast<std::size_t>(t)].push_back(r->version);
        }
      }
    });
  }
  for (auto& th : threads) {
    th.join();
  }
  std::map<std::uint64_t, int> winners_per_version;
  for (const auto& v : won) {
    for (auto version : v) {
      ++winners_per_version[version];
    }
  }
  for (const auto& [version, count] : winners_per_version) {
    EXPECT_EQ(count, 1) << "version " << version << " was won " << count << " times";
  }
  // Versions handed out are exactly 1..wins with no gaps: every success bumped by one.
  EXPECT_EQ(winners_per_version.size(), static_cast<std::size_t>(wins.load()));
  EXPECT_EQ(winners_per_version.rbegin()->first, static_cast<std::uint64_t>(wins.load()));
  EXPECT_EQ(engine_->get("hot")->version, static_cast<std::uint64_t>(wins.load()));
}

TEST_F(RocksEngineTest, DataSurvivesReopen) {
  ASSERT_TRUE(engine_->raw_put("persist", "yes").is_ok());
  ASSERT_TRUE(engine_->meta_put("store_id", "7").is_ok());
  reopen();
  EXPECT_EQ(engine_->raw_get("persist")->value(), "yes");
  EXPECT_EQ(engine_->meta_get("store_id")->value(), "7");
  EXPECT_FALSE(engine_->meta_get("nope")->has_value());
  ASSERT_TRUE(engine_->meta_put("store/2", "b").is_ok());
  ASSERT_TRUE(engine_->meta_put("store/1", "a").is_ok());
  ASSERT_TRUE(engine_->meta_put("stores", "not a match").is_ok());
  auto stores = engine_->meta_scan_prefix("store/");
  ASSERT_TRUE(stores.is_ok());
  EXPECT_EQ(stores.value(), (std::vector<KvPair>{{"store/1", "a"}, {"store/2", "b"}}));
}

TEST_F(RocksEngineTest, LockedDataDirIsAClearError) {
  // The cross-process case is covered by the integration tests (two servers on
  // one data dir); RocksDB reports the in-process case through the same LOCK.
  auto second = RocksEngine::open(dir_.sub("db"));
  ASSERT_FALSE(second.is_ok());
  EXPECT_EQ(second.status().code(), ServerCode::kBusy) << second.status().to_string();
  EXPECT_NE(second.status().message().find("in use by another process"), std::string::npos);
}

TEST(RocksEngineOpenTest, UnusablePathsAreClearErrors) {
  TempDir dir;
  std::string file = dir.sub("plain-file");
  FILE* f = std::fopen(file.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fclose(f);
  auto not_dir = RocksEngine::open(file);
  ASSERT_FALSE(not_dir.is_ok());
  EXPECT_NE(not_dir.status().message().find("not a directory"), std::string::npos);

  if (::geteuid() != 0) {  // root can read anything; the permission check only means something otherwise
    std::string locked = dir.sub("noaccess");
    ::mkdir(locked.c_str(), 0);
    auto denied = RocksEngine::open(locked);
    EXPECT_FALSE(denied.is_ok());
    ::chmod(locked.c_str(), 0755);
  }
}

}  // namespace
}  // namespace rdb

namespace rdb {
namespace {

TEST(RocksEngineBatchTest, WriteBatchSpansColumnFamiliesAtomically) {
  testing::TempDir dir;
  {
    auto e = RocksEngine::open(dir.path());
    ASSERT_TRUE(e.is_ok());
    WriteBatch b;
    b.put(ColumnFamily::kRaw, "k1", "v1");
    b.put(ColumnFamily::kRaw, "k2", "v2");
    b.put(ColumnFamily::kRaft, "apply", "7");
    b.del(ColumnFamily::kRaw, "k2");
    EXPECT_EQ(b.count(), 4u);
    ASSERT_TRUE((*e)->write(b, true).is_ok());
    WriteBatch r;
    r.put(ColumnFamily::kRaft, "log/1", "a");
    r.put(ColumnFamily::kRaft, "log/2", "b");
    r.put(ColumnFamily::kRaft, "log/3", "c");
    ASSERT_TRUE((*e)->write(r, true).is_ok());
    WriteBatch d;
    d.delete_range(ColumnFamily::kRaft, "log/1", "log/3");
    ASSERT_TRUE((*e)->write(d, true).is_ok());
  }
  auto e = RocksEngine::open(dir.path());
  ASSERT_TRUE(e.is_ok());
  EXPECT_EQ((*e)->raw_get("k1")->value(), "v1");
  EXPECT_FALSE((*e)->raw_get("k2")->has_value());
  EXPECT_EQ((*e)->get_cf(ColumnFamily::kRaft, "apply")->value(), "7");
  EXPECT_FALSE((*e)->get_cf(ColumnFamily::kRaw, "apply")->has_value()) << "families must stay apart";
  auto logs = (*e)->scan_cf(ColumnFamily::kRaft, "log/", "log0", 0);
  ASSERT_TRUE(logs.is_ok());
  ASSERT_EQ(logs->size(), 1u);
  EXPECT_EQ((*logs)[0].key, "log/3");
  EXPECT_EQ((*e)->scan_cf(ColumnFamily::kRaft, "", "", 1)->size(), 1u);
}

// Keys "g" + group letter + index: the group is the first two bytes.
std::size_t two_letter_group(std::string_view key) {
  return key.size() == 4 && key[0] == 'g' ? 2 : 0;
}

std::string grouped_key(char group, int index) {
  return std::string{'g', group, static_cast<char>('0' + index / 10), static_cast<char>('0' + index % 10)};
}

// An engine whose raft family inserts with two_letter_group's hints.
class RocksEngineHintTest : public ::testing::Test {
 protected:
  void SetUp() override {
    RocksEngineOptions options;
    options.raft_insert_hint_group = two_letter_group;
    auto opened = RocksEngine::open(dir_.path(), options);
    ASSERT_TRUE(opened.is_ok()) << opened.status().to_string();
    engine_ = std::move(opened).value();
  }
  testing::TempDir dir_;
  std::unique_ptr<RocksEngine> engine_;
};

TEST_F(RocksEngineHintTest, InterleavedGroupsAreWrittenAndReadInOrder) {
  for (int i = 0; i < 50; ++i) {
    WriteBatch b;
    for (char g : {'c', 'a', 'b'}) {
      b.put(ColumnFamily::kRaft, grouped_key(g, i), std::to_string(i));
      b.put(ColumnFamily::kRaft, std::string{'g', g}, std::to_string(i));  // a rewritten key: no group
    }
    ASSERT_TRUE(engine_->write(b, false).is_ok());
  }
  auto all = engine_->scan_cf(ColumnFamily::kRaft, "", "", 0);
  ASSERT_TRUE(all.is_ok());
  ASSERT_EQ(all->size(), 153u);
  for (std::size_t i = 1; i < all->size(); ++i) {
    EXPECT_LT((*all)[i - 1].key, (*all)[i].key);
  }
  EXPECT_EQ(engine_->get_cf(ColumnFamily::kRaft, grouped_key('b', 49))->value(), "49");
  EXPECT_EQ(engine_->get_cf(ColumnFamily::kRaft, "ga")->value(), "49");
}

TEST_F(RocksEngineHintTest, ARangeDeletionStartingInsideAGroupIsRefusedWhole) {
  WriteBatch fill;
  for (int i = 0; i < 10; ++i) {
    fill.put(ColumnFamily::kRaft, grouped_key('a', i), "v");
  }
  ASSERT_TRUE(engine_->write(fill, true).is_ok());

  WriteBatch bad;
  bad.put(ColumnFamily::kRaw, "x", "1");
  bad.delete_range(ColumnFamily::kRaft, grouped_key('a', 2), grouped_key('a', 5));
  Status s = engine_->write(bad, true);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.to_string();
  EXPECT_NE(s.message().find("insert-hint group"), std::string::npos) << s.message();
  EXPECT_FALSE(engine_->raw_get("x")->has_value()) << "nothing of a refused batch is written";
  EXPECT_EQ(engine_->scan_cf(ColumnFamily::kRaft, "", "", 0)->size(), 10u);

  // Starting outside every group (one byte longer than a grouped key) is fine, and the
  // group keeps taking writes afterwards.
  WriteBatch good;
  good.delete_range(ColumnFamily::kRaft, grouped_key('a', 1) + '\0', grouped_key('a', 5));
  good.put(ColumnFamily::kRaft, grouped_key('a', 10), "v");
  ASSERT_TRUE(engine_->write(good, true).is_ok());
  auto left = engine_->scan_cf(ColumnFamily::kRaft, "", "", 0);
  ASSERT_TRUE(left.is_ok());
  std::vector<std::string> keys;
  for (const auto& kv : *left) {
    keys.push_back(kv.key);
  }
  EXPECT_EQ(keys, (std::vector<std::string>{grouped_key('a', 0), grouped_key('a', 1), grouped_key('a', 5),
                                            grouped_key('a', 6), grouped_key('a', 7), grouped_key('a', 8),
                                            grouped_key('a', 9), grouped_key('a', 10)}));
  // Without hints the same deletion is an ordinary one.
  auto plain = RocksEngine::open(dir_.sub("plain"));
  ASSERT_TRUE(plain.is_ok());
  WriteBatch any;
  any.delete_range(ColumnFamily::kRaft, grouped_key('a', 2), grouped_key('a', 5));
  EXPECT_TRUE((*plain)->write(any, true).is_ok());
}

}  // namespace
}  // namespace rdb
