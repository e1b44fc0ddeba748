#include "local_cluster.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <stdexcept>

namespace rdb::testing {

std::string Daemon::logs() const {
  return process ? "--- stderr ---\n" + process->stderr_text() : std::string("(not started)");
}

Daemon LocalCluster::launch(const std::string& binary, const std::string& name, std::vector<std::string> args,
                            const std::string& data_dir) {
  std::string ready = dir_.sub(name + ".ready." + std::to_string(launches_++));
  std::vector<std::string> argv = {
      bin_dir() + "/" + binary, "--addr", "127.0.0.1:0", "--status-addr", "127.0.0.1:0", "--data-dir", data_dir,
      "--ready-file",           ready};
  argv.insert(argv.end(), args.begin(), args.end());
  Daemon d;
  d.data_dir = data_dir;
  d.process = std::make_unique<Subprocess>(argv, dir_.sub(name + ".log." + std::to_string(launches_)));
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

Daemon& LocalCluster::start_store(const std::string& name, bool with_pd, const std::vector<std::string>& extra) {
  std::vector<std::string> args = extra;
  args.insert(args.end(), {"--pd-heartbeat-ms", "200", "--raft-tick-ms", "50"});
  if (with_pd) {
    args.push_back("--pd");
    args.push_back(pd_.addr);
  }
  stores_.emplace_back(name, launch("rdb-server", name, args, dir_.sub(name)));
  store_modes_.emplace_back(name, with_pd);
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
  // The PD keeps its data dir; stores learn its new port only if they restart too.
  pd_.process.reset();
  pd_ = launch("rdb-pd", "pd", pd_args_, dir_.sub("pd"));
}

void LocalCluster::restart_store(const std::string& name) {
  bool with_pd = true;
  for (auto& [n, m] : store_modes_) {
    if (n == name) {
      with_pd = m;
    }
  }
  Daemon& d = store(name);
  d.process.reset();
  std::vector<std::string> args = {"--pd-heartbeat-ms", "200", "--raft-tick-ms", "50"};
  if (with_pd) {
    args.insert(args.end(), {"--pd", pd_.addr});
  }
  d = launch("rdb-server", name, args, d.data_dir);
}

}  // namespace rdb::testing
