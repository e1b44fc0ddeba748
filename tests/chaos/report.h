// Reports of a chaos run: a text summary (operations by kind and outcome, the
// fault schedule, both checkers' verdicts) and a self-contained HTML page with an
// SVG timeline — every operation's latency over time (log scale) coloured by
// outcome, throughput below it, fault windows shaded — so a person sees at a
// glance what the faults did.
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bank.h"
#include "durability.h"
#include "etcd_watch.h"
#include "history.h"
#include "linearizability.h"
#include "list_append.h"

namespace rdb::chaos {

struct RunSummary {
  std::string scenario;
  std::uint64_t seed = 0;
  History history;
  Verdict linearizability;
  DurabilityVerdict durability;
  // Confused-peer faults: messages the fault sent, and how many refusals the stores logged
  // (rate-limited, so a lower bound on what they dropped).
  std::uint64_t confused_messages_sent = 0;
  std::uint64_t store_drop_log_lines = 0;
  // Merges the stores completed (log lines of their replicas, so one merge counts once per store).
  std::uint64_t merge_log_lines = 0;
  // Stores' log lines about reads that waited out their deadline (a memory lock, no read
  // point): the first few, to explain a failed final read.
  std::vector<std::string> stuck_read_lines;
  std::uint64_t joint_change_log_lines = 0;  // replica moves: PD asked for a joint swap
  // Timestamps a TSO caller obtained through the run, and the check that each is unique
  // and in real-time order (empty when it held).
  std::uint64_t tso_obtained = 0;
  std::uint64_t tso_failed = 0;
  std::string tso_violation;
  std::uint64_t pd_elections = 0;  // PD group runs: times a member took the leadership (log lines)
  bool bank_enabled = false;
  BankResult bank;  // the transactional bank's counts and snapshots (bank.h)
  bool etcd_watch_enabled = false;
  EtcdWatchResult etcd_watch;  // watchers through rdb-etcd (etcd_watch.h)
  bool list_append_enabled = false;
  ListAppendVerdict list_append;
  std::uint64_t list_append_outcomes[3] = {0, 0, 0};  // ok, failed, unknown (ListTxn::Outcome)
  bool passed() const {
    return linearizability.linearizable && durability.ok && tso_violation.empty() && (!bank_enabled || bank.ok()) &&
           (!list_append_enabled || list_append.ok()) && (!etcd_watch_enabled || etcd_watch.ok());
  }
};

std::string text_report(const RunSummary& run);
std::string html_report(const RunSummary& run);

}  // namespace rdb::chaos
