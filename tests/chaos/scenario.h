// One chaos run end to end: a real PD + 3-store cluster (each store dialling its
// peers through a FaultNetwork proxy), the workload, a nemesis injecting one kind
// of fault on a schedule (quiet, fault window, heal, ...), then — everything
// healed — the final reads, the linearizability and durability checks, and the
// history and reports written to a directory.
//
// Scenarios (scenario_names()):
//   kill-leader       kill -9 the Raft leader's store, restart it after the window
//   kill-random       kill -9 a random store
//   pause             SIGSTOP a random store (leader or follower), SIGCONT after
//   partition-leader  cut the leader off from every other node (both ways)
//   partition-split   a random minority of stores vs. the majority (with PD)
//   one-way           the leader's inbound links are cut: it can send, not hear
//   pd-restart        kill -9 the PD, restart it on the same address
//   pd-leader-kill    (a PD group of 3) kill -9 the PD leader, restart it after the window
//   pd-partition      (a PD group of 3) cut the PD leader off from the other members
// Every run also asks PD for timestamps throughout and checks them (tso_order.h), and
// runs the transactional bank (bank.h: every snapshot must balance) and list-append
// transactions (list_append.h: no anomaly snapshot isolation forbids).
//   confused-peer     stale, duplicated, malformed and misaddressed Raft messages
//                     sent straight to every store (confused_peer.h)
//   split             split the regions at a workload key and inside the log keys
//                     (permanent: the run goes on with more and more regions)
//   mixed             each fault window picks one of the above at random
// Thread safety: run_scenario is self-contained; runs may not share out_dir.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"
#include "report.h"

namespace rdb::chaos {

struct ScenarioOptions {
  std::string scenario = "kill-leader";
  std::chrono::milliseconds duration{20000};  // workload length
  std::chrono::milliseconds quiet{2000};      // before each fault
  std::chrono::milliseconds fault{3000};      // each fault window
  std::uint64_t seed = 1;
  int clients = 8;
  int keys = 4;
  bool write_heavy = false;             // see WorkloadOptions
  std::vector<std::string> store_args;  // extra rdb-server flags, e.g. --test-ack-before-commit
  std::string out_dir;                  // history.jsonl, report.txt, report.html; empty: not written
  int bank_accounts = 5;                // the transactional bank alongside (bank.h); 0: none
  int bank_clients = 3;
  bool list_append = true;  // list-append transactions and their checker (list_append.h)
  int list_keys = 6;
  int list_clients = 3;
  bool txn_one_pc = true;   // the bank and list-append clients commit one-region transactions in one step
  bool etcd_watch = false;  // rdb-etcd gateways, writers and watchers alongside (etcd_watch.h)
};

const std::vector<std::string>& scenario_names();

// Errors: an unknown scenario, a cluster that did not start. A run that finds a
// violation is not an error: see RunSummary::passed().
Result<RunSummary> run_scenario(const ScenarioOptions& options);

}  // namespace rdb::chaos
