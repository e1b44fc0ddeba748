// A store whose disk fills up refuses writes and keeps serving reads — also after a
// write that passed the door on an old free-space figure failed to persist and its
// peer had to reload from disk (the reloaded peer must be able to elect itself).
#include <gtest/gtest.h>

#include <atomic>

#include "server/disk_space.h"
#include "server/raft_store_fixture.h"

namespace rdb {
namespace {

class FullDiskStoreTest : public SteppedRaftStoreTest {
 protected:
  void SetUp() override {
    SteppedRaftStoreTest::SetUp();
    configure_ = [this](RaftStoreConfig& c) { c.disk = disk_; };
  }

  static constexpr std::uint64_t kMinFree = std::uint64_t{16} << 20;
  static constexpr std::uint64_t kRoomy = std::uint64_t{1} << 40;

  // Asks for reads on `store`, time stepping, until one is served; whether one was.
  bool step_until_read_served(std::uint64_t store) {
    auto served = std::make_shared<std::atomic<bool>>(false);
    return step_until([&] {
      if (served->load()) {
        return true;
      }
      nodes_[store].store->read_index(context(), {"k"}, [served](auto err) {
        if (!err) {
          served->store(true);
        }
      });
      return false;
    });
  }

  std::atomic<std::uint64_t> available_{kRoomy};
  std::atomic<int> roomy_reads_{0};  // reads of the free space still answered kRoomy, whatever available_
  std::shared_ptr<DiskSpace> disk_ = std::make_shared<DiskSpace>(kMinFree, [this]() -> std::uint64_t {
    for (int n = roomy_reads_.load(); n > 0;) {
      if (roomy_reads_.compare_exchange_weak(n, n - 1)) {
        return kRoomy;
      }
    }
    return available_.load();
  });
};

TEST_F(FullDiskStoreTest, APeerReloadedAfterAFailedWriteOnAFullDiskLeadsAndServesReadsAgain) {
  start_all({1});
  ASSERT_EQ(step_until_leader(), 1u);
  ASSERT_FALSE(write_on(1, put("k", "v")).region_error);

  // The write passes the door, then the disk fills (under half the minimum) before the
  // store persists it: nothing of it may be written, and its peer reloads from disk.
  // (The store's loop runs on its own thread: the disk is full already, but the door
  // reads one more roomy figure.)
  auto answered = std::make_shared<std::promise<ProposeResult>>();
  auto f = answered->get_future();
  roomy_reads_ = 1;
  available_ = kMinFree * 3 / 8;
  nodes_[1].store->propose(context(), {"late"}, put("late", "x"),
                           [answered](ProposeResult r) { answered->set_value(std::move(r)); });
  ASSERT_EQ(roomy_reads_.load(), 0) << "the door did not read the free space";
  ASSERT_TRUE(step_until([&] { return f.wait_for(std::chrono::seconds(0)) == std::future_status::ready; }));
  ProposeResult late = f.get();
  EXPECT_TRUE(late.region_error.has_value() || late.undetermined) << "a write that was not persisted succeeded";

  // The reloaded peer elects itself (its vote and empty entry fit in the space kept for
  // Raft's bookkeeping) and serves reads while the disk stays full.
  ASSERT_TRUE(step_until_read_served(1)) << "the reloaded peer never served a read on the full disk";
  EXPECT_TRUE(has_value(1, "k", "v"));
  EXPECT_FALSE(has_value(1, "late", "x")) << "a write that failed to persist was applied";
  ProposeResult refused = write_on(1, put("refused", "x"));
  ASSERT_TRUE(refused.region_error.has_value()) << "a write was accepted on a full disk";
  EXPECT_TRUE(refused.region_error->has_disk_full()) << refused.region_error->message();

  // Space returns: writes go on.
  available_ = kRoomy;
  EXPECT_FALSE(write_on(1, put("after", "y")).region_error);
  EXPECT_TRUE(has_value(1, "after", "y"));
}

TEST_F(FullDiskStoreTest, ThreeReplicasOnFullDisksRefuseWritesServeReadsAndResume) {
  // One probe for all: every store's disk is full at once.
  start_all({1, 2, 3});
  std::uint64_t leader = step_until_leader();
  ASSERT_FALSE(write_on(leader, put("k", "v")).region_error);
  available_ = kMinFree * 3 / 8;
  ProposeResult refused = write_on(leader, put("refused", "x"));
  ASSERT_TRUE(refused.region_error.has_value());
  EXPECT_TRUE(refused.region_error->has_disk_full()) << refused.region_error->message();
  EXPECT_TRUE(step_until_read_served(leader));
  available_ = kRoomy;
  EXPECT_FALSE(write_on(leader, put("after", "y")).region_error);
  for (std::uint64_t s = 1; s <= 3; ++s) {
    EXPECT_TRUE(step_until([&] { return has_value(s, "after", "y"); })) << "store " << s;
    EXPECT_FALSE(has_value(s, "refused", "x")) << "store " << s;
  }
}

}  // namespace
}  // namespace rdb
