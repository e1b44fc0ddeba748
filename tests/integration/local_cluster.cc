#include "local_cluster.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <stdexcept>

namespace rdb::testing {

std::string Daemon::logs() const {
  return process ? "--- stderr ---\n" + process->stderr_text() : std::string("(not started)");
}

Daemon LocalCluster::launch(const std::string& binary, const std::string& name, std::vector<std::string> args,
                            const std::string& data_dir, const std::vector<std::string>& env,
                            const std::string& listen_addr) {
  std::string ready = dir_.sub(name + ".ready." + std::to_string(launches_++));
  std::vector<std::string> argv = {
      bin_dir() + "/" + binary, "--addr", listen_addr, "--status-addr", "127.0.0.1:0", "--data-dir", data_dir,
      "--ready-file",           ready};
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
  return d;
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
    args.insert(args.end(), {"--pd", pd_.addr});
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

}  // namespace rdb::testing
