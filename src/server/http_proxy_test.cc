#include "server/http_proxy.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace rdb {
namespace {

// An environment of its own, so tests neither read nor change the process's.
class Env {
 public:
  Env(std::initializer_list<std::pair<const std::string, std::string>> vars) : vars_(vars) {}
  EnvLookup lookup() const {
    return [this](const char* name) -> const char* {
      auto it = vars_.find(name);
      return it == vars_.end() ? nullptr : it->second.c_str();
    };
  }

 private:
  std::map<std::string, std::string> vars_;
};

std::string proxy_of(const std::string& host, const Env& env) {
  auto p = http_proxy_for(host, env.lookup());
  return p ? p->address : "direct";
}

TEST(HttpProxyTest, NoSettingMeansDirect) {
  EXPECT_EQ(proxy_of("10.0.0.1", Env{}), "direct");
  EXPECT_EQ(proxy_of("10.0.0.1", Env{{"grpc_proxy", ""}}), "direct");
}

TEST(HttpProxyTest, TheFirstSetOfGrpcHttpsHttpProxyWins) {
  EXPECT_EQ(
      proxy_of("h", Env{{"grpc_proxy", "http://g:1"}, {"https_proxy", "http://s:2"}, {"http_proxy", "http://p:3"}}),
      "g:1");
  EXPECT_EQ(proxy_of("h", Env{{"https_proxy", "http://s:2"}, {"http_proxy", "http://p:3"}}), "s:2");
  EXPECT_EQ(proxy_of("h", Env{{"http_proxy", "http://p:3/"}}), "p:3");
}

TEST(HttpProxyTest, PortDefaultsTo443AndCredentialsAreKept) {
  auto p = http_proxy_for("h", Env{{"grpc_proxy", "http://user:secret@proxy.example"}}.lookup());
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->address, "proxy.example:443");
  EXPECT_EQ(p->credentials, "user:secret");
  EXPECT_EQ(proxy_of("h", Env{{"grpc_proxy", "http://[::1]"}}), "[::1]:443");
  EXPECT_EQ(proxy_of("h", Env{{"grpc_proxy", "http://[::1]:8080"}}), "[::1]:8080");
}

TEST(HttpProxyTest, SettingsThatAreNotHttpUrisAreIgnored) {
  EXPECT_EQ(proxy_of("h", Env{{"grpc_proxy", "socks5://p:1"}}), "direct");
  EXPECT_EQ(proxy_of("h", Env{{"grpc_proxy", "p:1"}}), "direct");
  EXPECT_EQ(proxy_of("h", Env{{"grpc_proxy", "http://"}}), "direct");
  EXPECT_EQ(proxy_of("h", Env{{"grpc_proxy", "http://user@"}}), "direct");
  EXPECT_EQ(proxy_of("h", Env{{"grpc_proxy", "HTTP://p:1"}}), "p:1");
}

TEST(HttpProxyTest, NoProxyListsExcludeHostsByCaseBlindSuffix) {
  Env env{{"grpc_proxy", "http://p:1"}, {"no_grpc_proxy", " example.com , 127.0.0.1,*.skip"}};
  EXPECT_EQ(proxy_of("db.EXAMPLE.com", env), "direct");
  EXPECT_EQ(proxy_of("127.0.0.1", env), "direct");
  EXPECT_EQ(proxy_of("10.127.0.0.1", env), "direct");  // a suffix, as gRPC compares
  EXPECT_EQ(proxy_of("example.org", env), "p:1");
  EXPECT_EQ(proxy_of("10.0.0.1", env), "p:1");
}

TEST(HttpProxyTest, NoGrpcProxyTakesPrecedenceOverNoProxyAndStarMeansEveryHost) {
  EXPECT_EQ(proxy_of("a.internal", Env{{"http_proxy", "http://p:1"}, {"no_proxy", "internal"}}), "direct");
  EXPECT_EQ(
      proxy_of("a.internal", Env{{"http_proxy", "http://p:1"}, {"no_grpc_proxy", "other"}, {"no_proxy", "internal"}}),
      "p:1");
  EXPECT_EQ(proxy_of("anything", Env{{"grpc_proxy", "http://p:1"}, {"no_proxy", "*"}}), "direct");
  EXPECT_EQ(proxy_of("anything", Env{{"grpc_proxy", "http://p:1"}, {"no_proxy", ",,"}}), "p:1");
}

TEST(HttpProxyTest, Base64MatchesRfc4648) {
  EXPECT_EQ(base64(""), "");
  EXPECT_EQ(base64("f"), "Zg==");
  EXPECT_EQ(base64("fo"), "Zm8=");
  EXPECT_EQ(base64("foo"), "Zm9v");
  EXPECT_EQ(base64("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64("user:secret"), "dXNlcjpzZWNyZXQ=");
  EXPECT_EQ(base64(std::string("\xff\x00\x10", 3)), "/wAQ");
}

}  // namespace
}  // namespace rdb
