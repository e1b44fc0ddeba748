// rdb-etcd against etcd's own client: Debian's etcdctl drives the gateway, and the same
// script driven against a real etcd (Debian's etcd-server) must print the same, up to
// revision numbers (rdb's are commit timestamps: compared by their order, not value).
// Then what only the gateway shows: revisions in commit order across gateways, Txn
// compares that hold at commit (no write skew), MemberList, endpoint status.
#include <fmt/format.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <thread>

#include "etcd_rpc.grpc.pb.h"
#include "local_cluster.h"

namespace rdb {
namespace {

using namespace std::chrono_literals;
using testing::CommandResult;
using testing::LocalCluster;

bool have_program(const std::string& name) {
  for (const char* dir : {"/usr/bin", "/usr/local/bin", "/bin"}) {
    if (::access((std::string(dir) + "/" + name).c_str(), X_OK) == 0) {
      return true;
    }
  }
  return false;
}

// One command of a script: etcdctl's arguments, what it reads on stdin (txn), and
// optionally a name under which the mod_revision of the first key it prints (-w json)
// is kept, for later arguments to use as "{name}".
struct Step {
  Step(std::vector<std::string> a, std::string in = "", std::string name = "")
      : args(std::move(a)), stdin_text(std::move(in)), capture(std::move(name)) {}
  std::vector<std::string> args;
  std::string stdin_text;
  std::string capture;
};

class Etcdctl {
 public:
  Etcdctl(std::string endpoint, std::string scratch) : endpoint_(std::move(endpoint)), scratch_(std::move(scratch)) {}

  CommandResult run(std::vector<std::string> args, const std::string& stdin_text = "") const {
    std::vector<std::string> argv = {"/usr/bin/etcdctl", "--endpoints=" + endpoint_, "--command-timeout=20s"};
    argv.insert(argv.end(), args.begin(), args.end());
    if (stdin_text.empty()) {
      return testing::run_command(argv, scratch_, 40s);
    }
    std::vector<std::string> piped = {"/bin/bash", "-c", "printf '%s' \"$1\" | \"${@:2}\"", "etcdctl-stdin",
                                      stdin_text};
    piped.insert(piped.end(), argv.begin(), argv.end());
    return testing::run_command(piped, scratch_, 40s);
  }

  // Runs a script; returns each step's exit code and output, revisions normalised.
  std::vector<std::string> transcript(const std::vector<Step>& script) const {
    std::map<std::string, std::string> captured;
    std::vector<std::string> out;
    std::set<std::int64_t> revisions;  // every key revision printed, to rank them
    std::vector<nlohmann::json> parsed;
    std::vector<std::string> raw;
    for (const auto& step : script) {
      std::vector<std::string> args;
      for (std::string a : step.args) {
        for (const auto& [name, value] : captured) {
          a = std::regex_replace(a, std::regex("\\{" + name + "\\}"), value);
        }
        args.push_back(a);
      }
      CommandResult r = run(args, step.stdin_text);
      std::smatch granted;
      if (step.capture.rfind("lease", 0) == 0 &&
          std::regex_search(r.out, granted, std::regex("lease ([0-9a-f]+) granted"))) {
        captured[step.capture] = granted[1];
      }
      for (const auto& [name, value] : captured) {  // lease ids differ: name them instead
        if (name.rfind("lease", 0) == 0) {
          r.out = std::regex_replace(r.out, std::regex(value), "<" + name + ">");
          r.err = std::regex_replace(r.err, std::regex(value), "<" + name + ">");
        }
      }
      // What is left of a lease depends on when the command ran.
      r.out = std::regex_replace(r.out, std::regex(R"(remaining\(\d+s\))"), "remaining(*)");
      r.out = std::regex_replace(r.out, std::regex(R"(compacted revision \d+)"), "compacted revision *");
      std::string text = "exit " + std::to_string(r.exit_code) + "\n" + r.out + strip_timestamps(r.err);
      nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
      if (!j.is_discarded() && j.is_object()) {
        collect(j, revisions);
        if (!step.capture.empty() && j.contains("kvs") && !j["kvs"].empty()) {
          captured[step.capture] = std::to_string(j["kvs"][0]["mod_revision"].get<std::int64_t>());
        }
        parsed.push_back(j);
        raw.push_back("exit " + std::to_string(r.exit_code) + "\n" + strip_timestamps(r.err));
      } else {
        parsed.push_back(nlohmann::json());
        raw.push_back(text);
      }
    }
    std::map<std::int64_t, std::size_t> rank;
    for (auto rev : revisions) {
      rank.emplace(rev, rank.size() + 1);
    }
    for (std::size_t i = 0; i < script.size(); ++i) {
      if (parsed[i].is_null()) {
        out.push_back(raw[i]);
      } else {
        normalise(parsed[i], rank);
        out.push_back(raw[i] + parsed[i].dump());
      }
    }
    return out;
  }

