// Mutual TLS end to end with real processes: PD and stores started with --ca,
// --cert, --key and --cert-allowed-cn; clients with the same (ClientOptions and
// rdb-cli). A client without TLS, with a certificate from another CA, or whose
// certificate's common name is not allowed is refused; the Raft traffic between
// stores runs over TLS too (the region reaches three replicas and replicates).
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "local_cluster.h"
#include "pdpb.grpc.pb.h"
#include "rdb/client.h"

namespace rdb {
namespace {

using testing::LocalCluster;

class TlsIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    certs_ = cluster_.dir().sub("certs");
    other_ = cluster_.dir().sub("other-ca");
    for (const auto& [dir, names] :
         {std::pair{certs_, std::string("pd store client intruder")}, std::pair{other_, std::string("client")}}) {
      auto r =
          testing::run_command({"/bin/bash", "-c", std::string(RDB_SCRIPTS_DIR) + "/gen-certs.sh " + dir + " " + names},
                               cluster_.dir().path(), std::chrono::seconds(60));
      ASSERT_EQ(r.exit_code, 0) << r.err;
    }
    auto tls = [&](const std::string& name) {
      return std::vector<std::string>{"--ca",
                                      certs_ + "/ca.pem",
                                      "--cert",
                                      certs_ + "/" + name + ".pem",
                                      "--key",
                                      certs_ + "/" + name + ".key",
                                      "--cert-allowed-cn",
                                      "store",
                                      "client",
                                      "pd"};
    };
    auto pd_args = tls("pd");
    pd_args.insert(pd_args.end(), {"--max-replicas", "3", "--store-up-window-ms", "2000"});
    cluster_.start_pd(pd_args);
    for (const char* s : {"s1", "s2", "s3"}) {
      cluster_.start_store(s, true, tls("store"));
    }
  }

  ClientOptions options(const std::string& dir, const std::string& name) {
    ClientOptions o;
    o.pd_endpoints = {cluster_.pd().addr};
    o.timeout = std::chrono::seconds(3);
    if (!name.empty()) {
      o.tls_ca = certs_ + "/ca.pem";
      o.tls_cert = dir + "/" + name + ".pem";
      o.tls_key = dir + "/" + name + ".key";
    }
    return o;
  }

  LocalCluster cluster_;
  std::string certs_;
  std::string other_;
};

TEST_F(TlsIntegrationTest, OnlyClientsWithAnAllowedCertificateGetIn) {
  ClientOptions good = options(certs_, "client");
  good.timeout = std::chrono::seconds(30);
  auto c = std::move(RdbClient::connect(good)).value();
  ASSERT_TRUE(c->raw_put("tls/k", "v").is_ok());
  // The region replicates to three voters over the stores' TLS Raft traffic.
  ASSERT_TRUE(testing::poll_until(
      [&] {
        auto st = c->cluster_status();
        if (!st.is_ok() || st->regions.size() != 1) {
          return false;
        }
        int voters = 0;  // PD promotes a learner only once Raft traffic caught it up
        for (const auto& p : st->regions[0].peers) {
          voters += p.is_learner ? 0 : 1;
        }
        return voters == 3;
      },
      std::chrono::seconds(60)));
  ASSERT_TRUE(c->raw_put("tls/k2", "v2").is_ok());
  EXPECT_EQ(c->raw_get("tls/k2")->value(), "v2");

  auto plain = std::move(RdbClient::connect(options("", ""))).value();
  EXPECT_FALSE(plain->raw_get("tls/k").is_ok()) << "a plaintext client got in";
  auto foreign = std::move(RdbClient::connect(options(other_, "client"))).value();
  EXPECT_FALSE(foreign->raw_get("tls/k").is_ok()) << "a certificate from another CA got in";
  auto intruder = std::move(RdbClient::connect(options(certs_, "intruder"))).value();
  auto refused = intruder->raw_get("tls/k");
  EXPECT_FALSE(refused.is_ok()) << "a common name outside --cert-allowed-cn got in";

  auto cli =
      testing::run_command({testing::bin_dir() + "/rdb-cli", "--pd", cluster_.pd().addr, "--ca", certs_ + "/ca.pem",
                            "--cert", certs_ + "/client.pem", "--key", certs_ + "/client.key", "raw-get", "tls/k"},
                           cluster_.dir().path());
  EXPECT_EQ(cli.exit_code, 0) << cli.err;
  EXPECT_EQ(cli.out, "v\n");
  // A store's address may be changed only by the identity it registered with.
  auto st = c->cluster_status();
  ASSERT_TRUE(st.is_ok());
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = testing::read_file(certs_ + "/ca.pem");
  ssl.pem_cert_chain = testing::read_file(certs_ + "/client.pem");
  ssl.pem_private_key = testing::read_file(certs_ + "/client.key");
  auto pd = pdpb::PD::NewStub(grpc::CreateChannel(cluster_.pd().addr, grpc::SslCredentials(ssl)));
  pdpb::PutStoreRequest move;
  move.mutable_header()->set_cluster_id(st->cluster_id);
  move.mutable_store()->set_id(st->stores[0].id);
  move.mutable_store()->set_address("127.0.0.1:1");
  pdpb::PutStoreResponse moved;
  grpc::ClientContext ctx;
  ASSERT_TRUE(pd->PutStore(&ctx, move, &moved).ok());
  EXPECT_EQ(moved.header().error().type(), pdpb::INVALID_ARGUMENT);
  EXPECT_NE(moved.header().error().message().find("registered as 'store'"), std::string::npos)
      << moved.header().error().message();
  EXPECT_EQ(c->cluster_status()->stores[0].address, st->stores[0].address);

  auto half = testing::run_command(
      {testing::bin_dir() + "/rdb-cli", "--pd", cluster_.pd().addr, "--ca", certs_ + "/ca.pem", "raw-get", "tls/k"},
      cluster_.dir().path());
  EXPECT_NE(half.exit_code, 0);
  EXPECT_NE(half.err.find("--ca, --cert and --key"), std::string::npos) << half.err;
  // The plain-TCP Raft transport is refused with TLS: Raft traffic stays on mutual TLS.
  auto tcp = testing::run_command({testing::bin_dir() + "/rdb-server", "--pd", cluster_.pd().addr, "--data-dir",
                                   cluster_.dir().sub("tcp-store"), "--ca", certs_ + "/ca.pem", "--cert",
                                   certs_ + "/store.pem", "--key", certs_ + "/store.key", "--raft-addr", "127.0.0.1:0"},
                                  cluster_.dir().path());
  EXPECT_EQ(tcp.exit_code, 2);
  EXPECT_NE(tcp.err.find("--raft-addr is plaintext"), std::string::npos) << tcp.err;
}

}  // namespace
}  // namespace rdb
