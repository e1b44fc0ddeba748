#include "local_cluster.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <stdexcept>

namespace rdb::testing {
namespace {

// A port nothing listens on now (the kernel's pick for a socket closed at once): for
// PD members, whose addresses must be known before they start.
int unused_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof(a);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    throw std::runtime_error("cannot pick a free port");
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

}  // namespace

std::string Daemon::logs() const {
  return process ? "--- stderr ---\n" + process->stderr_text() : std::string("(not started)");
}

Daemon LocalCluster::launch(const std::string& binary, const std::string& name, std::vector<std::string> args,
                            const std::string& data_dir, const std::vector<std::string>& env,
                            const std::string& listen_addr) {
  std::string ready = dir_.sub(name + ".ready." + std::to_string(launches_++));
  std::vector<std::string> argv = {bin_dir() + "/" + binary, "--addr", listen_addr, "--status-addr", "127.0.0.1:0",
                                   "--ready-file",           ready};
  if (!data_dir.empty()) {  // stateless daemons (rdb-etcd) take none
    argv.insert(argv.end(), {"--data-dir", data_dir});
  }
  argv.insert(argv.end(), args.begin(), args.end());
  Daemon d;
  d.data_dir = data_dir;
  d.process = std::make_unique<Subprocess>(argv, dir_.sub(name + ".log." + std::to_string(launches_)), env);
  bool ready_ok =
      poll_until([&] { return !read_file(ready).empty() || !d.process->running(); }, std::chrono::seconds(30));
  std::string text = read_file(ready);
  if (!ready_ok || text.empty()) {
    throw std::runtime_error(name + " did not become ready:\n" + d.logs());
  }
  auto j = nlohmann::json::parse(text);
  d.addr = j["addr"];
  d.status_addr = j["status_addr"];
  d.raft_addr = j.value("raft_addr", "");
  return d;
}

Daemon& LocalCluster::start_etcd_gateway(const std::string& name, const std::vector<std::string>& extra_args) {
  std::vector<std::string> args = {"--pd", pd_group_.empty() ? pd_.addr : pd_endpoints()};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  gateways_.emplace_back(name, launch("rdb-etcd", name, args, ""));
  return gateways_.back().second;
}

Daemon& LocalCluster::etcd_gateway(const std::string& name) {
  for (auto& [n, d] : gateways_) {
    if (n == name) {
      return d;
    }
  }
  throw std::runtime_error("no gateway named " + name);
}

Daemon& LocalCluster::start_pd(const std::vector<std::string>& extra_args) {
  pd_args_ = extra_args;
  pd_ = launch("rdb-pd", "pd", pd_args_, dir_.sub("pd"));
  return pd_;
}

std::vector<std::string> LocalCluster::store_args(const StoreSpec& spec) const {
  // Defaults first: a test's own flags come later and win (the store takes the last
  // --data-dir / --reserve-space / --min-free-space given).
  std::vector<std::string> args = {"--pd-heartbeat-ms", "200", "--raft-tick-ms", "50", "--reserve-space", "0"};
  args.insert(args.end(), spec.args.begin(), spec.args.end());
  if (spec.with_pd) {
    args.insert(args.end(), {"--pd", pd_group_.empty() ? pd_.addr : pd_endpoints()});
  }
  return args;
}

Daemon& LocalCluster::start_store(const std::string& name, bool with_pd, const std::vector<std::string>& extra,
                                  const std::vector<std::string>& env) {
  StoreSpec spec{with_pd, extra, env};
  stores_.emplace_back(name, launch("rdb-server", name, store_args(spec), dir_.sub(name), env));
  store_specs_.emplace_back(name, std::move(spec));
  return stores_.back().second;
}

CommandResult LocalCluster::run_store_expecting_exit(const std::string& data_dir, bool with_pd) {
  std::vector<std::string> argv = {
      bin_dir() + "/rdb-server", "--addr", "127.0.0.1:0", "--status-addr", "127.0.0.1:0", "--data-dir", data_dir,
      "--pd-wait-seconds",       "2"};
  if (with_pd) {
    argv.push_back("--pd");
    argv.push_back(pd_.addr);
  }
  return run_command(argv, dir_.path(), std::chrono::seconds(30));
}

Daemon& LocalCluster::store(const std::string& name) {
  for (auto& [n, d] : stores_) {
    if (n == name) {
      return d;
    }
  }
  throw std::runtime_error("no store named " + name);
}

std::vector<std::string> LocalCluster::pd_member_args(const std::string& name, bool join) const {
  std::string initial;
  for (const auto& [n, addr] : pd_group_addrs_) {
    initial += (initial.empty() ? "" : ",") + n + "=" + addr;
  }
  std::vector<std::string> args = {"--name", name, "--initial-cluster", initial};
  if (join) {
    args.insert(args.end(), {"--initial-cluster-state", "existing"});
  }
  args.insert(args.end(), pd_group_args_.begin(), pd_group_args_.end());
  return args;
}

void LocalCluster::start_pd_group(int n, const std::vector<std::string>& extra_args,
                                  std::function<std::vector<std::string>(const std::string&)> env) {
  pd_group_args_ = extra_args;
  pd_group_env_ = std::move(env);
  for (int i = 1; i <= n; ++i) {
    pd_group_addrs_.emplace_back("pd" + std::to_string(i), "127.0.0.1:" + std::to_string(unused_port()));
  }
  // All members start at once: none can elect a leader alone, so launching them one
  // by one (each waiting for its ready file) is fine.
  for (const auto& [name, addr] : pd_group_addrs_) {
    auto env_vars = pd_group_env_ ? pd_group_env_(name) : std::vector<std::string>{};
    pd_group_.emplace_back(name, launch(pd_binary_, name, pd_member_args(name, false), dir_.sub(name), env_vars, addr));
  }
}

Daemon& LocalCluster::pd_member(const std::string& name) {
  for (auto& [n, d] : pd_group_) {
    if (n == name) {
      return d;
    }
  }
  throw std::runtime_error("no PD member named " + name);
}

std::vector<std::string> LocalCluster::pd_member_names() const {
  std::vector<std::string> out;
  for (const auto& [n, d] : pd_group_) {
    out.push_back(n);
  }
  return out;
}

std::string LocalCluster::pd_endpoints() const {
  std::string out;
  for (const auto& [n, addr] : pd_group_addrs_) {
    out += (out.empty() ? "" : ",") + addr;
  }
  return out;
}

void LocalCluster::kill_pd_member(const std::string& name) {
  pd_member(name).process->kill_now();
}

void LocalCluster::restart_pd_member(const std::string& name) {
  Daemon& d = pd_member(name);
  std::string addr = d.addr;
  std::string earlier = d.earlier_logs + d.logs();
  d.process.reset();
  auto env_vars = pd_group_env_ ? pd_group_env_(name) : std::vector<std::string>{};
  d = launch(pd_binary_, name, pd_member_args(name, false), d.data_dir, env_vars, addr);
  d.earlier_logs = std::move(earlier);
}

std::string LocalCluster::new_pd_member_address(const std::string& name) {
  pd_group_addrs_.emplace_back(name, "127.0.0.1:" + std::to_string(unused_port()));
  return pd_group_addrs_.back().second;
}

Daemon& LocalCluster::join_pd_member(const std::string& name) {
  auto env_vars = pd_group_env_ ? pd_group_env_(name) : std::vector<std::string>{};
  pd_group_.emplace_back(name, launch(pd_binary_, name, pd_member_args(name, true), dir_.sub(name), env_vars,
                                      pd_group_addrs_.back().second));
  return pd_group_.back().second;
}

void LocalCluster::restart_pd() {
  pd_.process.reset();
  pd_ = launch("rdb-pd", "pd", pd_args_, dir_.sub("pd"));
}

void LocalCluster::restart_pd_in_place() {
  pd_.process.reset();
  std::string addr = pd_.addr;
  pd_ = launch("rdb-pd", "pd", pd_args_, dir_.sub("pd"), {}, addr);
}

void LocalCluster::restart_store(const std::string& name) {
  const StoreSpec* spec = nullptr;
  for (auto& [n, s] : store_specs_) {
    if (n == name) {
      spec = &s;
    }
  }
  if (spec == nullptr) {
    throw std::runtime_error("no store named " + name);
  }
  Daemon& d = store(name);
  d.process.reset();
  d = launch("rdb-server", name, store_args(*spec), d.data_dir, spec->env);
}

std::string LocalCluster::status_get(const std::string& status_addr, const std::string& path) const {
  const auto colon = status_addr.rfind(':');
  std::string fetch = "exec 3<>/dev/tcp/" + status_addr.substr(0, colon) + "/" + status_addr.substr(colon + 1) +
                      "; printf 'GET " + path + " HTTP/1.0\\r\\n\\r\\n' >&3; sed '1,/^\\r$/d' <&3";
  return run_command({"/bin/bash", "-c", fetch}, dir_.path(), std::chrono::seconds(5)).out;
}

std::uint64_t LocalCluster::metric(const std::string& status_addr, const std::string& name) const {
  const std::string body = "\n" + status_get(status_addr, "/metrics");
  const std::string line = "\n" + name + " ";
  auto at = body.find(line);
  return at == std::string::npos ? 0 : std::stoull(body.substr(at + line.size()));
}

}  // namespace rdb::testing