 private:
  static std::string strip_timestamps(const std::string& err) {
    // etcdctl prefixes some errors with a log timestamp: keep the message only.
    return std::regex_replace(err, std::regex(R"re(^\{"level".*"msg":"([^"]*)".*$)re", std::regex::multiline), "$1");
  }
  static void collect(const nlohmann::json& j, std::set<std::int64_t>& revs) {
    if (j.is_object()) {
      for (const auto& [k, v] : j.items()) {
        if ((k == "create_revision" || k == "mod_revision") && v.is_number()) {
          revs.insert(v.get<std::int64_t>());
        } else {
          collect(v, revs);
        }
      }
    } else if (j.is_array()) {
      for (const auto& v : j) {
        collect(v, revs);
      }
    }
  }
  static void normalise(nlohmann::json& j, const std::map<std::int64_t, std::size_t>& rank) {
    if (j.is_object()) {
      for (auto& [k, v] : j.items()) {
        if ((k == "create_revision" || k == "mod_revision") && v.is_number()) {
          v = "rev#" + std::to_string(rank.at(v.get<std::int64_t>()));
        } else if (k == "revision" || k == "cluster_id" || k == "member_id" || k == "raft_term" ||
                   (k == "lease" && v.is_number() && v.get<std::int64_t>() != 0)) {
          v = "*";
        } else {
          normalise(v, rank);
        }
      }
    } else if (j.is_array()) {
      for (auto& v : j) {
        normalise(v, rank);
      }
    }
  }

  std::string endpoint_;
  std::string scratch_;
};

// What both systems run. Each step's output must match.
std::vector<Step> kv_script() {
  return {
      {{"put", "foo", "bar"}},
      {{"put", "foo2", "bar2"}},
      {{"put", "foo3", "bar3"}},
      {{"get", "foo"}},
      {{"get", "foo", "--print-value-only"}},
      {{"get", "foo", "-w", "json"}, "", "foo1"},
      {{"get", "foo", "--prefix"}},
      {{"get", "foo", "--prefix", "--limit", "2", "-w", "json"}},
      {{"get", "foo", "--prefix", "--keys-only"}},
      {{"get", "foo", "--prefix", "--sort-by=VALUE", "--order=DESCEND"}},
      {{"get", "foo", "--prefix", "--sort-by=MODIFY", "--order=ASCEND", "-w", "json"}},
      {{"get", "foo", "--prefix", "--sort-by=CREATE", "--order=DESCEND", "--limit", "1"}},
      {{"get", "foo", "--prefix", "--sort-by=KEY", "--order=DESCEND", "--limit", "2", "-w", "json"}},
      {{"get", "foo2", "--from-key"}},
      {{"get", "foo", "foo3"}},
      {{"get", "missing"}},
      {{"get", "missing", "-w", "json"}},
      {{"put", "foo", "baz", "--prev-kv"}},
      {{"put", "foo", "qux", "--prev-kv", "-w", "json"}},
      {{"get", "foo", "-w", "json"}},
      {{"get", "foo", "--rev={foo1}"}},
      {{"put", "foo", "--ignore-value"}},
      {{"get", "foo", "-w", "json"}},
      {{"put", "missing", "--ignore-value"}},
      {{"put", "missing", "--ignore-lease", "v"}},
      {{"put", "foo", "v", "--lease=1234"}},
      {{"put", "", "v"}},
      {{"del", "foo2", "--prev-kv"}},
      {{"del", "foo2"}},
      {{"put", "foo2", "again", "-w", "json"}},
      {{"get", "foo2", "-w", "json"}},
      {{"del", "foo", "--prefix", "-w", "json"}},
      {{"get", "foo", "--prefix"}},
      {{"put", "a", "1"}},
      {{"put", "b", "2"}},
      {{"put", "c", "3"}},
      {{"del", "a", "c"}},
      {{"get", "", "--prefix"}},
      {{"put", "a", "1"}},
      // Txn: compares on value, version, create and mod revision; both branches.
      {{"txn", "-w", "json"},
       "value(\"b\") = \"2\"\nversion(\"c\") = \"1\"\ncreate(\"zz\") = \"0\"\n\nput b 20\nget c\ndel c\n\nput x y\n\n"},
      {{"get", "", "--prefix", "-w", "json"}},
      {{"txn"}, "value(\"b\") = \"2\"\n\nput b 21\n\nput failed yes\nget b\n\n"},
      {{"txn"}, "mod(\"b\") > \"0\"\nversion(\"b\") != \"7\"\n\nput b 22\n\n\n"},
      {{"txn"}, "value(\"b\") < \"3\"\n\n\nget b\n\n"},
      {{"txn"}, "value(\"nothere\") = \"\"\n\nput n 1\n\nput n 2\n\n"},
      {{"get", "", "--prefix", "-w", "json"}},
      {{"txn"}, "\nput d 1\nput d 2\n\n\n"},
      {{"txn"}, "\nput e 1\ndel e\n\n\n"},
      {{"get", "", "--prefix", "--keys-only"}},
      // Compaction: reads below the compacted revision are refused, at it they work.
      {{"put", "cmp", "1", "-w", "json"}},
      {{"put", "cmp", "2"}},
      {{"get", "cmp", "-w", "json"}, "", "cmp2"},
      {{"put", "cmp", "3"}},
      {{"compact", "{cmp2}"}},
      {{"get", "cmp", "--rev={cmp2}"}},
      {{"get", "cmp", "--rev={foo1}"}},
      {{"compact", "{foo1}"}},
      {{"compact", "{cmp2}"}},
      {{"get", "cmp"}},
      // Leases: grant, attach, keep alive, revoke (its keys go with it), and what is left.
      {{"lease", "grant", "100"}, "", "lease1"},
      {{"put", "lk1", "v1", "--lease={lease1}"}},
      {{"put", "lk2", "v2", "--lease={lease1}"}},
      {{"get", "lk1", "-w", "json"}},
      {{"put", "lk2", "v3", "--ignore-lease"}},
      {{"get", "lk2", "-w", "json"}},
      {{"lease", "keep-alive", "--once", "{lease1}"}},
      {{"lease", "revoke", "{lease1}"}},
      {{"get", "lk", "--prefix"}},
      {{"lease", "revoke", "{lease1}"}},
      {{"lease", "timetolive", "{lease1}"}},
      {{"lease", "keep-alive", "--once", "{lease1}"}},
      {{"put", "lk3", "v", "--lease={lease1}"}},
      {{"lease", "grant", "1"}, "", "lease2"},
      {{"put", "lk4", "v", "--lease={lease2}"}},
      {{"put", "lk4", "v"}},
      {{"lease", "timetolive", "{lease2}", "--keys"}},
  };
}

class EtcdGatewayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have_program("etcdctl")) {
      GTEST_SKIP() << "etcdctl (Debian's etcd-client) is not installed: run scripts/install-deps.sh";
    }
    cluster_.start_pd({"--max-replicas", "1"});
    cluster_.start_store("s1");
    gateway_ = cluster_.start_etcd_gateway("gw1").addr;
  }

  Etcdctl etcdctl(const std::string& endpoint) const { return Etcdctl(endpoint, cluster_.dir().path()); }

  LocalCluster cluster_;
  std::string gateway_;
};

// A real etcd on an ephemeral port: its client port is read from its log.
class RealEtcd {
 public:
  explicit RealEtcd(const std::string& dir) {
    process_ = std::make_unique<testing::Subprocess>(
        std::vector<std::string>{"/usr/bin/etcd", "--data-dir", dir + "/etcd-data", "--listen-client-urls",
                                 "http://127.0.0.1:0", "--advertise-client-urls", "http://127.0.0.1:0",
                                 "--listen-peer-urls", "http://127.0.0.1:0", "--initial-advertise-peer-urls",
                                 "http://127.0.0.1:0", "--initial-cluster", "default=http://127.0.0.1:0"},
        dir + "/etcd.log");
    std::regex serving(R"(serving insecure client requests on (127\.0\.0\.1:\d+))");
    bool up = testing::poll_until(
        [&] {
          std::smatch m;
          std::string log = process_->stderr_text() + process_->stdout_text();
          if (std::regex_search(log, m, serving)) {
            endpoint_ = m[1];
            return true;
          }
          return !process_->running();
        },
        30s);
    if (!up || endpoint_.empty()) {
      throw std::runtime_error("etcd did not start:\n" + process_->stderr_text());
    }
  }
  const std::string& endpoint() const { return endpoint_; }

