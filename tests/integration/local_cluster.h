// Real rdb-pd / rdb-server processes for integration tests.
//
// Each daemon is started on port 0 with a ready file; start() waits (polling
// with a deadline) until the ready file names the bound addresses. Processes
// are SIGKILLed and reaped when their handle is destroyed.
// Thread safety: one owner thread.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "support/process.h"
#include "support/temp_dir.h"

namespace rdb::testing {

struct Daemon {
  std::unique_ptr<Subprocess> process;
  std::string addr;
  std::string status_addr;
  std::string raft_addr;  // stores with --raft-addr: their plain-TCP Raft listener
  std::string data_dir;
  std::string earlier_logs;  // PD members: what the daemon's earlier runs (before restarts) wrote
  std::string logs() const;
};

class LocalCluster {
 public:
  LocalCluster() = default;

  // Starts rdb-pd with its data under the temp dir ("pd").
  Daemon& start_pd(const std::vector<std::string>& extra_args = {});
  // Starts an rdb-server; with_pd registers it with the running PD.
  // `env` ("NAME=value") is added to the store's environment, on restarts too.
  Daemon& start_store(const std::string& name, bool with_pd = true, const std::vector<std::string>& extra_args = {},
                      const std::vector<std::string>& env = {});
  // Runs a daemon to its exit (for start-up failures); returns exit code and stderr.
  CommandResult run_store_expecting_exit(const std::string& data_dir, bool with_pd);

  // Starts a PD group of `n` members named pd1..pdN on free ports, each with
  // `extra_args` and the environment `env(name)` (also on restarts). Stores started
  // afterwards are given every member. pd() stays the single PD of start_pd().
  void start_pd_group(int n, const std::vector<std::string>& extra_args = {},
                      std::function<std::vector<std::string>(const std::string&)> env = nullptr);
  // The binary PD members run (before start_pd_group): rdb-pd-sysmalloc for libfaketime.
  void set_pd_binary(std::string binary) { pd_binary_ = std::move(binary); }
  Daemon& pd_member(const std::string& name);
  std::vector<std::string> pd_member_names() const;
  // "HOST:PORT,HOST:PORT,...": what --pd and ClientOptions::pd_endpoints take.
  std::string pd_endpoints() const;
  // kill -9 one member (its handle stays, not running) / restart it on its address.
  void kill_pd_member(const std::string& name);
  void restart_pd_member(const std::string& name);
  // A new member's address (to give `rdb-cli pd-member add`), then the member itself,
  // started with --initial-cluster-state existing once it was added.
  std::string new_pd_member_address(const std::string& name);
  Daemon& join_pd_member(const std::string& name);

  // Starts an rdb-etcd gateway in front of the running PD (or PD group).
  Daemon& start_etcd_gateway(const std::string& name, const std::vector<std::string>& extra_args = {});
  Daemon& etcd_gateway(const std::string& name);

  Daemon& pd() { return pd_; }
  Daemon& store(const std::string& name);
  const TempDir& dir() const { return dir_; }
  // The body of GET `path` from a daemon's status address ("" when it does not answer).
  std::string status_get(const std::string& status_addr, const std::string& path) const;
  // An unlabelled counter or gauge from a daemon's /metrics (0 when it is not there).
  std::uint64_t metric(const std::string& status_addr, const std::string& name) const;

  // Restarts a daemon with the same data dir (after it was stopped or killed).
  // The PD comes back on a new port; stores learn it only if they restart too.
  void restart_pd();
  // Restarts the PD on the address it had, so running stores reconnect to it.
  void restart_pd_in_place();
  // Restarts a store with the arguments and environment it was started with.
  void restart_store(const std::string& name);

 private:
  struct StoreSpec {
    bool with_pd = true;
    std::vector<std::string> args;
    std::vector<std::string> env;
  };
  Daemon launch(const std::string& binary, const std::string& name, std::vector<std::string> args,
                const std::string& data_dir, const std::vector<std::string>& env = {},
                const std::string& listen_addr = "127.0.0.1:0");
  std::vector<std::string> store_args(const StoreSpec& spec) const;

  std::vector<std::string> pd_member_args(const std::string& name, bool join) const;

  TempDir dir_;
  Daemon pd_;
  // The PD group (start_pd_group): members by name, in start order.
  std::vector<std::pair<std::string, Daemon>> pd_group_;
  std::vector<std::pair<std::string, std::string>> pd_group_addrs_;  // name -> HOST:PORT
  std::vector<std::string> pd_group_args_;
  std::string pd_binary_ = "rdb-pd";
  std::function<std::vector<std::string>(const std::string&)> pd_group_env_;
  std::vector<std::string> pd_args_;
  std::vector<std::pair<std::string, Daemon>> stores_;
  std::vector<std::pair<std::string, Daemon>> gateways_;
  std::vector<std::pair<std::string, StoreSpec>> store_specs_;
  int launches_ = 0;
};

}  // namespace rdb::testing
