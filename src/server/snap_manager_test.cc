// SnapManager on its own: a region's keys go from one engine to another as table
// files, generated off the caller's thread and verified before anyone may use them.
#include "server/snap_manager.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "server/snapshot_data.h"
#include "storage/rocks_engine.h"
#include "support/process.h"
#include "support/temp_dir.h"

namespace rdb {
namespace {

class SnapManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    from_ = std::move(RocksEngine::open(dir_.sub("from"))).value();
    to_ = std::move(RocksEngine::open(dir_.sub("to"))).value();
    sender_ = std::make_unique<SnapManager>(*from_, SnapManager::Options{dir_.sub("from-snap"), nullptr});
    receiver_ = std::make_unique<SnapManager>(*to_, SnapManager::Options{dir_.sub("to-snap"), nullptr, 4, 1});
    ASSERT_TRUE(sender_->open({}).is_ok());
    ASSERT_TRUE(receiver_->open({}).is_ok());
    region_.set_id(7);
    region_.set_start_key("b");
    region_.set_end_key("d");
    region_.mutable_region_epoch()->set_conf_ver(2);
    region_.mutable_region_epoch()->set_version(3);
    auto* p = region_.add_peers();
    p->set_id(70);
    p->set_store_id(1);
    p = region_.add_peers();
    p->set_id(71);
    p->set_store_id(2);
  }
  void TearDown() override {
    sender_.reset();
    receiver_.reset();
  }

  SnapManager::Source source(const metapb::Region& region, std::uint64_t index) {
    raft::SnapshotMetadata meta;
    meta.set_index(index);
    meta.set_term(4);
    meta.mutable_conf_state()->add_voters(70);
    return {region, meta, from_->snapshot()};
  }

  // Asks until the generator delivered (Raft asks again on heartbeats the same way).
  raft::Snapshot generated(const metapb::Region& region, std::uint64_t index) {
    Result<raft::Snapshot> snap = raft::snapshot_temporarily_unavailable();
    EXPECT_TRUE(testing::poll_until(
        [&] {
          snap =
              sender_->snapshot_for(region.id(), index, region.region_epoch(), [&] { return source(region, index); });
          return snap.is_ok();
        },
        std::chrono::seconds(20)));
    return snap.is_ok() ? *snap : raft::Snapshot();
  }

  raftsvc::RaftMessage message_for(const metapb::Region& region, const raft::Snapshot& snap) {
    raftsvc::RaftMessage m;
    m.set_region_id(region.id());
    *m.mutable_to_peer() = region.peers(1);
    *m.mutable_region() = region;
    m.mutable_message()->set_type(raftpb::MSG_SNAP);
    *m.mutable_message()->mutable_snapshot() = snap;
    return m;
  }

  // Streams the generated files into the receiver; the message to deliver, or the error.
  Result<raftsvc::RaftMessage> transfer(const metapb::Region& region, const raft::Snapshot& snap) {
    auto files = sender_->files_to_send(region.id(), snap.metadata());
    if (!files) {
      return ServerStatus::not_found("generated snapshot is gone");
    }
    std::uint64_t total = 0;
    for (const auto& f : *files) {
      total += std::filesystem::file_size(f);
    }
    RDB_ASSIGN_OR_RETURN(auto r, receiver_->receive(message_for(region, snap), total));
    Status written = Status::ok();
    RDB_RETURN_IF_ERROR(stream_snapshot_files(*files, 1000, nullptr, [&](std::string_view b) {
      written = r->write(b);
      return written.is_ok();
    }));
    RDB_RETURN_IF_ERROR(written);
    return r->finish();
  }

  testing::TempDir dir_;
  std::unique_ptr<RocksEngine> from_;
  std::unique_ptr<RocksEngine> to_;
  std::unique_ptr<SnapManager> sender_;
  std::unique_ptr<SnapManager> receiver_;
  metapb::Region region_;
};

TEST_F(SnapManagerTest, RegionTravelsAsFilesAndIsIngestedWhole) {
  for (const char* k : {"a", "b", "b1", "c", "d", "e"}) {
    ASSERT_TRUE(from_->raw_put(k, std::string("v-") + k).is_ok());
  }
  ASSERT_TRUE(from_->compare_and_swap("c", 0, std::string("versioned")).is_ok());
  auto snap = generated(region_, 10);
  auto d = verify_snapshot_descriptor(snap.data(), 7, region_.peers(1));
  ASSERT_TRUE(d.is_ok()) << d.status().to_string();
  ASSERT_EQ(d->files_size(), 2);  // raw and versioned
  EXPECT_EQ(d->files(0).keys(), 3u) << "only the region's range: b, b1, c";
  EXPECT_EQ(snap.metadata().index(), 10u);
  // Writes after the view was taken are not in it, and the same snapshot is handed out again.
  ASSERT_TRUE(from_->raw_put("b2", "late").is_ok());
  auto again = sender_->snapshot_for(7, 10, region_.region_epoch(), [&]() -> SnapManager::Source {
    ADD_FAILURE() << "a current snapshot is reused, not regenerated";
    return source(region_, 10);
  });
  ASSERT_TRUE(again.is_ok());

  auto msg = transfer(region_, snap);
  ASSERT_TRUE(msg.is_ok()) << msg.status().to_string();
  EXPECT_TRUE(receiver_->has_received(7, snap.metadata()));
  auto files = receiver_->take_received(7, snap.metadata());
  ASSERT_TRUE(files.has_value());
  EXPECT_FALSE(receiver_->has_received(7, snap.metadata())) << "taken once";
  ASSERT_TRUE(to_->ingest_sst(*files).is_ok());
  SnapManager::remove_files(*files);
  EXPECT_EQ(to_->raw_get("b1")->value(), "v-b1");
  EXPECT_FALSE(to_->raw_get("a")->has_value());
  EXPECT_FALSE(to_->raw_get("d")->has_value());
  EXPECT_FALSE(to_->raw_get("b2")->has_value());
  EXPECT_EQ(to_->get("c")->value, "versioned");
  EXPECT_TRUE(std::filesystem::is_empty(dir_.sub("to-snap")));
}

