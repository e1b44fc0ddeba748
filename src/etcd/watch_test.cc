// How a window's events become Watch responses: one per revision, a large revision in
// marked fragments when the watcher asked.
#include "etcd/watch.h"

#include <gtest/gtest.h>

namespace rdb::etcd {
namespace {

using etcdserverpb::Event;

std::vector<Event> events(const std::vector<std::pair<std::int64_t, std::size_t>>& revs_and_sizes) {
  std::vector<Event> out;
  int n = 0;
  for (auto [rev, size] : revs_and_sizes) {
    Event e;
    e.mutable_kv()->set_key("k" + std::to_string(n++));
    e.mutable_kv()->set_mod_revision(rev);
    e.mutable_kv()->set_value(std::string(size, 'v'));
    out.push_back(std::move(e));
  }
  return out;
}

std::vector<std::int64_t> revisions(const etcdserverpb::WatchResponse& r) {
  std::vector<std::int64_t> out;
  for (const auto& e : r.events()) {
    out.push_back(e.kv().mod_revision());
  }
  return out;
}

TEST(WatchBatchTest, EachRevisionIsOneResponse) {
  auto out = batch_events(3, events({{10, 5}, {11, 5}, {11, 5}, {12, 5}}), 1 << 20, false);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(revisions(out[0]), (std::vector<std::int64_t>{10}));
  EXPECT_EQ(revisions(out[1]), (std::vector<std::int64_t>{11, 11}));
  EXPECT_EQ(revisions(out[2]), (std::vector<std::int64_t>{12}));
  for (const auto& r : out) {
    EXPECT_EQ(r.watch_id(), 3);
    EXPECT_FALSE(r.fragment());
  }
  EXPECT_TRUE(batch_events(3, {}, 100, false).empty());
}

TEST(WatchBatchTest, ALargeRevisionStaysWholeUnlessFragmentsWereAskedFor) {
  // Each event is ~110 bytes; a bound of 250 fits two.
  auto whole = batch_events(1, events({{10, 100}, {11, 100}, {11, 100}, {11, 100}, {12, 100}}), 250, false);
  ASSERT_EQ(whole.size(), 3u);
  EXPECT_EQ(revisions(whole[1]), (std::vector<std::int64_t>{11, 11, 11}));

  auto out = batch_events(1, events({{10, 100}, {11, 100}, {11, 100}, {11, 100}, {12, 100}}), 250, true);
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(revisions(out[0]), (std::vector<std::int64_t>{10}));
  EXPECT_FALSE(out[0].fragment());
  EXPECT_EQ(revisions(out[1]), (std::vector<std::int64_t>{11, 11}));
  EXPECT_TRUE(out[1].fragment());
  EXPECT_EQ(revisions(out[2]), (std::vector<std::int64_t>{11}));
  EXPECT_FALSE(out[2].fragment()) << "the revision's last fragment";
  EXPECT_EQ(revisions(out[3]), (std::vector<std::int64_t>{12}));
}

}  // namespace
}  // namespace rdb::etcd
