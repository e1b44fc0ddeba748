// LocalReader alone: what a published lease lets through, and what it sends to Raft.
#include "server/local_reader.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace rdb {
namespace {

ReadLease lease_for(std::uint64_t id, const std::string& start, const std::string& end) {
  ReadLease l;
  l.region.set_id(id);
  l.region.set_start_key(start);
  l.region.set_end_key(end);
  l.region.mutable_region_epoch()->set_conf_ver(2);
  l.region.mutable_region_epoch()->set_version(3);
  l.term = 7;
  l.until_ms = 1'000;
  l.renew_from_ms = 800;
  return l;
}

kvrpc::Context ctx_for(std::uint64_t id) {
  kvrpc::Context c;
  c.set_region_id(id);
  c.mutable_region_epoch()->set_conf_ver(2);
  c.mutable_region_epoch()->set_version(3);
  return c;
}

using Verdict = LocalReader::Verdict;

TEST(LocalReaderTest, ServesOnlyAMatchingReadInsideTheLease) {
  LocalReader r;
  const std::vector<std::string> in{"b", "c"};
  EXPECT_EQ(r.check(ctx_for(1), in, 10), Verdict::kAskRaft) << "nothing published";
  r.publish(lease_for(1, "b", "d"));
  metapb::Region region;
  EXPECT_EQ(r.check(ctx_for(1), in, 10, &region), Verdict::kServe);
  EXPECT_EQ(region.end_key(), "d");
  EXPECT_EQ(r.check(ctx_for(2), in, 10), Verdict::kAskRaft) << "another region";
  const std::vector<std::string> out{"b", "d"};
  EXPECT_EQ(r.check(ctx_for(1), out, 10), Verdict::kAskRaft) << "a key past the range";
  const std::vector<std::string> before{"a"};
  EXPECT_EQ(r.check(ctx_for(1), before, 10), Verdict::kAskRaft) << "a key before the range";
  auto stale = ctx_for(1);
  stale.mutable_region_epoch()->set_version(2);
  EXPECT_EQ(r.check(stale, in, 10), Verdict::kAskRaft) << "another version";
  auto conf = ctx_for(1);
  conf.mutable_region_epoch()->set_conf_ver(3);
  EXPECT_EQ(r.check(conf, in, 10), Verdict::kAskRaft) << "another conf_ver";
  auto term = ctx_for(1);
  term.set_term(6);
  EXPECT_EQ(r.check(term, in, 10), Verdict::kAskRaft) << "another term";
  term.set_term(7);
  EXPECT_EQ(r.check(term, in, 10), Verdict::kServe) << "its term";
  EXPECT_EQ(r.check(ctx_for(1), in, 999), Verdict::kServeAndRenew);
  EXPECT_EQ(r.check(ctx_for(1), in, 1'000), Verdict::kAskRaft) << "the lease ended";
  r.revoke(1);
  EXPECT_EQ(r.check(ctx_for(1), in, 10), Verdict::kAskRaft) << "revoked";
  EXPECT_EQ(r.size(), 0u);
}

TEST(LocalReaderTest, TheLastThirdAsksForARenewalOncePerPublishedLease) {
  LocalReader r;
  const std::vector<std::string> k{"k"};
  r.publish(lease_for(1, "", ""));
  EXPECT_EQ(r.check(ctx_for(1), k, 799), Verdict::kServe);
  EXPECT_EQ(r.check(ctx_for(1), k, 800), Verdict::kServeAndRenew);
  EXPECT_EQ(r.check(ctx_for(1), k, 801), Verdict::kServe) << "asked twice";
  auto renewed = lease_for(1, "", "");
  renewed.until_ms = 2'000;
  renewed.renew_from_ms = 1'800;
  r.publish(renewed);
  EXPECT_EQ(r.check(ctx_for(1), k, 1'500), Verdict::kServe) << "the renewed lease";
  EXPECT_EQ(r.check(ctx_for(1), k, 1'800), Verdict::kServeAndRenew) << "the renewed lease asks again";
}

}  // namespace
}  // namespace rdb