TEST_F(SnapManagerTest, StaleSnapshotsAreRegeneratedNotReused) {
  ASSERT_TRUE(from_->raw_put("b", "1").is_ok());
  auto first = generated(region_, 10);
  // The log was compacted past it: a follower could not continue after it.
  auto later = generated(region_, 20);
  EXPECT_EQ(later.metadata().index(), 20u);
  // A membership change since: the old one may not hold the peer it is for.
  auto newer = region_;
  newer.mutable_region_epoch()->set_conf_ver(3);
  auto changed = generated(newer, 20);
  auto d = verify_snapshot_descriptor(changed.data(), 7, region_.peers(1));
  ASSERT_TRUE(d.is_ok());
  EXPECT_EQ(d->region().region_epoch().conf_ver(), 3u);
  EXPECT_FALSE(sender_->files_to_send(7, first.metadata()).has_value()) << "replaced files are deleted";
  sender_->forget(7);
  EXPECT_TRUE(std::filesystem::is_empty(dir_.sub("from-snap")));
}

TEST_F(SnapManagerTest, EmptyRegionAndBoundedReceivedSnapshots) {
  auto empty = generated(region_, 10);  // nothing in [b, d)
  auto d = verify_snapshot_descriptor(empty.data(), 7, region_.peers(1));
  ASSERT_TRUE(d.is_ok());
  EXPECT_EQ(d->files_size(), 0);
  ASSERT_TRUE(transfer(region_, empty).is_ok());
  EXPECT_TRUE(receiver_->has_received(7, empty.metadata()));
  // Another region's snapshot arrives; this receiver keeps one: the older goes.
  auto other = region_;
  other.set_id(8);
  other.set_start_key("x");
  other.clear_end_key();
  ASSERT_TRUE(from_->raw_put("y", "1").is_ok());
  auto snap8 = generated(other, 5);
  ASSERT_TRUE(transfer(other, snap8).is_ok());
  EXPECT_TRUE(receiver_->has_received(8, snap8.metadata()));
  EXPECT_FALSE(receiver_->has_received(7, empty.metadata()));
  receiver_->forget(8);
  EXPECT_TRUE(std::filesystem::is_empty(dir_.sub("to-snap")));
}

TEST_F(SnapManagerTest, ReceivingIsBoundedAndCleansUp) {
  ASSERT_TRUE(from_->raw_put("b", "1").is_ok());
  auto snap = generated(region_, 10);
  auto d = verify_snapshot_descriptor(snap.data(), 7, region_.peers(1));
  ASSERT_TRUE(d.is_ok());
  std::uint64_t total = d->files(0).size();
  std::vector<std::unique_ptr<SnapshotReceiver>> open;
  for (int i = 0; i < 4; ++i) {
    auto r = receiver_->receive(message_for(region_, snap), total);
    ASSERT_TRUE(r.is_ok());
    ASSERT_TRUE((*r)->write("partial").is_ok());
    open.push_back(std::move(r).value());
  }
  auto fifth = receiver_->receive(message_for(region_, snap), total);
  EXPECT_EQ(fifth.status().code(), ServerCode::kBusy) << "at most 4 arrive at once";
  EXPECT_FALSE(open[0]->finish().is_ok()) << "bytes are missing";
  open.clear();  // abandoned streams delete what they wrote
  EXPECT_TRUE(std::filesystem::is_empty(dir_.sub("to-snap")));
  EXPECT_TRUE(receiver_->receive(message_for(region_, snap), total).is_ok()) << "slots are freed";
  // A snapshot for a store with no room is refused before a byte is written.
  auto tiny = std::make_shared<DiskSpace>(dir_.sub("to"), ~std::uint64_t{0} / 2);
  SnapManager full(*to_, SnapManager::Options{dir_.sub("full-snap"), tiny});
  ASSERT_TRUE(full.open({}).is_ok());
  EXPECT_EQ(full.receive(message_for(region_, snap), total).status().code(), ServerCode::kBusy);

  // Room is counted for the snapshots already arriving: two that each fit alone do not
  // fit together.
  auto disk = std::make_shared<DiskSpace>(dir_.sub("to"), 0);
  SnapManager counted(*to_, SnapManager::Options{dir_.sub("counted-snap"), disk});
  ASSERT_TRUE(counted.open({}).is_ok());
  const std::uint64_t big = disk->available_bytes() / 10 * 6;
  raftsvc::SnapshotDescriptor huge;
  *huge.mutable_region() = region_;
  auto* f = huge.add_files();
  f->set_cf("raw");
  f->set_size(big);
  f->set_crc32(0);
  f->set_keys(1);
  raft::Snapshot big_snap = snap;
  big_snap.set_data(huge.SerializeAsString());
  auto first = counted.receive(message_for(region_, big_snap), big);
  ASSERT_TRUE(first.is_ok()) << first.status().to_string();
  EXPECT_EQ(counted.receive(message_for(region_, big_snap), big).status().code(), ServerCode::kBusy);
  first = Status::unavailable("abandoned");  // frees its room
  EXPECT_TRUE(counted.receive(message_for(region_, big_snap), big).is_ok());
}

}  // namespace
}  // namespace rdb
