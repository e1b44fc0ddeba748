// The C++ client against real rdb-pd and rdb-server processes.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <fstream>
#include <functional>
#include <future>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <tuple>

#include "client/tso_batcher.h"
#include "common/grpc_setup.h"
#include "common/limits.h"
#include "held_pool.h"
#include "kvrpc.grpc.pb.h"
#include "local_cluster.h"
#include "pdpb.grpc.pb.h"
#include "raftsvc.grpc.pb.h"
#include "rdb/client.h"

namespace rdb {
namespace {

using testing::LocalCluster;

class ClientIntegrationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // Every API is exercised against a replicated cluster: three stores, three replicas.
    cluster_ = new LocalCluster();
    // With TSO on plain TCP too: the client moves there (TsoIsStrictlyIncreasingAndBatched checks it).
    cluster_->start_pd({"--max-replicas", "3", "--store-up-window-ms", "2000", "--tso-addr", "127.0.0.1:0"});
    cluster_->start_store("s1");
    cluster_->start_store("s2");
    cluster_->start_store("s3");
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  std::unique_ptr<RdbClient> client(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    ClientOptions o;
    o.pd_endpoints = {cluster_->pd().addr};
    o.timeout = timeout;
    auto c = RdbClient::connect(o);
    EXPECT_TRUE(c.is_ok()) << c.status().to_string();
    return std::move(c).value();
  }

  // A counter summed over the three stores (`name` with its labels, as /metrics prints it).
  static std::uint64_t stores_metric(const std::string& name) {
    std::uint64_t sum = 0;
    for (const char* s : {"s1", "s2", "s3"}) {
      sum += cluster_->metric(cluster_->store(s).status_addr, name);
    }
    return sum;
  }

  // The leader store's address and a routing context for its region: BatchCommands
  // requests behave as their unary RPCs, so only the leader serves them.
  // Waits until the region has its three voters, so its epoch no longer changes under the test.
  std::pair<std::string, kvrpc::Context> leader_route() {
    // The client writes first so the region has elected its leader.
    EXPECT_TRUE(client()->raw_put("it/probe", "p").is_ok());
    std::string leader_addr;
    kvrpc::Context region_ctx;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (leader_addr.empty() && std::chrono::steady_clock::now() < deadline) {
      for (const char* name : {"s1", "s2", "s3"}) {
        auto stub =
            kvrpc::Kv::NewStub(grpc::CreateChannel(cluster_->store(name).addr, grpc::InsecureChannelCredentials()));
        kvrpc::StoreInfoResponse info;
        grpc::ClientContext info_ctx;
        if (!stub->StoreInfo(&info_ctx, kvrpc::StoreInfoRequest(), &info).ok() || info.regions_size() == 0) {
          continue;
        }
        const auto& peers = info.regions(0).peers();
        if (peers.size() != 3 ||
            std::any_of(peers.begin(), peers.end(), [](const auto& p) { return p.is_learner(); })) {
          continue;  // PD is still adding replicas: each step bumps the epoch
        }
        region_ctx.set_region_id(info.regions(0).id());
        *region_ctx.mutable_region_epoch() = info.regions(0).region_epoch();
        kvrpc::RawGetRequest probe;
        *probe.mutable_context() = region_ctx;
        probe.set_key("it/probe");
        kvrpc::RawGetResponse probe_resp;
        grpc::ClientContext probe_ctx;
        if (stub->RawGet(&probe_ctx, probe, &probe_resp).ok() && !probe_resp.has_region_error()) {
          leader_addr = cluster_->store(name).addr;
          break;
        }
      }
    }
    return {leader_addr, region_ctx};
  }