 private:
  std::unique_ptr<testing::Subprocess> process_;
  std::string endpoint_;
};

TEST_F(EtcdGatewayTest, EtcdctlPrintsWhatItPrintsAgainstEtcd) {
  if (!have_program("etcd")) {
    GTEST_SKIP() << "etcd (Debian's etcd-server) is not installed: run scripts/install-deps.sh";
  }
  RealEtcd etcd(cluster_.dir().path());
  auto script = kv_script();
  auto expected = etcdctl(etcd.endpoint()).transcript(script);
  auto got = etcdctl(gateway_).transcript(script);
  ASSERT_EQ(expected.size(), got.size());
  for (std::size_t i = 0; i < script.size(); ++i) {
    std::string cmd;
    for (const auto& a : script[i].args) {
      cmd += a + " ";
    }
    EXPECT_EQ(got[i], expected[i]) << "step " << i << ": etcdctl " << cmd << "\n  stdin: " << script[i].stdin_text;
  }
}

std::int64_t mod_revision_of(const Etcdctl& ctl, const std::string& key) {
  CommandResult r = ctl.run({"get", key, "-w", "json"});
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  if (j.is_discarded() || !j.contains("kvs") || j["kvs"].empty()) {
    ADD_FAILURE() << "no revision for " << key << ": " << r.out << r.err;
    return 0;
  }
  return j["kvs"][0]["mod_revision"].get<std::int64_t>();
}

// Writes, then `etcdctl watch` from the first write's revision (history, then live events
// until a marker key shows up), then a watch from a compacted revision. Its outputs.
std::vector<std::string> watch_transcript(const Etcdctl& ctl, const std::string& scratch, const std::string& endpoint) {
  std::vector<std::string> out;
  auto ok = [&](std::vector<std::string> args, const std::string& in = "") {
    CommandResult r = ctl.run(std::move(args), in);
    EXPECT_EQ(r.exit_code, 0) << r.err;
  };
  ok({"put", "wa", "1"});
  std::int64_t first = mod_revision_of(ctl, "wa");
  ok({"put", "wa", "2"});
  ok({"put", "wb", "1"});
  // One revision, two events. etcd sends them in the Txn's order, rdb-etcd in key order
  // (docs/etcd.md): the script writes them in key order.
  ok({"txn"}, "\ndel wb\nput wc 3\n\n\n");
  ok({"del", "wa"});
  auto watcher = std::make_unique<testing::Subprocess>(
      std::vector<std::string>{"/usr/bin/etcdctl", "--endpoints=" + endpoint, "watch", "w", "--prefix",
                               "--rev=" + std::to_string(first), "--prev-kv"},
      scratch + "/watch-" + std::to_string(::getpid()) + "-" + std::to_string(first));
  // History first: the last event of it is the delete of wa.
  bool replayed = testing::poll_until([&] { return watcher->stdout_text().find("DELETE") != std::string::npos; }, 30s);
  EXPECT_TRUE(replayed) << watcher->stdout_text() << watcher->stderr_text();
  ok({"put", "wd", "live"});
  ok({"put", "wz", "end"});
  bool live = testing::poll_until([&] { return watcher->stdout_text().find("wz\nend") != std::string::npos; }, 30s);
  EXPECT_TRUE(live) << watcher->stdout_text() << watcher->stderr_text();
  watcher->kill_now();
  out.push_back(watcher->stdout_text());
  // A key outside the prefix never shows; a single-key watch sees only its key.
  ok({"compact", std::to_string(mod_revision_of(ctl, "wz"))});
  CommandResult compacted = ctl.run({"watch", "wa", "--rev=" + std::to_string(first)});
  out.push_back("exit " + std::to_string(compacted.exit_code) + "\n" + compacted.out + compacted.err);
  return out;
}

// rdb-bench's etcd driver (the load generator of bench/compare-etcd.sh), one thread per
// request and --async (gRPC's callback API from one thread), against a real etcd and the
// gateway: every operation answered, none failed.
TEST_F(EtcdGatewayTest, BenchEtcdDriverRunsBlockingAndAsync) {
  if (!have_program("etcd")) {
    GTEST_SKIP() << "etcd (Debian's etcd-server) is not installed: run scripts/install-deps.sh";
  }
  RealEtcd etcd(cluster_.dir().path());
  for (const std::string& endpoint : {etcd.endpoint(), gateway_}) {
    for (const char* workload : {"raw-put", "raw-get", "get", "ycsb-a"}) {
      for (bool async : {false, true}) {
        std::vector<std::string> argv = {testing::bin_dir() + "/rdb-bench",
                                         "--driver",
                                         "etcd",
                                         "--endpoints",
                                         endpoint,
                                         "--workload",
                                         workload,
                                         "--concurrency",
                                         "32",
                                         "--ops",
                                         "400",
                                         "--keys",
                                         "100",
                                         "--warmup",
                                         "0",
                                         "--json"};
        if (async) {
          argv.emplace_back("--async");
        }
        auto r = testing::run_command(argv, cluster_.dir().path(), 60s);
        SCOPED_TRACE(fmt::format("{} {} async={}", endpoint, workload, async));
        ASSERT_EQ(r.exit_code, 0) << r.err;
        auto j = nlohmann::json::parse(r.out.substr(0, r.out.find('\n')));
        EXPECT_EQ(j.value("async", false), async) << r.out;
        EXPECT_GE(j.value("ops", 0ULL), 400ULL) << r.out;
        EXPECT_TRUE(j["errors"].empty()) << r.out;
      }
    }
  }
  auto tso = testing::run_command(
      {testing::bin_dir() + "/rdb-bench", "--driver", "etcd", "--endpoints", gateway_, "--workload", "tso", "--async"},
      cluster_.dir().path(), 60s);
  EXPECT_EQ(tso.exit_code, 2) << "etcd has no TSO: --async tso is refused";
}

TEST_F(EtcdGatewayTest, EtcdctlWatchPrintsWhatItPrintsAgainstEtcd) {
  if (!have_program("etcd")) {
    GTEST_SKIP() << "etcd (Debian's etcd-server) is not installed: run scripts/install-deps.sh";
  }
  RealEtcd etcd(cluster_.dir().path());
  auto expected = watch_transcript(etcdctl(etcd.endpoint()), cluster_.dir().path(), etcd.endpoint());
  auto got = watch_transcript(etcdctl(gateway_), cluster_.dir().path(), gateway_);
  ASSERT_EQ(expected.size(), got.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(got[i], expected[i]) << "part " << i;
  }
  EXPECT_NE(got[0].find("PUT\nwd\nlive"), std::string::npos) << "a live event after the history";
  EXPECT_NE(got[1].find("compacted"), std::string::npos) << got[1];
}

std::int64_t revision_of_put(const Etcdctl& ctl, const std::string& key, const std::string& value) {
  CommandResult r = ctl.run({"put", key, value, "-w", "json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  return j.is_discarded() ? 0 : j["header"]["revision"].get<std::int64_t>();
}

TEST_F(EtcdGatewayTest, RevisionsFollowCommitOrderAcrossGateways) {
  Etcdctl one = etcdctl(gateway_);
  Etcdctl two = etcdctl(cluster_.start_etcd_gateway("gw2").addr);
  std::int64_t last = 0;
  for (int i = 0; i < 6; ++i) {
    std::int64_t rev = revision_of_put(i % 2 == 0 ? one : two, "k" + std::to_string(i % 3), std::to_string(i));
    EXPECT_GT(rev, last) << "put " << i;
    last = rev;
  }
  // A read through the other gateway sees every write before it, at a revision after them.
  CommandResult r = two.run({"get", "k", "--prefix", "-w", "json"});
  auto j = nlohmann::json::parse(r.out);
  EXPECT_GT(j["header"]["revision"].get<std::int64_t>(), last);
  EXPECT_EQ(j["count"], 3);
  std::int64_t newest = 0;
  for (const auto& kv : j["kvs"]) {
    newest = std::max(newest, kv["mod_revision"].get<std::int64_t>());
    EXPECT_EQ(kv["version"], 2) << "each key written twice";
  }
  EXPECT_EQ(newest, last);
}

TEST_F(EtcdGatewayTest, MembersAreTheLiveGatewaysAndStatusAnswers) {
  std::string second = cluster_.start_etcd_gateway("gw2").addr;
  Etcdctl ctl = etcdctl(gateway_);
  bool both = testing::poll_until(
      [&] {
        CommandResult r = ctl.run({"member", "list"});
        return r.exit_code == 0 && r.out.find(gateway_) != std::string::npos && r.out.find(second) != std::string::npos;
      },
      20s);
  EXPECT_TRUE(both) << ctl.run({"member", "list"}).out;
  CommandResult status = ctl.run({"endpoint", "status", "-w", "json"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  auto j = nlohmann::json::parse(status.out);
  ASSERT_TRUE(j.is_array() && !j.empty());
  EXPECT_EQ(j[0]["Status"]["version"], "3.4.0");
  EXPECT_EQ(j[0]["Status"]["leader"], j[0]["Status"]["header"]["member_id"]);
  CommandResult health = ctl.run({"endpoint", "health"});
  EXPECT_EQ(health.exit_code, 0) << health.out << health.err;
  CommandResult defrag = ctl.run({"defrag"});
  EXPECT_NE(defrag.exit_code, 0);
  EXPECT_NE(defrag.out.find("not supported") + defrag.err.find("not supported"), std::string::npos * 2)
      << defrag.out << defrag.err;
  // A gateway that stops cleanly leaves the list at once.
  cluster_.etcd_gateway("gw2").process->signal(SIGTERM);
  ASSERT_TRUE(cluster_.etcd_gateway("gw2").process->wait_for_exit(20s).has_value());
  CommandResult after = ctl.run({"member", "list"});
  EXPECT_EQ(after.out.find(second), std::string::npos) << after.out;
}

// Two transactions, each writing one key if the other key is still 0: under etcd's
// semantics at most one can succeed per round. Without the compare's key guarded to
// the commit, both would (write skew).
TEST_F(EtcdGatewayTest, TxnComparesHoldAtCommitSoNoWriteSkew) {
  auto channel = grpc::CreateChannel(gateway_, grpc::InsecureChannelCredentials());
  auto kv = etcdserverpb::KV::NewStub(channel);
  auto txn = [&](const std::string& read, const std::string& write) {
    etcdserverpb::TxnRequest req;
    auto* c = req.add_compare();
    c->set_key(read);
    c->set_target(etcdserverpb::Compare::VALUE);
    c->set_result(etcdserverpb::Compare::EQUAL);
    c->set_value("0");
    auto* put = req.add_success()->mutable_request_put();
    put->set_key(write);
    put->set_value("1");
    etcdserverpb::TxnResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 20s);
    grpc::Status s = kv->Txn(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return s.ok() && resp.succeeded();
  };
  int both = 0, one = 0;
  for (int round = 0; round < 40; ++round) {
    for (const char* k : {"x", "y"}) {
      etcdserverpb::PutRequest p;
      p.set_key(k);
      p.set_value("0");
      etcdserverpb::PutResponse pr;
      grpc::ClientContext ctx;
      ASSERT_TRUE(kv->Put(&ctx, p, &pr).ok());
    }
    bool a = false, b = false;
    std::thread ta([&] { a = txn("x", "y"); });
    std::thread tb([&] { b = txn("y", "x"); });
    ta.join();
    tb.join();
    both += (a && b) ? 1 : 0;
    one += (a != b) ? 1 : 0;
  }
  EXPECT_EQ(both, 0) << "write skew: both transactions saw the other's key at 0 and wrote";
  EXPECT_EQ(one, 40) << "exactly one of each pair succeeds (the later sees the earlier's write)";
}

TEST_F(EtcdGatewayTest, ARangeLargerThanTheGatewayBoundIsRefusedNotBuffered) {
  Etcdctl small = etcdctl(cluster_.start_etcd_gateway("small", {"--max-range-bytes", "4096"}).addr);
  for (int i = 0; i < 8; ++i) {
    ASSERT_EQ(small.run({"put", "big" + std::to_string(i), std::string(1000, 'v')}).exit_code, 0);
  }
  CommandResult all = small.run({"get", "big", "--prefix"});
  EXPECT_NE(all.exit_code, 0);
  EXPECT_NE(all.err.find("--max-range-bytes"), std::string::npos) << all.err;
  CommandResult limited = small.run({"get", "big", "--prefix", "--limit", "2", "-w", "json"});
  ASSERT_EQ(limited.exit_code, 0) << limited.err;
  auto j = nlohmann::json::parse(limited.out);
  EXPECT_EQ(j["kvs"].size(), 2U);
  EXPECT_EQ(j["count"], 8);
  EXPECT_EQ(j["more"], true);
}

// What etcdctl cannot ask for: count_only and the revision filters, through the gRPC API.
TEST_F(EtcdGatewayTest, CountOnlyAndRevisionFiltersAnswerAsEtcdDocuments) {
  auto kv = etcdserverpb::KV::NewStub(grpc::CreateChannel(gateway_, grpc::InsecureChannelCredentials()));
  std::vector<std::int64_t> revs;
  for (const char* k : {"f/a", "f/b", "f/c", "f/a"}) {
    etcdserverpb::PutRequest p;
    p.set_key(k);
    p.set_value(std::string("v") + k);
    etcdserverpb::PutResponse pr;
    grpc::ClientContext ctx;
    ASSERT_TRUE(kv->Put(&ctx, p, &pr).ok());
    revs.push_back(pr.header().revision());
  }
  auto range = [&](auto fill) {
    etcdserverpb::RangeRequest r;
    r.set_key("f/");
    r.set_range_end("f0");
    fill(r);
    etcdserverpb::RangeResponse resp;
    grpc::ClientContext ctx;
    EXPECT_TRUE(kv->Range(&ctx, r, &resp).ok());
    return resp;
  };
  auto counted = range([](auto& r) { r.set_count_only(true); });
  EXPECT_EQ(counted.count(), 3);
  EXPECT_EQ(counted.kvs_size(), 0);
  // Modified at or after the second put: f/b, f/c and f/a (rewritten last).
  auto recent = range([&](auto& r) { r.set_min_mod_revision(revs[1]); });
  EXPECT_EQ(recent.kvs_size(), 3);
  auto old = range([&](auto& r) { r.set_max_mod_revision(revs[2]); });
  ASSERT_EQ(old.kvs_size(), 2) << "f/b and f/c; f/a's newest version is later";
  EXPECT_EQ(old.kvs(0).key(), "f/b");
  EXPECT_EQ(old.count(), 3) << "count is the range's, before filters (as etcd)";
  auto created_late = range([&](auto& r) { r.set_min_create_revision(revs[1]); });
  ASSERT_EQ(created_late.kvs_size(), 2);
  EXPECT_EQ(created_late.kvs(0).key(), "f/b");
  auto a = range([](auto& r) {
    r.set_key("f/a");
    r.clear_range_end();
  });
  ASSERT_EQ(a.kvs_size(), 1);
  EXPECT_EQ(a.kvs(0).create_revision(), revs[0]);
  EXPECT_EQ(a.kvs(0).mod_revision(), revs[3]);
  EXPECT_EQ(a.kvs(0).version(), 2);
  // A read at a past revision sees the store as it was then.
  auto past = range([&](auto& r) { r.set_revision(revs[1]); });
  ASSERT_EQ(past.kvs_size(), 2);
  EXPECT_EQ(past.kvs(0).version(), 1);
  etcdserverpb::RangeRequest future;
  future.set_key("f/a");
  future.set_revision(revs[3] + (std::int64_t{1} << 40));
  etcdserverpb::RangeResponse fr;
  grpc::ClientContext ctx;
  grpc::Status fs = kv->Range(&ctx, future, &fr);
  EXPECT_EQ(fs.error_code(), grpc::StatusCode::OUT_OF_RANGE);
  EXPECT_EQ(fs.error_message(), "etcdserver: mvcc: required revision is a future revision");
  // Inside a Txn too, a Range with a revision reads that revision (beside one of today).
  etcdserverpb::TxnRequest txn;
  auto* then = txn.add_success()->mutable_request_range();
  then->set_key("f/a");
  then->set_revision(revs[1]);
  txn.add_success()->mutable_request_range()->set_key("f/a");
  etcdserverpb::TxnResponse tr;
  grpc::ClientContext tctx;
  ASSERT_TRUE(kv->Txn(&tctx, txn, &tr).ok());
  ASSERT_EQ(tr.responses_size(), 2);
  ASSERT_EQ(tr.responses(0).response_range().kvs_size(), 1);
  EXPECT_EQ(tr.responses(0).response_range().kvs(0).version(), 1) << "as of the second put";
  EXPECT_EQ(tr.responses(1).response_range().kvs(0).version(), 2) << "as of now";
  etcdserverpb::TxnRequest future_txn;
  *future_txn.add_success()->mutable_request_range() = future;
  grpc::ClientContext fctx;
  EXPECT_EQ(kv->Txn(&fctx, future_txn, &tr).error_code(), grpc::StatusCode::OUT_OF_RANGE);
}

std::string grant_lease(const Etcdctl& ctl, const std::string& ttl) {
  CommandResult r = ctl.run({"lease", "grant", ttl});
  std::smatch m;
  EXPECT_TRUE(std::regex_search(r.out, m, std::regex("lease ([0-9a-f]+) granted"))) << r.out << r.err;
  return m.size() > 1 ? m[1].str() : "";
}

bool key_exists(const Etcdctl& ctl, const std::string& key) {
  CommandResult r = ctl.run({"get", key, "-w", "json"});
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  return !j.is_discarded() && j.contains("count") && j["count"].get<int>() > 0;
}

TEST_F(EtcdGatewayTest, ALeaseKeptAliveOutlivesItsTtlAndAnExpiredOneTakesItsKeys) {
  Etcdctl ctl = etcdctl(gateway_);
  std::string kept = grant_lease(ctl, "2");
  std::string dropped = grant_lease(ctl, "2");
  ASSERT_EQ(ctl.run({"put", "kept", "v", "--lease=" + kept}).exit_code, 0);
  ASSERT_EQ(ctl.run({"put", "gone1", "v", "--lease=" + dropped}).exit_code, 0);
  ASSERT_EQ(ctl.run({"put", "gone2", "v", "--lease=" + dropped}).exit_code, 0);
  testing::Subprocess keeper({"/usr/bin/etcdctl", "--endpoints=" + gateway_, "lease", "keep-alive", kept},
                             cluster_.dir().sub("keep-alive"));
  const auto start = std::chrono::steady_clock::now();
  bool expired = testing::poll_until([&] { return !key_exists(ctl, "gone1") && !key_exists(ctl, "gone2"); }, 30s);
  EXPECT_TRUE(expired) << "the keys of an expired lease are deleted";
  // Three TTLs later the kept lease (and its key) is still there.
  bool lost = false;
  testing::poll_until(
      [&] {
        lost = lost || !key_exists(ctl, "kept");
        return lost || std::chrono::steady_clock::now() - start > 6s;
      },
      20s);
  EXPECT_FALSE(lost) << "a lease kept alive must not expire";
  CommandResult ttl = ctl.run({"lease", "timetolive", kept, "--keys"});
  EXPECT_NE(ttl.out.find("attached keys([kept])"), std::string::npos) << ttl.out;
  CommandResult list = ctl.run({"lease", "list"});
  EXPECT_NE(list.out.find(kept), std::string::npos) << list.out;
  EXPECT_EQ(list.out.find(dropped), std::string::npos) << list.out;
  keeper.kill_now();
}

// A lease past its TTL is gone for every caller at once, before the keeper revokes it;
// granting its id again first revokes it (its keys go), so nothing is inherited.
TEST_F(EtcdGatewayTest, AnExpiredLeaseIsGoneBeforeItsRevokeAndItsIdCanBeGrantedAfresh) {
  std::string slow = cluster_.start_etcd_gateway("slow", {"--lease-check-interval-ms", "60000"}).addr;
  cluster_.etcd_gateway("gw1").process->kill_now();  // the only lease keeper is now "slow": never in time
  auto lease = etcdserverpb::Lease::NewStub(grpc::CreateChannel(slow, grpc::InsecureChannelCredentials()));
  auto grant = [&](std::int64_t ttl) {
    etcdserverpb::LeaseGrantRequest req;
    req.set_id(77);
    req.set_ttl(ttl);
    etcdserverpb::LeaseGrantResponse resp;
    grpc::ClientContext ctx;
    return lease->LeaseGrant(&ctx, req, &resp);
  };
  auto ttl_of = [&] {
    etcdserverpb::LeaseTimeToLiveRequest req;
    req.set_id(77);
    req.set_keys(true);
    etcdserverpb::LeaseTimeToLiveResponse resp;
    grpc::ClientContext ctx;
    EXPECT_TRUE(lease->LeaseTimeToLive(&ctx, req, &resp).ok());
    return resp;
  };
  ASSERT_TRUE(grant(2).ok());
  EXPECT_EQ(grant(2).error_message(), "etcdserver: lease already exists");
  Etcdctl ctl = etcdctl(slow);
  ASSERT_EQ(ctl.run({"put", "leased", "v", "--lease=4d"}).exit_code, 0);  // 77 in hex
  EXPECT_EQ(ttl_of().keys_size(), 1);
  ASSERT_TRUE(testing::poll_until([&] { return ttl_of().ttl() == -1; }, 20s)) << "expired: TimeToLive says so";
  CommandResult refused = ctl.run({"put", "other", "v", "--lease=4d"});
  EXPECT_NE(refused.err.find("requested lease not found"), std::string::npos) << refused.err;
  EXPECT_TRUE(key_exists(ctl, "leased")) << "not revoked yet: the keeper is slow";
  ASSERT_TRUE(grant(100).ok()) << "an expired lease's id may be granted again";
  EXPECT_FALSE(key_exists(ctl, "leased")) << "the old lease's keys went with it";
  auto fresh = ttl_of();
  EXPECT_EQ(fresh.grantedttl(), 100);
  EXPECT_EQ(fresh.keys_size(), 0);
}

TEST_F(EtcdGatewayTest, LeasesStillExpireWhenAGatewayDies) {
  std::string second = cluster_.start_etcd_gateway("gw2").addr;
  Etcdctl ctl = etcdctl(second);
  // Whichever gateway kept the leases, the one left takes over once the dead one's
  // member record runs out.
  cluster_.etcd_gateway("gw1").process->kill_now();
  std::string lease = grant_lease(ctl, "2");
  ASSERT_EQ(ctl.run({"put", "orphan", "v", "--lease=" + lease}).exit_code, 0);
  EXPECT_TRUE(testing::poll_until([&] { return !key_exists(ctl, "orphan"); }, 40s));
}

// One Watch stream over gRPC; a thread collects what the gateway sends.
class WatchStream {
 public:
  explicit WatchStream(const std::string& addr)
      : stub_(etcdserverpb::Watch::NewStub(grpc::CreateChannel(addr, grpc::InsecureChannelCredentials()))),
        stream_(stub_->Watch(&ctx_)) {
    reader_ = std::thread([this] {
      etcdserverpb::WatchResponse r;
      while (stream_->Read(&r)) {
        std::lock_guard lock(mu_);
        got_.push_back(r);
      }
      grpc::Status status = stream_->Finish();
      std::lock_guard lock(mu_);
      ended_ = true;
      status_ = status;
    });
  }
  ~WatchStream() {
    ctx_.TryCancel();
    reader_.join();
  }
  bool send(const etcdserverpb::WatchRequest& req) { return stream_->Write(req); }
  bool create(etcdserverpb::WatchCreateRequest c) {
    etcdserverpb::WatchRequest req;
    *req.mutable_create_request() = std::move(c);
    return send(req);
  }
  std::vector<etcdserverpb::WatchResponse> responses() const {
    std::lock_guard lock(mu_);
    return got_;
  }
  bool ended() const {
    std::lock_guard lock(mu_);
    return ended_;
  }
  // How the gateway ended the stream (once ended()).
  grpc::Status status() const {
    std::lock_guard lock(mu_);
    return status_;
  }
  // Waits until some response satisfies `pred`.
  bool wait_for(const std::function<bool(const etcdserverpb::WatchResponse&)>& pred,
                std::chrono::milliseconds timeout = 20s) const {
    return testing::poll_until(
        [&] {
          auto all = responses();
          return std::any_of(all.begin(), all.end(), pred);
        },
        timeout);
  }

 private:
  std::unique_ptr<etcdserverpb::Watch::Stub> stub_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse>> stream_;
  mutable std::mutex mu_;
  std::vector<etcdserverpb::WatchResponse> got_;
  bool ended_ = false;
  grpc::Status status_;
  std::thread reader_;
};

etcdserverpb::WatchCreateRequest watch_prefix(const std::string& prefix, std::int64_t start_revision = 0) {
  etcdserverpb::WatchCreateRequest c;
  c.set_key(prefix);
  std::string end = prefix;
  end.back() = static_cast<char>(end.back() + 1);
  c.set_range_end(end);
  c.set_start_revision(start_revision);
  return c;
}

// Writers put keys through one gateway while a watcher follows them through another;
// that gateway is killed midway and the watcher resumes on the survivor from its last
// revision + 1. It must see every acknowledged put exactly once, in revision order.
TEST_F(EtcdGatewayTest, AWatcherSeesEveryWriteOnceInOrderAcrossAGatewayRestart) {
  std::string writer_gw = cluster_.start_etcd_gateway("gw2").addr;
  auto first = std::make_unique<WatchStream>(gateway_);
  ASSERT_TRUE(first->create(watch_prefix("ev/")));
  ASSERT_TRUE(first->wait_for([](const auto& r) { return r.created(); }));
  const std::int64_t created_at = first->responses().front().header().revision();

  std::mutex mu;
  std::map<std::pair<std::string, std::int64_t>, std::string> acknowledged;  // (key, revision) -> value
  std::atomic<int> done_writes{0};
  std::vector<std::thread> writers;
  for (int t = 0; t < 4; ++t) {
    writers.emplace_back([&, t] {
      auto kv = etcdserverpb::KV::NewStub(grpc::CreateChannel(writer_gw, grpc::InsecureChannelCredentials()));
      for (int i = 0; i < 40; ++i) {
        std::string key = "ev/" + std::to_string(i % 5);
        std::string value = std::to_string(t) + "-" + std::to_string(i);
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + 20s);
        etcdserverpb::TxnRequest txn;  // two keys in one revision each time
        for (const auto& k : {key, key + "/pair"}) {
          txn.add_success()->mutable_request_put()->set_key(k);
          txn.mutable_success()->rbegin()->mutable_request_put()->set_value(value);
        }
        etcdserverpb::TxnResponse resp;
        grpc::Status s = kv->Txn(&ctx, txn, &resp);
        ++done_writes;
        if (s.ok()) {
          std::lock_guard lock(mu);
          for (const auto& k : {key, key + "/pair"}) {
            acknowledged[{k, resp.header().revision()}] = value;
          }
        }
      }
    });
  }
  ASSERT_TRUE(testing::poll_until([&] { return done_writes >= 60; }, 60s));
  cluster_.etcd_gateway("gw1").process->kill_now();
  ASSERT_TRUE(testing::poll_until([&] { return first->ended(); }, 20s)) << "the stream ends with its gateway";
  std::vector<etcdserverpb::Event> events;
  for (const auto& r : first->responses()) {
    events.insert(events.end(), r.events().begin(), r.events().end());
  }
  std::int64_t resume = events.empty() ? created_at + 1 : events.back().kv().mod_revision() + 1;
  WatchStream second(writer_gw);
  ASSERT_TRUE(second.create(watch_prefix("ev/", resume)));
  for (auto& w : writers) {
    w.join();
  }
  std::int64_t newest = 0;
  {
    std::lock_guard lock(mu);
    ASSERT_GT(acknowledged.size(), 100u);
    for (const auto& [key_rev, value] : acknowledged) {
      newest = std::max(newest, key_rev.second);
    }
  }
  ASSERT_TRUE(second.wait_for([&](const auto& r) {
    return r.events_size() > 0 && r.events(r.events_size() - 1).kv().mod_revision() >= newest;
  })) << "the resumed watcher reaches the newest write";
  for (const auto& r : second.responses()) {
    EXPECT_FALSE(r.canceled()) << r.cancel_reason();
    // A Txn's two puts (same revision, same value) come in one response, never split.
    std::map<std::pair<std::int64_t, std::string>, int> per_txn;
    for (const auto& e : r.events()) {
      ++per_txn[{e.kv().mod_revision(), e.kv().value()}];
    }
    for (const auto& [rev_value, n] : per_txn) {
      EXPECT_EQ(n, 2) << "the Txn at " << rev_value.first << " writing " << rev_value.second
                      << " was split across responses";
    }
    events.insert(events.end(), r.events().begin(), r.events().end());
  }
  std::map<std::pair<std::string, std::int64_t>, std::string> seen;
  std::int64_t previous = 0;
  for (const auto& e : events) {
    EXPECT_EQ(e.type(), etcdserverpb::Event::PUT);
    EXPECT_GE(e.kv().mod_revision(), previous) << "revision order";
    previous = e.kv().mod_revision();
    bool fresh = seen.emplace(std::make_pair(e.kv().key(), e.kv().mod_revision()), e.kv().value()).second;
    EXPECT_TRUE(fresh) << "seen twice: " << e.kv().key() << " at " << e.kv().mod_revision();
  }
  // Every acknowledged write was seen; anything else seen is a write whose answer was lost.
  for (const auto& [key_rev, value] : acknowledged) {
    auto it = seen.find(key_rev);
    ASSERT_NE(it, seen.end()) << "missed: " << key_rev.first << " at " << key_rev.second;
    EXPECT_EQ(it->second, value);
  }
  EXPECT_GE(seen.size(), acknowledged.size());
  // Live events came from the store's change feed (polled), not from scans of the range.
  std::string metrics = cluster_.status_get(cluster_.store("s1").status_addr, "/metrics");
  const std::string polls = "rdb_kv_requests_total{method=\"KvChangeFeedPoll\"} ";
  auto at = metrics.find(polls);
  ASSERT_NE(at, std::string::npos) << "no change feed was polled";
  EXPECT_GT(std::stod(metrics.substr(at + polls.size())), 0.0);
}

// Each Watch stream holds two gateway threads: past --max-watch-streams a new one is refused.
TEST_F(EtcdGatewayTest, WatchStreamsAreBoundedPerGateway) {
  std::string gw = cluster_.start_etcd_gateway("gw-few", {"--max-watch-streams", "1"}).addr;
  auto first = std::make_unique<WatchStream>(gw);
  ASSERT_TRUE(first->create(watch_prefix("few/")));
  ASSERT_TRUE(first->wait_for([](const auto& r) { return r.created(); }));
  WatchStream second(gw);
  ASSERT_TRUE(testing::poll_until([&] { return second.ended(); }, 20s));
  EXPECT_EQ(second.status().error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(second.status().error_message().find("--max-watch-streams"), std::string::npos)
      << second.status().error_message();
  // Once the first ends, a new stream is served.
  first.reset();
  ASSERT_TRUE(testing::poll_until(
      [&] {
        WatchStream third(gw);
        (void)third.create(watch_prefix("few/"));
        return third.wait_for([](const auto& r) { return r.created(); }, 2s);
      },
      20s));
}

TEST_F(EtcdGatewayTest, WatchFiltersPrevKvProgressCancelAndIdsAnswerAsEtcdDocuments) {
  std::string gw = cluster_.start_etcd_gateway("notify", {"--watch-progress-notify-interval-ms", "300"}).addr;
  WatchStream w(gw);
  etcdserverpb::WatchCreateRequest only_deletes;
  only_deletes.set_key("f");
  only_deletes.set_watch_id(7);
  only_deletes.set_prev_kv(true);
  only_deletes.add_filters(etcdserverpb::WatchCreateRequest::NOPUT);
  ASSERT_TRUE(w.create(only_deletes));
  ASSERT_TRUE(w.wait_for([](const auto& r) { return r.created() && r.watch_id() == 7; }));
  ASSERT_TRUE(w.create(only_deletes));
  ASSERT_TRUE(w.wait_for([](const auto& r) { return r.canceled() && r.watch_id() == 7; })) << "an id in use is refused";
  etcdserverpb::WatchCreateRequest notified;
  notified.set_key("quiet");
  notified.set_progress_notify(true);
  ASSERT_TRUE(w.create(notified));
  ASSERT_TRUE(w.wait_for([](const auto& r) { return r.created() && r.watch_id() == 0; })) << "auto ids start at 0";

  Etcdctl ctl = etcdctl(gw);
  ASSERT_EQ(ctl.run({"put", "f", "1"}).exit_code, 0);
  ASSERT_EQ(ctl.run({"put", "f", "2"}).exit_code, 0);
  ASSERT_EQ(ctl.run({"del", "f"}).exit_code, 0);
  ASSERT_TRUE(w.wait_for([](const auto& r) { return r.watch_id() == 7 && r.events_size() > 0; }));
  std::int64_t deleted_at = 0;
  for (const auto& r : w.responses()) {
    if (r.watch_id() == 7 && r.events_size() > 0) {
      ASSERT_EQ(r.events_size(), 1) << "puts filtered out";
      EXPECT_EQ(r.events(0).type(), etcdserverpb::Event::DELETE);
      EXPECT_EQ(r.events(0).prev_kv().value(), "2");
      EXPECT_EQ(r.events(0).prev_kv().version(), 2);
      deleted_at = r.events(0).kv().mod_revision();
    }
  }
  // A progress request: every watcher has everything up to the revision it names.
  etcdserverpb::WatchRequest progress;
  progress.mutable_progress_request();
  ASSERT_TRUE(w.send(progress));
  ASSERT_TRUE(w.wait_for([&](const auto& r) { return r.watch_id() == -1 && r.header().revision() >= deleted_at; }));
  // The quiet watcher asked for notifications: an empty answer with its id comes.
  ASSERT_TRUE(w.wait_for([](const auto& r) {
    return r.watch_id() == 0 && !r.created() && r.events_size() == 0 && r.header().revision() > 0;
  })) << "progress notification";
  etcdserverpb::WatchRequest cancel;
  cancel.mutable_cancel_request()->set_watch_id(0);
  ASSERT_TRUE(w.send(cancel));
  ASSERT_TRUE(w.wait_for([](const auto& r) { return r.watch_id() == 0 && r.canceled(); }));
  // Garbage: an empty request is ignored; a key longer than any the gateway takes is
  // refused with a reason; the stream goes on serving.
  ASSERT_TRUE(w.send(etcdserverpb::WatchRequest()));
  etcdserverpb::WatchCreateRequest huge;
  huge.set_key(std::string(64 * 1024, 'k'));
  huge.set_watch_id(99);
  ASSERT_TRUE(w.create(huge));
  ASSERT_TRUE(w.wait_for([](const auto& r) {
    return r.watch_id() == 99 && r.canceled() && r.cancel_reason().find("at most") != std::string::npos;
  }));
  ASSERT_TRUE(w.send(progress));
  ASSERT_TRUE(testing::poll_until(
      [&] {
        auto all = w.responses();
        return std::count_if(all.begin(), all.end(), [](const auto& r) { return r.watch_id() == -1; }) >= 2;
      },
      20s))
      << "still serving after the garbage";
}

// A DeleteRange of more keys than one rdb request carries is still one revision, and a
// watcher gets all of its events (in fragments when it asked for them).
TEST_F(EtcdGatewayTest, ADeleteOfManyKeysIsOneRevisionAndOneWatchedStep) {
  std::string gw = cluster_.start_etcd_gateway("big", {"--max-txn-ops", "10240"}).addr;
  auto kv = etcdserverpb::KV::NewStub(grpc::CreateChannel(gw, grpc::InsecureChannelCredentials()));
  constexpr int kKeys = 12'000;  // more than one request's 10,240
  for (int from = 0; from < kKeys; from += 10'000) {
    etcdserverpb::TxnRequest txn;
    for (int i = from; i < std::min(kKeys, from + 10'000); ++i) {
      auto* put = txn.add_success()->mutable_request_put();
      put->set_key(fmt::format("many/{:06}", i));
      put->set_value("v");
    }
    grpc::ClientContext ctx;
    etcdserverpb::TxnResponse resp;
    ASSERT_TRUE(kv->Txn(&ctx, txn, &resp).ok());
  }
  WatchStream w(gw);
  auto c = watch_prefix("many/");
  c.set_fragment(true);
  ASSERT_TRUE(w.create(c));
  ASSERT_TRUE(w.wait_for([](const auto& r) { return r.created(); }));
  grpc::ClientContext ctx;
  etcdserverpb::DeleteRangeRequest del;
  del.set_key("many/");
  del.set_range_end("many0");
  etcdserverpb::DeleteRangeResponse deleted;
  grpc::Status s = kv->DeleteRange(&ctx, del, &deleted);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(deleted.deleted(), kKeys);
  std::size_t events = 0;
  ASSERT_TRUE(testing::poll_until(
      [&] {
        events = 0;
        for (const auto& r : w.responses()) {
          for (const auto& e : r.events()) {
            EXPECT_EQ(e.type(), etcdserverpb::Event::DELETE);
            EXPECT_EQ(e.kv().mod_revision(), deleted.header().revision()) << "one revision";
            ++events;
          }
        }
        return events >= static_cast<std::size_t>(kKeys);
      },
      90s))
      << events;
  EXPECT_EQ(events, static_cast<std::size_t>(kKeys));
  etcdserverpb::RangeRequest count;
  count.set_key("many/");
  count.set_range_end("many0");
  count.set_count_only(true);
  grpc::ClientContext cctx;
  etcdserverpb::RangeResponse left;
  ASSERT_TRUE(kv->Range(&cctx, count, &left).ok());
  EXPECT_EQ(left.count(), 0);
}

}  // namespace
}  // namespace rdb
