// The etcd watch workload and its checker. Writers put and delete keys through rdb-etcd
// gateways; watchers follow the keys' prefix through the gateways, resuming from their
// last revision + 1 whenever a stream ends (every few seconds on purpose, and whenever a
// gateway dies: one gateway is killed and replaced periodically). Whatever the faults
// did, each watcher must see every acknowledged write exactly once, in revision order,
// with its value, and nothing that was never written; all watchers see the same events.
// Thread safety: run_etcd_watch spawns its own threads and gateways (they die with the
// thread that calls it, so call it on a thread that lives until it returns).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace rdb::chaos {

inline constexpr const char* kEtcdWatchPrefix = "chaos-etcd/";

struct EtcdWatchOptions {
  std::string pd;           // PD endpoints for the gateways
  std::string scratch_dir;  // gateways' ready files and logs
  std::chrono::milliseconds duration{10000};
  std::chrono::milliseconds catch_up{90000};     // after the duration: for watchers to reach the newest write
  std::chrono::milliseconds gateway_life{5000};  // a gateway is killed and replaced this often
  int writers = 2;
  int keys = 6;
  int watchers = 2;
  std::uint64_t seed = 1;
};

struct EtcdWrite {
  std::string key;
  std::string value;          // empty: a delete
  std::int64_t revision = 0;  // 0 when the outcome is unknown
  bool acknowledged = false;
};

struct EtcdEvent {
  std::string key;
  std::string value;
  bool deleted = false;
  std::int64_t revision = 0;
};

struct EtcdWatchResult {
  bool set_up = false;
  std::vector<EtcdWrite> writes;
  std::uint64_t writes_failed = 0;           // refused, certainly not applied
  std::vector<std::vector<EtcdEvent>> seen;  // per watcher
  std::uint64_t resumes = 0;
  std::uint64_t gateway_restarts = 0;
  std::string error;      // what kept it from running or catching up
  std::string violation;  // the first property broken (check_etcd_watch)
  bool ok() const { return set_up && error.empty() && violation.empty(); }
};

EtcdWatchResult run_etcd_watch(const EtcdWatchOptions& options);
// Fills result.violation with the first broken property, if any.
void check_etcd_watch(EtcdWatchResult& result);

}  // namespace rdb::chaos