  // rdb_raft_proposals_total of the store serving `addr`, read from its /metrics.
  static std::uint64_t proposals_of(const std::string& addr) {
    for (const char* name : {"s1", "s2", "s3"}) {
      if (cluster_->store(name).addr != addr) {
        continue;
      }
      return cluster_->metric(cluster_->store(name).status_addr, "rdb_raft_proposals_total");
    }
    return 0;
  }
  static LocalCluster* cluster_;
};
LocalCluster* ClientIntegrationTest::cluster_ = nullptr;

TEST_F(ClientIntegrationTest, RawOperationsEndToEnd) {
  auto c = client();
  ASSERT_TRUE(c->raw_put("it/a", "1").is_ok());
  ASSERT_TRUE(c->raw_put("it/b", "2").is_ok());
  ASSERT_TRUE(c->raw_put("it/c", "3").is_ok());
  EXPECT_EQ(c->raw_get("it/a")->value(), "1");
  EXPECT_FALSE(c->raw_get("it/missing")->has_value());

  auto scan = c->raw_scan("it/", "it0", {10, false, false});
  ASSERT_TRUE(scan.is_ok()) << scan.status().to_string();
  EXPECT_EQ(*scan, (std::vector<KeyValue>{{"it/a", "1"}, {"it/b", "2"}, {"it/c", "3"}}));
  auto rev = c->raw_scan("it/", "it0", {2, true, true});
  ASSERT_TRUE(rev.is_ok());
  EXPECT_EQ(*rev, (std::vector<KeyValue>{{"it/c", ""}, {"it/b", ""}}));

  ASSERT_TRUE(c->raw_batch_put({{"it/x", "x"}, {"it/y", "y"}}).is_ok());
  auto batch = c->raw_batch_get({"it/y", "it/nope", "it/x"});
  ASSERT_TRUE(batch.is_ok());
  EXPECT_EQ(*batch, (std::vector<KeyValue>{{"it/y", "y"}, {"it/x", "x"}}));
  ASSERT_TRUE(c->raw_batch_delete({"it/x", "it/y"}).is_ok());
  EXPECT_TRUE(c->raw_batch_get({"it/x", "it/y"})->empty());

  ASSERT_TRUE(c->raw_delete("it/a").is_ok());
  EXPECT_FALSE(c->raw_get("it/a")->has_value());
  ASSERT_TRUE(c->raw_delete_range("it/", "it0").is_ok());
  EXPECT_TRUE(c->raw_scan("it/", "it0", {10, false, false})->empty());
}

TEST_F(ClientIntegrationTest, CasAndVersionedGetEndToEnd) {
  auto c = client();
  auto created = c->cas("it/cas", 0, std::string("v1"));
  ASSERT_TRUE(created.is_ok()) << created.status().to_string();
  EXPECT_TRUE(created->succeeded);
  auto conflict = c->cas("it/cas", 0, std::string("v2"));
  ASSERT_TRUE(conflict.is_ok());
  EXPECT_FALSE(conflict->succeeded);
  EXPECT_EQ(conflict->current_value, "v1");
  EXPECT_EQ(conflict->version, created->version);
  auto got = c->get("it/cas");
  ASSERT_TRUE(got.is_ok());
  EXPECT_TRUE(got->found);
  EXPECT_EQ(got->value, "v1");
  auto deleted = c->cas("it/cas", got->version, std::nullopt);
  ASSERT_TRUE(deleted->succeeded);
  EXPECT_FALSE(c->get("it/cas")->found);
  auto recreated = c->cas("it/cas", 0, std::string("v3"));
  ASSERT_TRUE(recreated->succeeded);
  EXPECT_GT(recreated->version, deleted->version);
}

TEST_F(ClientIntegrationTest, BadInputIsRejectedWithTheLimitNamed) {
  auto c = client();
  Status empty = c->raw_put("", "v");
  EXPECT_EQ(empty.code(), StatusCode::kInvalidArgument);
  Status big = c->raw_put(std::string(kMaxKeySize + 1, 'k'), "v");
  EXPECT_NE(big.message().find("8 KiB"), std::string::npos);
  auto scan = c->raw_scan("a", "", {kMaxScanLimit + 1, false, false});
  EXPECT_NE(scan.status().message().find("10240"), std::string::npos);
  EXPECT_EQ(c->raw_delete_range("b", "a").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(c->get_tso(0).status().code(), StatusCode::kInvalidArgument);
  // Largest value round-trips (gRPC message limits are raised to fit it). 8 MiB through
  // three synced replicas is slow under ASan on a busy 2-core machine (it once took over the
  // default 10 s): this checks the limits, not the speed, so it gets a patient client.
  ClientOptions patient;
  patient.pd_endpoints = {cluster_->pd().addr};
  patient.timeout = std::chrono::seconds(60);
  patient.attempt_timeout = std::chrono::seconds(10);
  auto slow = std::move(RdbClient::connect(patient)).value();
  std::string large(kMaxValueSize, 'v');
  Status put = slow->raw_put("it/large", large);
  ASSERT_TRUE(put.is_ok()) << put.to_string();
  EXPECT_EQ(slow->raw_get("it/large")->value().size(), kMaxValueSize);
}

TEST_F(ClientIntegrationTest, ServerValidatesWhatAClientDidNotCheck) {
  // Speak to the store with a raw stub, skipping the client library's own checks.
  auto stub = kvrpc::Kv::NewStub(grpc::CreateChannel(cluster_->store("s1").addr, grpc::InsecureChannelCredentials()));
  kvrpc::StoreInfoResponse info;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(stub->StoreInfo(&ctx, kvrpc::StoreInfoRequest(), &info).ok());
  }
  ASSERT_EQ(info.regions_size(), 1);
  kvrpc::Context region_ctx;
  region_ctx.set_region_id(info.regions(0).id());
  *region_ctx.mutable_region_epoch() = info.regions(0).region_epoch();

  kvrpc::RawBatchPutRequest req;
  *req.mutable_context() = region_ctx;
  auto* ok = req.add_pairs();
  ok->set_key("it/ok");
  ok->set_value("v");
  auto* bad = req.add_pairs();
  bad->set_key("");
  bad->set_value("v");
  kvrpc::RawBatchPutResponse resp;
  grpc::ClientContext ctx;
  grpc::Status s = stub->RawBatchPut(&ctx, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("empty"), std::string::npos) << s.error_message();
  EXPECT_FALSE(client()->raw_get("it/ok")->has_value()) << "a rejected batch wrote part of itself";

  // A request for a region the store does not have is a structured region error.
  kvrpc::RawGetRequest get;
  get.mutable_context()->set_region_id(424242);
  get.set_key("k");
  kvrpc::RawGetResponse get_resp;
  grpc::ClientContext get_ctx;
  ASSERT_TRUE(stub->RawGet(&get_ctx, get, &get_resp).ok());
  EXPECT_TRUE(get_resp.region_error().has_region_not_found());

  // A stale epoch gets EpochNotMatch carrying the current region.
  kvrpc::RawGetRequest stale;
  *stale.mutable_context() = region_ctx;
  stale.mutable_context()->mutable_region_epoch()->set_version(region_ctx.region_epoch().version() + 5);
  stale.set_key("k");
  kvrpc::RawGetResponse stale_resp;
  grpc::ClientContext stale_ctx;
  ASSERT_TRUE(stub->RawGet(&stale_ctx, stale, &stale_resp).ok());
  ASSERT_TRUE(stale_resp.region_error().has_epoch_not_match());
  EXPECT_EQ(stale_resp.region_error().epoch_not_match().current_regions(0).id(), info.regions(0).id());
}

// Responses and writes are bounded in bytes: a scan larger than one response is
// continued by the client, a batch get over the bound is refused, and a batch put
// too large for one Raft entry is refused at the door (by the client and, when a
// raw stub skips the client, by the store) with nothing written.
TEST_F(ClientIntegrationTest, LargeReadsAndWritesStayWithinMessageBounds) {
  auto c = client(std::chrono::seconds(60));
  const std::string big(kMaxValueSize, 'v');  // 8 MiB
  for (int i = 0; i < 5; ++i) {               // 40 MiB: more than one 32 MiB response
    ASSERT_TRUE(c->raw_put("big/" + std::to_string(i), big).is_ok());
  }
  for (bool reverse : {false, true}) {
    auto all = c->raw_scan("big/", "big0", {.limit = 10, .reverse = reverse});
    ASSERT_TRUE(all.is_ok()) << all.status().to_string();
    ASSERT_EQ(all->size(), 5u) << "reverse " << reverse;
    EXPECT_EQ(all->front().key, reverse ? "big/4" : "big/0");
    EXPECT_EQ(all->back().key, reverse ? "big/0" : "big/4");
  }
  auto limited = c->raw_scan("big/", "big0", {.limit = 2});
  ASSERT_TRUE(limited.is_ok());
  EXPECT_EQ(limited->size(), 2u);
  std::vector<std::string> keys;
  for (int i = 0; i < 5; ++i) {
    keys.push_back("big/" + std::to_string(i));
  }
  auto bg = c->raw_batch_get(keys);
  EXPECT_EQ(bg.status().code(), StatusCode::kInvalidArgument) << bg.status().to_string();
  EXPECT_NE(bg.status().message().find("MiB"), std::string::npos) << bg.status().to_string();

  std::vector<KeyValue> huge;
  for (int i = 0; i < 7; ++i) {  // 56 MiB: under gRPC's cap, over one write's
    huge.push_back({"huge/" + std::to_string(i), big});
  }
  Status refused = c->raw_batch_put(huge);
  EXPECT_EQ(refused.code(), StatusCode::kInvalidArgument) << refused.to_string();
  // PD may know no leader for a moment (an election under load): wait for one.
  std::string leader;
  kvrpc::Context region_ctx;
  ASSERT_TRUE(testing::poll_until(
      [&] {
        std::tie(leader, region_ctx) = leader_route();
        return !leader.empty();
      },
      std::chrono::seconds(20)));
  auto stub = kvrpc::Kv::NewStub(grpc::CreateCustomChannel(leader, grpc::InsecureChannelCredentials(),
                                                           default_channel_args(kMaxGrpcMessageBytes)));
  kvrpc::RawBatchPutRequest req;
  *req.mutable_context() = region_ctx;
  for (const auto& kv : huge) {
    auto* p = req.add_pairs();
    p->set_key(kv.key);
    p->set_value(kv.value);
  }
  kvrpc::RawBatchPutResponse resp;
  grpc::ClientContext ctx;
  grpc::Status s = stub->RawBatchPut(&ctx, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_NE(s.error_message().find("MiB"), std::string::npos) << s.error_message();
  EXPECT_FALSE(c->raw_get("huge/0")->has_value());
  ASSERT_TRUE(c->raw_delete_range("big/", "big0").is_ok());
}

// Raft traffic names its cluster: a store refuses a stream of batches from another
// cluster, or with no cluster id at all (0 is not a wildcard); so does PD for requests.
TEST_F(ClientIntegrationTest, TrafficOfAnotherClusterIsRefused) {
  std::uint64_t cluster = client()->cluster_status()->cluster_id;
  ASSERT_NE(cluster, 0u);
  auto stub =
      raftsvc::Raft::NewStub(grpc::CreateChannel(cluster_->store("s1").addr, grpc::InsecureChannelCredentials()));
  for (std::uint64_t wrong : {std::uint64_t{0}, cluster + 1}) {
    grpc::ClientContext ctx;
    raftsvc::Done done;
    auto writer = stub->Send(&ctx, &done);
    raftsvc::RaftBatch batch;
    batch.set_cluster_id(wrong);
    (void)writer->Write(batch);
    (void)writer->WritesDone();
    grpc::Status s = writer->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION)
        << "cluster " << wrong << ": " << s.error_message();
  }
  auto pd = pdpb::PD::NewStub(grpc::CreateChannel(cluster_->pd().addr, grpc::InsecureChannelCredentials()));
  for (std::uint64_t wrong : {std::uint64_t{0}, cluster + 1}) {
    pdpb::GetStoreRequest req;
    req.mutable_header()->set_cluster_id(wrong);
    req.set_store_id(1);
    pdpb::GetStoreResponse resp;
    grpc::ClientContext ctx;
    ASSERT_TRUE(pd->GetStore(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.header().error().type(), pdpb::CLUSTER_ID_MISMATCH) << "cluster " << wrong;
  }
}

// PD validates what it stores: a region heartbeat whose leader is not a member, or
// whose epoch leaps beyond the changes PD asked for, and a store id PD never handed
// out are refused with a clear error; what PD knows stays as it was.
TEST_F(ClientIntegrationTest, PdRefusesWhatItNeverHandedOut) {
  auto c = client();
  auto st = c->cluster_status();
  ASSERT_TRUE(st.is_ok() && st->regions.size() == 1);
  const RegionInfo& known = st->regions[0];
  auto pd = pdpb::PD::NewStub(grpc::CreateChannel(cluster_->pd().addr, grpc::InsecureChannelCredentials()));
  auto heartbeat = [&](const std::function<void(pdpb::RegionHeartbeatRequest&)>& edit) {
    pdpb::RegionHeartbeatRequest req;
    req.mutable_header()->set_cluster_id(st->cluster_id);
    auto* r = req.mutable_region();
    r->set_id(known.id);
    r->set_start_key(known.start_key);
    r->set_end_key(known.end_key);
    r->mutable_region_epoch()->set_conf_ver(known.conf_ver);
    r->mutable_region_epoch()->set_version(known.version);
    for (const auto& p : known.peers) {
      auto* peer = r->add_peers();
      peer->set_id(p.id);
      peer->set_store_id(p.store_id);
      peer->set_is_learner(p.is_learner);
    }
    req.mutable_leader()->set_id(known.leader.id);
    req.mutable_leader()->set_store_id(known.leader.store_id);
    edit(req);
    pdpb::RegionHeartbeatResponse resp;
    grpc::ClientContext ctx;
    EXPECT_TRUE(pd->RegionHeartbeat(&ctx, req, &resp).ok());
    return resp.header().error();
  };
  auto outsider = heartbeat([](auto& req) { req.mutable_leader()->set_id(999'999); });
  EXPECT_EQ(outsider.type(), pdpb::INVALID_ARGUMENT);
  EXPECT_NE(outsider.message().find("not a member"), std::string::npos) << outsider.message();
  auto bogus_pending = heartbeat([](auto& req) { req.add_pending_peers()->set_id(999'999); });
  EXPECT_EQ(bogus_pending.type(), pdpb::INVALID_ARGUMENT);
  EXPECT_NE(bogus_pending.message().find("pending peer"), std::string::npos) << bogus_pending.message();
  auto leap = heartbeat([](auto& req) { req.mutable_region()->mutable_region_epoch()->set_conf_ver(~0ULL); });
  EXPECT_EQ(leap.type(), pdpb::INVALID_ARGUMENT);
  EXPECT_NE(leap.message().find("jumps"), std::string::npos) << leap.message();
  auto after = c->cluster_status();
  ASSERT_TRUE(after.is_ok());
  // None of it was adopted (the real region may have moved on meanwhile under load:
  // a new leader or membership is fine, the forged values are not).
  EXPECT_NE(after->regions[0].conf_ver, ~0ULL);
  EXPECT_NE(after->regions[0].leader.id, 999'999u);
  for (const auto& p : after->regions[0].peers) {
    EXPECT_NE(p.id, 999'999u);
  }

  pdpb::PutStoreRequest put;
  put.mutable_header()->set_cluster_id(st->cluster_id);
  put.mutable_store()->set_id(1'000'000'000);
  put.mutable_store()->set_address("127.0.0.1:1");
  pdpb::PutStoreResponse put_resp;
  grpc::ClientContext ctx;
  ASSERT_TRUE(pd->PutStore(&ctx, put, &put_resp).ok());
  EXPECT_EQ(put_resp.header().error().type(), pdpb::INVALID_ARGUMENT);
  EXPECT_NE(put_resp.header().error().message().find("never allocated"), std::string::npos);
}

TEST_F(ClientIntegrationTest, BatchCommandsAnswersEveryRequestOnceById) {
  auto [leader_addr, region_ctx] = leader_route();
  ASSERT_FALSE(leader_addr.empty());
  auto stub = kvrpc::Kv::NewStub(grpc::CreateChannel(leader_addr, grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  auto stream = stub->BatchCommands(&ctx);

  kvrpc::BatchCommandsRequest first;
  auto add = [&](kvrpc::BatchCommandsRequest& m, std::uint64_t id) {
    m.add_request_ids(id);
    return m.add_requests();
  };
  auto* put = add(first, 10)->mutable_raw_put();
  *put->mutable_context() = region_ctx;
  put->set_key("it/batch");
  put->set_value("b1");
  auto* cas = add(first, 11)->mutable_compare_and_swap();
  *cas->mutable_context() = region_ctx;
  cas->set_key("it/batch-cas");
  cas->set_new_value("c1");
  auto* empty_key = add(first, 12)->mutable_raw_put();
  *empty_key->mutable_context() = region_ctx;
  empty_key->set_value("v");
  add(first, 13);  // no command at all
  auto* lost = add(first, 14)->mutable_raw_get();
  lost->mutable_context()->set_region_id(424242);
  lost->set_key("it/batch");
  ASSERT_TRUE(stream->Write(first));

  std::map<std::uint64_t, kvrpc::BatchCommandsResponse::Response> answers;
  kvrpc::BatchCommandsResponse in;
  while (answers.size() < 5 && stream->Read(&in)) {
    ASSERT_EQ(in.request_ids_size(), in.responses_size());
    for (int i = 0; i < in.responses_size(); ++i) {
      EXPECT_TRUE(answers.emplace(in.request_ids(i), in.responses(i)).second) << "id answered twice";
    }
  }
  ASSERT_EQ(answers.size(), 5U);
  EXPECT_EQ(answers[10].status_code(), 0U);
  EXPECT_FALSE(answers[10].raw_put().has_region_error());
  EXPECT_EQ(answers[11].status_code(), 0U);
  EXPECT_TRUE(answers[11].compare_and_swap().succeeded());
  EXPECT_EQ(answers[12].status_code(), static_cast<std::uint32_t>(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_NE(answers[12].status_message().find("empty"), std::string::npos) << answers[12].status_message();
  EXPECT_EQ(answers[13].status_code(), static_cast<std::uint32_t>(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_TRUE(answers[14].raw_get().region_error().has_region_not_found());

  // Reads in a later message see the writes of the first.
  kvrpc::BatchCommandsRequest second;
  auto* get = add(second, 20)->mutable_raw_get();
  *get->mutable_context() = region_ctx;
  get->set_key("it/batch");
  auto* vget = add(second, 21)->mutable_get();
  *vget->mutable_context() = region_ctx;
  vget->set_key("it/batch-cas");
  ASSERT_TRUE(stream->Write(second));
  answers.clear();
  while (answers.size() < 2 && stream->Read(&in)) {
    for (int i = 0; i < in.responses_size(); ++i) {
      answers.emplace(in.request_ids(i), in.responses(i));
    }
  }
  ASSERT_EQ(answers.size(), 2U);
  EXPECT_EQ(answers[20].raw_get().value(), "b1");
  EXPECT_EQ(answers[21].get().value(), "c1");
  EXPECT_GT(answers[21].get().version(), 0U);

  // A message whose ids do not match its requests ends the stream.
  kvrpc::BatchCommandsRequest malformed;
  malformed.add_requests()->mutable_raw_get()->set_key("it/batch");
  ASSERT_TRUE(stream->Write(malformed));
  stream->WritesDone();
  while (stream->Read(&in)) {
  }
  grpc::Status end = stream->Finish();
  EXPECT_EQ(end.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(end.error_message().find("request_ids"), std::string::npos) << end.error_message();
}

TEST_F(ClientIntegrationTest, RawPutsSharingAMessageAreEachAppliedAndAnswered) {
  // The store groups the valid raw puts of one message into one Raft entry; each is
  // still answered on its own, in message order for the same key.
  auto [leader_addr, region_ctx] = leader_route();
  ASSERT_FALSE(leader_addr.empty());
  auto stub = kvrpc::Kv::NewStub(grpc::CreateChannel(leader_addr, grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  auto stream = stub->BatchCommands(&ctx);
  kvrpc::BatchCommandsRequest message;
  auto put = [&](std::uint64_t id, const std::string& key, const std::string& value) {
    message.add_request_ids(id);
    auto* p = message.add_requests()->mutable_raw_put();
    *p->mutable_context() = region_ctx;
    p->set_key(key);
    p->set_value(value);
  };
  constexpr int kPuts = 50;
  for (int i = 0; i < kPuts; ++i) {
    put(static_cast<std::uint64_t>(i), fmt::format("it/group/{}", i), fmt::format("v{}", i));
  }
  put(100, "it/group/dup", "first");
  put(101, "it/group/dup", "second");
  put(102, "", "an empty key is refused on its own");
  std::uint64_t proposals_before = proposals_of(leader_addr);
  ASSERT_TRUE(stream->Write(message));
  std::map<std::uint64_t, kvrpc::BatchCommandsResponse::Response> answers;
  kvrpc::BatchCommandsResponse in;
  while (answers.size() < kPuts + 3U && stream->Read(&in)) {
    for (int i = 0; i < in.responses_size(); ++i) {
      EXPECT_TRUE(answers.emplace(in.request_ids(i), in.responses(i)).second) << "id answered twice";
    }
  }
  ASSERT_EQ(answers.size(), kPuts + 3U);
  EXPECT_LT(proposals_of(leader_addr) - proposals_before, static_cast<std::uint64_t>(kPuts))
      << "the puts of one message were proposed one by one";
  for (auto& [id, answer] : answers) {
    if (id == 102) {
      EXPECT_EQ(answer.status_code(), static_cast<std::uint32_t>(grpc::StatusCode::INVALID_ARGUMENT));
    } else {
      EXPECT_EQ(answer.status_code(), 0U) << id << ": " << answer.status_message();
      EXPECT_TRUE(answer.has_raw_put()) << id;
      EXPECT_FALSE(answer.raw_put().has_region_error()) << id << ": " << answer.raw_put().region_error().message();
    }
  }
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());

  auto c = client();
  for (int i = 0; i < kPuts; ++i) {
    EXPECT_EQ(c->raw_get(fmt::format("it/group/{}", i))->value_or(""), fmt::format("v{}", i));
  }
  EXPECT_EQ(c->raw_get("it/group/dup")->value_or(""), "second");

  // A group sent with a stale epoch is refused as a whole, each put with the region error.
  kvrpc::BatchCommandsRequest stale;
  for (std::uint64_t id = 0; id < 3; ++id) {
    stale.add_request_ids(id);
    auto* p = stale.add_requests()->mutable_raw_put();
    *p->mutable_context() = region_ctx;
    p->mutable_context()->mutable_region_epoch()->set_version(region_ctx.region_epoch().version() + 7);
    p->set_key("it/group/stale");
    p->set_value("never");
  }
  grpc::ClientContext stale_ctx;
  auto stale_stream = stub->BatchCommands(&stale_ctx);
  ASSERT_TRUE(stale_stream->Write(stale));
  answers.clear();
  while (answers.size() < 3 && stale_stream->Read(&in)) {
    for (int i = 0; i < in.responses_size(); ++i) {
      answers.emplace(in.request_ids(i), in.responses(i));
    }
  }
  ASSERT_EQ(answers.size(), 3U);
  for (auto& [id, answer] : answers) {
    EXPECT_TRUE(answer.raw_put().region_error().has_epoch_not_match()) << id;
  }
  stale_stream->WritesDone();
  EXPECT_TRUE(stale_stream->Finish().ok());
  EXPECT_FALSE(c->raw_get("it/group/stale")->has_value());
}

TEST_F(ClientIntegrationTest, BatchedAndUnaryClientsSeeTheSameData) {
  ClientOptions o;
  o.pd_endpoints = {cluster_->pd().addr};
  o.batch_requests = false;
  auto unary = RdbClient::connect(o);
  ASSERT_TRUE(unary.is_ok());
  auto batched = client();
  // Many callers at once through one batched client; each reads back its own write.
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        std::string key = fmt::format("it/mix/{}/{}", t, i);
        if (!batched->raw_put(key, key).is_ok() || batched->raw_get(key)->value_or("") != key) {
          ++failures;
        }
      }
    });
  }
  for (auto& th : threads) {
    th.join();
  }
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ((*unary)->raw_get("it/mix/7/19")->value_or(""), "it/mix/7/19");
  ASSERT_TRUE((*unary)->raw_put("it/mix/unary", "u").is_ok());
  EXPECT_EQ(batched->raw_get("it/mix/unary")->value_or(""), "u");
}

// A list of PD endpoints whose first is dead: the client's PD module moves on to the
// next for every kind of PD call (routing, store lookup, cluster status, TSO stream).
TEST_F(ClientIntegrationTest, ADeadFirstPdEndpointIsSkipped) {
  ClientOptions o;
  o.pd_endpoints = {"127.0.0.1:1", cluster_->pd().addr};
  o.timeout = std::chrono::seconds(10);
  auto c = RdbClient::connect(o);
  ASSERT_TRUE(c.is_ok());
  ASSERT_TRUE((*c)->raw_put("it/pd-list", "v").is_ok());
  EXPECT_EQ((*c)->raw_get("it/pd-list")->value_or(""), "v");
  auto st = (*c)->cluster_status();
  ASSERT_TRUE(st.is_ok()) << st.status().to_string();
  EXPECT_FALSE(st->stores.empty());
  auto a = (*c)->get_tso(1);
  ASSERT_TRUE(a.is_ok()) << a.status().to_string();
  auto b = (*c)->get_tso(1);
  ASSERT_TRUE(b.is_ok()) << b.status().to_string();
  EXPECT_LT(*a, *b);
  // Only dead endpoints: a clear error within the deadline, naming a PD.
  ClientOptions dead;
  dead.pd_endpoints = {"127.0.0.1:1", "127.0.0.1:2"};
  dead.timeout = std::chrono::milliseconds(500);
  auto d = RdbClient::connect(dead);
  ASSERT_TRUE(d.is_ok());
  auto none = (*d)->cluster_status();
  ASSERT_FALSE(none.is_ok());
  EXPECT_NE(none.status().message().find("PD 127.0.0.1:"), std::string::npos) << none.status().to_string();
}

TEST_F(ClientIntegrationTest, DirectStoreModeWorksWithoutPd) {
  ClientOptions o;
  o.store_addr = leader_route().first;  // a direct client reaches only the store it names
  ASSERT_FALSE(o.store_addr.empty());
  auto c = RdbClient::connect(o);
  ASSERT_TRUE(c.is_ok());
  ASSERT_TRUE((*c)->raw_put("it/direct", "d").is_ok());
  EXPECT_EQ((*c)->raw_get("it/direct")->value(), "d");
  EXPECT_EQ((*c)->get_tso(1).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(ClientIntegrationTest, TsoIsStrictlyIncreasingAndBatched) {
  auto c = client();
  std::uint64_t last = 0;
  for (int i = 0; i < 100; ++i) {
    auto ts = c->get_tso(3);
    ASSERT_TRUE(ts.is_ok()) << ts.status().to_string();
    ASSERT_GT(*ts, last);
    last = *ts + 2;
  }

  // 64 concurrent callers share round trips.
  auto channel = grpc::CreateChannel(cluster_->pd().addr, grpc::InsecureChannelCredentials());
  TsoBatcher batcher(channel);
  batcher.set_cluster_id(client()->cluster_status()->cluster_id);
  constexpr int kThreads = 64;
  constexpr int kPerThread = 200;
  std::vector<std::vector<std::uint64_t>> got(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto ts = batcher.get(1, std::chrono::steady_clock::now() + std::chrono::seconds(10));
        ASSERT_TRUE(ts.is_ok()) << ts.status().to_string();
        got[static_cast<std::size_t>(t)].push_back(*ts);
      }
    });
  }
  for (auto& th : threads) {
    th.join();
  }
  std::set<std::uint64_t> all;
  for (const auto& v : got) {
    for (std::size_t i = 1; i < v.size(); ++i) {
      ASSERT_LT(v[i - 1], v[i]);
    }
    all.insert(v.begin(), v.end());
  }
  EXPECT_EQ(all.size(), static_cast<std::size_t>(kThreads * kPerThread));
  EXPECT_LT(batcher.requests_sent(), static_cast<std::uint64_t>(kThreads * kPerThread))
      << "concurrent callers were not batched";
  // PD named its TCP endpoint on the first gRPC answer, and the rest went there.
  EXPECT_EQ(batcher.tcp_streams_opened(), 1U);
  EXPECT_GT(cluster_->metric(cluster_->pd().status_addr, "rdb_pd_tso_tcp_requests_total"), 0U);
  EXPECT_EQ(cluster_->metric(cluster_->pd().status_addr, "rdb_pd_tso_tcp_bad_frames_total"), 0U);
}

// The TCP endpoint is plaintext: PD refuses it next to TLS, and a wildcard bind it
// cannot name to clients, with a message saying why.
TEST(PdTsoEndpointFlagsTest, PdRefusesTcpTsoWithTlsOrWithoutAnAddressToAdvertise) {
  rdb::testing::TempDir dir;
  for (const char* pem : {"ca.pem", "c.pem", "k.pem"}) {
    std::ofstream(dir.sub(pem)) << "not read: the flags are refused first\n";
  }
  auto with_tls = rdb::testing::run_command(
      {rdb::testing::bin_dir() + "/rdb-pd", "--data-dir", dir.sub("a"), "--addr", "127.0.0.1:0", "--tso-addr",
       "127.0.0.1:0", "--ca", dir.sub("ca.pem"), "--cert", dir.sub("c.pem"), "--key", dir.sub("k.pem")},
      dir.path());
  EXPECT_EQ(with_tls.exit_code, 2);
  EXPECT_NE(with_tls.err.find("--tso-addr is plaintext"), std::string::npos) << with_tls.err;
  auto wildcard = rdb::testing::run_command({rdb::testing::bin_dir() + "/rdb-pd", "--data-dir", dir.sub("b"), "--addr",
                                             "0.0.0.0:0", "--tso-addr", "0.0.0.0:0"},
                                            dir.path());
  EXPECT_EQ(wildcard.exit_code, 2);
  EXPECT_NE(wildcard.err.find("--advertise-tso-addr"), std::string::npos) << wildcard.err;
  auto bad = rdb::testing::run_command(
      {rdb::testing::bin_dir() + "/rdb-pd", "--data-dir", dir.sub("c"), "--tso-addr", "nonsense"}, dir.path());
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("--tso-addr"), std::string::npos) << bad.err;
}

TEST_F(ClientIntegrationTest, AsyncTsoCallersChainRequestsAndShareRoundTrips) {
  auto channel = grpc::CreateChannel(cluster_->pd().addr, grpc::InsecureChannelCredentials());
  TsoBatcher batcher(channel);
  batcher.set_cluster_id(client()->cluster_status()->cluster_id);
  constexpr int kInFlight = 64;
  constexpr int kPerCaller = 100;
  std::mutex mu;
  std::vector<std::uint64_t> got;
  std::vector<std::string> errors;
  std::atomic<int> finished{0};
  // Each caller re-issues from its own callback (on the batcher thread).
  std::function<void(int)> issue = [&](int remaining) {
    batcher.get_async(1, std::chrono::steady_clock::now() + std::chrono::seconds(10),
                      [&, remaining](Result<std::uint64_t> ts) {
                        {
                          std::lock_guard lock(mu);
                          if (ts.is_ok()) {
                            got.push_back(*ts);
                          } else {
                            errors.push_back(ts.status().to_string());
                          }
                        }
                        if (remaining > 1 && ts.is_ok()) {
                          issue(remaining - 1);
                        } else {
                          ++finished;
                        }
                      });
  };
  for (int c = 0; c < kInFlight; ++c) {
    issue(kPerCaller);
  }
  ASSERT_TRUE(rdb::testing::poll_until([&] { return finished.load() == kInFlight; }, std::chrono::seconds(30)));
  std::lock_guard lock(mu);
  ASSERT_TRUE(errors.empty()) << errors.front();
  std::set<std::uint64_t> unique(got.begin(), got.end());
  EXPECT_EQ(unique.size(), static_cast<std::size_t>(kInFlight * kPerCaller));
  EXPECT_LE(batcher.requests_sent(), static_cast<std::uint64_t>(kPerCaller) * 4) << "async callers were not batched";

  // The client's API, and a count out of range reported through the callback.
  auto c = client();
  std::promise<Result<std::uint64_t>> bad;
  c->get_tso_async(0, [&](Result<std::uint64_t> r) { bad.set_value(std::move(r)); });
  EXPECT_EQ(bad.get_future().get().status().code(), StatusCode::kInvalidArgument);
  std::promise<Result<std::uint64_t>> good;
  c->get_tso_async(5, [&](Result<std::uint64_t> r) { good.set_value(std::move(r)); });
  auto ts = good.get_future().get();
  ASSERT_TRUE(ts.is_ok()) << ts.status().to_string();
  EXPECT_GT(*ts, *unique.rbegin());
}

// With a BatchCommands stream capped at two unanswered requests, the store stops
// reading and resumes as answers drain: every one of many concurrent requests is
// still answered.
// Counts asynchronous completions; wait() polls (with a deadline) until `n` arrived.
class Completions {
 public:
  void add(const Status& s, bool expected_ok = true) {
    std::lock_guard lock(mu_);
    ++count_;
    if (expected_ok && !s.is_ok() && first_error_.empty()) {
      first_error_ = s.to_string();
    }
    cv_.notify_all();
  }
  bool wait(std::size_t n, std::chrono::seconds timeout = std::chrono::seconds(60)) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return count_ >= n; });
  }
  std::size_t count() const {
    std::lock_guard lock(mu_);
    return count_;
  }
  std::string first_error() const {
    std::lock_guard lock(mu_);
    return first_error_;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::size_t count_ = 0;
  std::string first_error_;
};

// One thread keeps a thousand point calls in flight while the client's only pool thread is
// held: calls to a located region travel on the store's stream without taking a thread.
TEST_F(ClientIntegrationTest, OneThreadKeepsAThousandPointCallsInFlightWithoutThePool) {
  ClientOptions o;
  o.pd_endpoints = {cluster_->pd().addr};
  o.async_threads = 1;
  // Long enough that a call a region error sent to the (held) pool still succeeds after it is let go.
  o.timeout = std::chrono::seconds(90);
  auto c = std::move(RdbClient::connect(o)).value();
  ASSERT_TRUE(c->raw_put("async/warm", "w").is_ok());  // the region is located (cached) now

  // Region errors the stores answered to puts (a leader change under a loaded machine): each
  // such call is rerouted on the pool, as it may need PD. Nothing else needs the pool.
  auto put_metric = [](const char* counter) { return stores_metric(fmt::format("{}{{method=\"RawPut\"}}", counter)); };
  const std::uint64_t errors_before = put_metric("rdb_kv_errors_total");
  const std::uint64_t requests_before = put_metric("rdb_kv_requests_total");

  constexpr std::size_t kCalls = 1000;
  Completions puts;
  testing::HeldPool pool(*c);  // until the puts are done
  ASSERT_TRUE(pool.held());
  auto caller = std::this_thread::get_id();
  std::atomic<int> inline_completions{0};
  for (std::size_t i = 0; i < kCalls; ++i) {
    c->raw_put_async("async/k" + std::to_string(i), "v" + std::to_string(i), [&](Status s) {
      if (std::this_thread::get_id() == caller) {
        ++inline_completions;
      }
      puts.add(s);
    });
  }
  (void)puts.wait(kCalls, std::chrono::seconds(20));
  const std::size_t done_while_held = puts.count();
  pool.release();
  ASSERT_TRUE(puts.wait(kCalls)) << puts.count() << " of " << kCalls << " puts completed";
  EXPECT_EQ(puts.first_error(), "");
  EXPECT_EQ(inline_completions.load(), 0);
  ASSERT_GE(put_metric("rdb_kv_requests_total") - requests_before, kCalls);  // the counters are read right
  const std::uint64_t region_errors = put_metric("rdb_kv_errors_total") - errors_before;
  EXPECT_LE(kCalls - done_while_held, region_errors)
      << done_while_held << " of " << kCalls << " puts completed while the only pool thread was held, and the "
      << "stores answered " << region_errors << " region errors: a call without one needed the pool";

  // Read them back asynchronously (gets and versioned gets), checking every value.
  Completions gets;
  std::atomic<int> wrong{0};
  for (std::size_t i = 0; i < kCalls; ++i) {
    c->raw_get_async("async/k" + std::to_string(i), [&, i](Result<std::optional<std::string>> r) {
      if (r.is_ok() && (!r->has_value() || **r != "v" + std::to_string(i))) {
        ++wrong;
      }
      gets.add(r.status());
    });
  }
  ASSERT_TRUE(gets.wait(kCalls));
  EXPECT_EQ(gets.first_error(), "");
  EXPECT_EQ(wrong.load(), 0);
}

TEST_F(ClientIntegrationTest, EveryAsyncCallGivesTheBlockingCallsOutcome) {
  auto c = client();
  std::promise<Status> put_done;
  c->raw_put_async("asyncall/a", "1", [&](Status s) { put_done.set_value(s); });
  ASSERT_TRUE(put_done.get_future().get().is_ok());

  std::promise<Result<CasResult>> cas_done;
  c->cas_async("asyncall/v", 0, std::string("one"), [&](Result<CasResult> r) { cas_done.set_value(std::move(r)); });
  auto cas = cas_done.get_future().get();
  ASSERT_TRUE(cas.is_ok()) << cas.status().to_string();
  EXPECT_TRUE(cas->succeeded);
  std::promise<Result<CasResult>> conflict_done;
  c->cas_async("asyncall/v", 0, std::string("two"),
               [&](Result<CasResult> r) { conflict_done.set_value(std::move(r)); });
  auto conflict = conflict_done.get_future().get();
  ASSERT_TRUE(conflict.is_ok());
  EXPECT_FALSE(conflict->succeeded);
  EXPECT_EQ(conflict->current_value, "one");
  std::promise<Result<VersionedValue>> get_done;
  c->get_async("asyncall/v", [&](Result<VersionedValue> r) { get_done.set_value(std::move(r)); });
  auto got = get_done.get_future().get();
  ASSERT_TRUE(got.is_ok());
  EXPECT_TRUE(got->found);
  EXPECT_EQ(got->version, cas->version);

  std::promise<Status> batch_done;
  c->raw_batch_put_async({{"asyncall/b1", "x"}, {"asyncall/b2", "y"}}, [&](Status s) { batch_done.set_value(s); });
  ASSERT_TRUE(batch_done.get_future().get().is_ok());
  std::promise<Result<std::vector<KeyValue>>> scan_done;
  c->raw_scan_async("asyncall/", "asyncall0", ScanOptions{},
                    [&](Result<std::vector<KeyValue>> r) { scan_done.set_value(std::move(r)); });
  auto scanned = scan_done.get_future().get();
  ASSERT_TRUE(scanned.is_ok());
  EXPECT_EQ(*scanned, (std::vector<KeyValue>{{"asyncall/a", "1"}, {"asyncall/b1", "x"}, {"asyncall/b2", "y"}}));
  std::promise<Status> delete_done;
  c->raw_delete_async("asyncall/a", [&](Status s) { delete_done.set_value(s); });
  ASSERT_TRUE(delete_done.get_future().get().is_ok());
  EXPECT_FALSE(c->raw_get("asyncall/a")->has_value());

  // A transaction driven by callbacks only.
  std::promise<Status> txn_done;
  std::unique_ptr<Transaction> txn;
  c->begin_async([&](Result<std::unique_ptr<Transaction>> t) {
    if (!t.is_ok()) {
      return txn_done.set_value(t.status());
    }
    txn = std::move(t).value();
    if (Status s = txn->put("asyncall/t", "committed"); !s.is_ok()) {
      return txn_done.set_value(s);
    }
    txn->commit_async([&](Status s) { txn_done.set_value(s); });
  });
  ASSERT_TRUE(txn_done.get_future().get().is_ok());
  std::promise<Result<std::optional<std::string>>> read_done;
  auto reader = std::move(c->begin()).value();
  reader->get_async("asyncall/t", [&](Result<std::optional<std::string>> r) { read_done.set_value(std::move(r)); });
  auto read = read_done.get_future().get();
  ASSERT_TRUE(read.is_ok()) << read.status().to_string();
  EXPECT_EQ(read->value_or(""), "committed");

  std::promise<Result<std::vector<PdMemberInfo>>> members_done;
  c->pd_members_async([&](Result<std::vector<PdMemberInfo>> r) { members_done.set_value(std::move(r)); });
  auto members = members_done.get_future().get();
  ASSERT_TRUE(members.is_ok());
  EXPECT_EQ(members->size(), 1u);
}

TEST_F(ClientIntegrationTest, AsyncErrorsReachTheCallbackNeverInline) {
  auto c = client();
  auto caller = std::this_thread::get_id();
  std::promise<std::pair<Status, bool>> bad_key;
  c->raw_put_async("", "v", [&](Status s) { bad_key.set_value({s, std::this_thread::get_id() == caller}); });
  auto [status, was_inline] = bad_key.get_future().get();
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << status.to_string();
  EXPECT_FALSE(was_inline);
  std::promise<Status> big_value;
  c->cas_async("k", 0, std::string(kMaxValueSize + 1, 'x'),
               [&](Result<CasResult> r) { big_value.set_value(r.status()); });
  EXPECT_EQ(big_value.get_future().get().code(), StatusCode::kInvalidArgument);
  std::promise<Status> bad_limit;
  c->raw_scan_async("a", "b", ScanOptions{0, false, false},
                    [&](Result<std::vector<KeyValue>> r) { bad_limit.set_value(r.status()); });
  EXPECT_EQ(bad_limit.get_future().get().code(), StatusCode::kInvalidArgument);

  ClientOptions o;
  o.pd_endpoints = {cluster_->pd().addr};
  o.async_threads = 0;
  auto refused = RdbClient::connect(o);
  ASSERT_FALSE(refused.is_ok());
  EXPECT_NE(refused.status().message().find("async_threads"), std::string::npos);
}

// A client that did not locate the region yet, and one whose cached route went stale when
// the region split: both asynchronous calls still succeed (PD asked, the call retried).
TEST_F(ClientIntegrationTest, AsyncPointCallsLocateAndFollowASplit) {
  auto stale = client();
  ASSERT_TRUE(stale->raw_put("asplit/a", "1").is_ok());  // caches the region holding asplit/*
  auto fresh = client();
  std::promise<Result<std::optional<std::string>>> first;
  fresh->raw_get_async("asplit/a", [&](Result<std::optional<std::string>> r) { first.set_value(std::move(r)); });
  auto got = first.get_future().get();
  ASSERT_TRUE(got.is_ok()) << got.status().to_string();
  EXPECT_EQ(got->value_or(""), "1");

  ASSERT_TRUE(fresh->split({"asplit/m"}).is_ok());
  Completions writes;
  for (const char* k : {"asplit/b", "asplit/z"}) {
    stale->raw_put_async(k, "after-split", [&](Status s) { writes.add(s); });
  }
  ASSERT_TRUE(writes.wait(2));
  EXPECT_EQ(writes.first_error(), "");
  EXPECT_EQ(fresh->raw_get("asplit/z")->value_or(""), "after-split");
}

// A region error that says where to go (here EpochNotMatch after a split, listing the new
// regions) is followed on the stores' streams: with the client's only pool thread held, every
// asynchronous call whose route went stale still completes, on both sides of the split.
TEST_F(ClientIntegrationTest, AsyncCallsFollowARegionErrorWithoutThePool) {
  ClientOptions o;
  o.pd_endpoints = {cluster_->pd().addr};
  o.async_threads = 1;
  auto stale = std::move(RdbClient::connect(o)).value();
  ASSERT_TRUE(stale->raw_put("aresend/a", "1").is_ok());  // caches the region holding aresend/*
  auto other = client();
  ASSERT_TRUE(other->split({"aresend/m"}).is_ok());
  for (const char* k : {"aresend/b", "aresend/y"}) {  // both regions have led a write: leaders are elected
    ASSERT_TRUE(other->raw_put(k, "w").is_ok());
  }
  // An election meanwhile (a loaded machine) answers NotLeader naming no leader: only PD
  // knows then, and such calls rightly wait for the pool. The test holds the stores to
  // following every error only when no leader changed.
  const std::uint64_t elections_before = stores_metric("rdb_raft_leader_changes_total");
  ASSERT_GT(elections_before, 0U);  // the regions' leaders were elected: the counter is read right

  testing::HeldPool pool(*stale);
  ASSERT_TRUE(pool.held());
  constexpr int kCalls = 100;
  Completions writes;
  for (int i = 0; i < kCalls; ++i) {
    std::string key = std::string(i % 2 == 0 ? "aresend/c" : "aresend/z") + std::to_string(i);
    stale->raw_put_async(key, "v" + std::to_string(i), [&](Status s) { writes.add(s); });
  }
  const bool all_while_held = writes.wait(kCalls, std::chrono::seconds(20));
  const std::size_t done_while_held = writes.count();
  pool.release();
  const std::uint64_t elections = stores_metric("rdb_raft_leader_changes_total") - elections_before;
  EXPECT_TRUE(all_while_held || elections > 0)
      << done_while_held << " of " << kCalls << " stale calls completed while the pool was held";
  ASSERT_TRUE(writes.wait(kCalls));
  EXPECT_EQ(writes.first_error(), "");
  EXPECT_EQ(other->raw_get("aresend/z1")->value_or(""), "v1");
  EXPECT_EQ(other->raw_get("aresend/c0")->value_or(""), "v0");
}

// Destroying a client with calls in flight runs every callback exactly once, first.
TEST_F(ClientIntegrationTest, DestroyingAClientEndsEveryAsyncCallOnce) {
  constexpr int kCalls = 500;
  std::vector<std::atomic<int>> calls(kCalls);
  std::atomic<int> ok{0};
  {
    auto c = client();
    ASSERT_TRUE(c->raw_put("adestroy/warm", "w").is_ok());
    for (int i = 0; i < kCalls; ++i) {
      auto done = [&, i](Status s) {
        ++calls[i];
        if (s.is_ok()) {
          ++ok;
        } else {
          EXPECT_TRUE(s.code() == StatusCode::kUnavailable || s.code() == StatusCode::kUndetermined) << s.to_string();
        }
      };
      if (i % 2 == 0) {
        c->raw_put_async("adestroy/" + std::to_string(i), "v", done);
      } else {
        c->raw_batch_put_async({{"adestroy/b" + std::to_string(i), "v"}}, done);
      }
    }
  }  // destroyed here, calls still in flight
  for (int i = 0; i < kCalls; ++i) {
    EXPECT_EQ(calls[i].load(), 1) << "call " << i;
  }
  std::cout << ok.load() << " of " << kCalls << " calls completed before the client went\n";
}

TEST(ClientBackpressureTest, CappedStreamStillAnswersEveryRequest) {
  LocalCluster cluster;
  cluster.start_pd({"--max-replicas", "1"});
  cluster.start_store("s1", true, {"--max-stream-requests", "2"});
  ClientOptions o;
  o.pd_endpoints = {cluster.pd().addr};
  o.timeout = std::chrono::seconds(30);
  auto c = std::move(RdbClient::connect(o)).value();
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 32; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        std::string k = "bp/" + std::to_string(t) + "/" + std::to_string(i);
        if (c->raw_put(k, "v").is_ok() && c->raw_get(k).is_ok()) {
          ++ok;
        }
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(ok.load(), 32 * 20);
}

TEST(ClientUnreachableTest, DownServersAreReportedWithinTheDeadline) {
  // Port 1 on loopback: nothing listens there.
  ClientOptions o;
  o.pd_endpoints = {"127.0.0.1:1"};
  o.timeout = std::chrono::milliseconds(800);
  auto c = RdbClient::connect(o);
  ASSERT_TRUE(c.is_ok());
  auto start = std::chrono::steady_clock::now();
  Status put = (*c)->raw_put("k", "v");
  EXPECT_FALSE(put.is_ok());
  EXPECT_TRUE(put.code() == StatusCode::kUnavailable || put.code() == StatusCode::kDeadlineExceeded) << put.to_string();
  auto cas = (*c)->cas("k", 0, std::string("v"));
  EXPECT_FALSE(cas.is_ok());
  EXPECT_NE(cas.status().code(), StatusCode::kUndetermined) << "nothing was sent, so the outcome is known";
  auto ts = (*c)->get_tso(1);
  EXPECT_FALSE(ts.is_ok());
  // Bounded: three calls of 800 ms each plus slack, not a hang.
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
  EXPECT_FALSE(RdbClient::connect(ClientOptions{}).is_ok());
  ClientOptions bad;
  bad.pd_endpoints = {"no-port"};
  EXPECT_EQ(RdbClient::connect(bad).status().code(), StatusCode::kInvalidArgument);
}

// PD's map has short gaps while a split's regions report one by one (the parent's new,
// shorter range first). A request for a key in such a gap waits for it to close instead
// of failing: here a forged report opens a gap, and a second closes it while a get
// waits. (A cluster of its own: the forged epochs stay ahead of the store's.)
TEST(PdGapTest, ARequestWaitsForAGapInPdsRegionMapToClose) {
  LocalCluster cluster;
  cluster.start_pd({"--max-replicas", "1"});
  cluster.start_store("s1");
  ClientOptions o;
  o.pd_endpoints = {cluster.pd().addr};
  o.timeout = std::chrono::seconds(20);
  auto first = RdbClient::connect(o);
  ASSERT_TRUE(first.is_ok()) << first.status().to_string();
  ASSERT_TRUE((*first)->raw_put("x", "1").is_ok());
  auto st = (*first)->cluster_status();
  ASSERT_TRUE(st.is_ok() && st->regions.size() == 1) << st.status().to_string();
  const RegionInfo known = st->regions[0];
  auto pd = pdpb::PD::NewStub(grpc::CreateChannel(cluster.pd().addr, grpc::InsecureChannelCredentials()));
  auto report = [&](const std::string& end, std::uint64_t version) {
    pdpb::RegionHeartbeatRequest req;
    req.mutable_header()->set_cluster_id(st->cluster_id);
    auto* r = req.mutable_region();
    r->set_id(known.id);
    r->set_end_key(end);
    r->mutable_region_epoch()->set_conf_ver(known.conf_ver);
    r->mutable_region_epoch()->set_version(version);
    for (const auto& p : known.peers) {
      auto* peer = r->add_peers();
      peer->set_id(p.id);
      peer->set_store_id(p.store_id);
    }
    req.mutable_leader()->set_id(known.leader.id);
    req.mutable_leader()->set_store_id(known.leader.store_id);
    pdpb::RegionHeartbeatResponse resp;
    grpc::ClientContext ctx;
    EXPECT_TRUE(pd->RegionHeartbeat(&ctx, req, &resp).ok());
    EXPECT_FALSE(resp.header().has_error()) << resp.header().error().message();
  };
  report("m", known.version + 1);       // as if split at "m": ["m", "") is in no region PD knows
  auto second = RdbClient::connect(o);  // nothing cached
  ASSERT_TRUE(second.is_ok()) << second.status().to_string();
  // A transaction's write (its prewrite looks the key up itself) and a raw read.
  auto write = std::async(std::launch::async, [&] {
    auto t = (*second)->begin();
    return t.is_ok() ? (*t)->put("x", "2").is_ok() ? (*t)->commit() : Status::internal("put") : t.status();
  });
  auto get = std::async(std::launch::async, [&] { return (*second)->raw_get("x"); });
  // The gap stays open a while (both ask PD meanwhile), then a report closes it.
  EXPECT_EQ(write.wait_for(std::chrono::milliseconds(300)), std::future_status::timeout)
      << "the write did not wait for the gap to close";
  report("", known.version + 2);
  Status written = write.get();
  EXPECT_TRUE(written.is_ok()) << written.to_string();
  auto got = get.get();
  ASSERT_TRUE(got.is_ok()) << got.status().to_string();
  EXPECT_EQ(got->value_or("(none)"), "1");
  auto t = (*second)->begin();
  ASSERT_TRUE(t.is_ok());
  auto read = (*t)->get("x");
  ASSERT_TRUE(read.is_ok()) << read.status().to_string();
  EXPECT_EQ(read->value_or("(none)"), "2");
}

}  // namespace
}  // namespace rdb
