#include "server/hibernation.h"

#include <gtest/gtest.h>

namespace rdb {
namespace {

TEST(StoreLivenessTest, AStoreNeverHeardFromGetsOneTimeoutOfGrace) {
  StoreLiveness l(1000);
  EXPECT_TRUE(l.is_live(7, 5'000));  // first asked: grace starts now
  EXPECT_TRUE(l.is_live(7, 5'999));
  EXPECT_FALSE(l.is_live(7, 6'000));
}

TEST(StoreLivenessTest, HearingFromAStoreKeepsItLive) {
  StoreLiveness l(1000);
  l.heard(3, 100);
  EXPECT_TRUE(l.is_live(3, 1'099));
  EXPECT_FALSE(l.is_live(3, 1'100));
  l.heard(3, 1'500);
  EXPECT_TRUE(l.is_live(3, 2'000));
}

TEST(StoreLivenessTest, ASilentStoreIsReportedOncePerSilence) {
  StoreLiveness l(1000);
  l.heard(1, 0);
  l.heard(2, 0);
  EXPECT_TRUE(l.newly_silent(999).empty());
  l.heard(2, 900);
  EXPECT_EQ(l.newly_silent(1'000), std::vector<std::uint64_t>{1});
  EXPECT_TRUE(l.newly_silent(1'500).empty()) << "store 1 was reported already";
  EXPECT_EQ(l.newly_silent(1'900), std::vector<std::uint64_t>{2});
  l.heard(1, 2'000);  // back: a later silence is reported again
  EXPECT_TRUE(l.newly_silent(2'500).empty());
  EXPECT_EQ(l.newly_silent(3'000), std::vector<std::uint64_t>{1});
}

TEST(HibernationTest, OnlyHeartbeatsOfTheCurrentTermLeaveASleepingPeerAsleep) {
  raftpb::Message m;
  m.set_term(5);
  m.set_type(raftpb::MSG_HEARTBEAT);
  EXPECT_FALSE(message_wakes(m, 5));
  m.set_type(raftpb::MSG_HEARTBEAT_RESP);
  EXPECT_FALSE(message_wakes(m, 5));
  EXPECT_TRUE(message_wakes(m, 4)) << "a heartbeat of another term changes who leads";
  for (auto t : {raftpb::MSG_APP, raftpb::MSG_APP_RESP, raftpb::MSG_PRE_VOTE, raftpb::MSG_VOTE, raftpb::MSG_TIMEOUT_NOW,
                 raftpb::MSG_SNAP}) {
    m.set_type(t);
    EXPECT_TRUE(message_wakes(m, 5)) << raftpb::MessageType_Name(t);
  }
}

}  // namespace
}  // namespace rdb
