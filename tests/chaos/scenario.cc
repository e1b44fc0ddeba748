#include "scenario.h"

#include <fmt/format.h>
#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <stdexcept>
#include <thread>

#include "bank.h"
#include "confused_peer.h"
#include "durability.h"
#include "fault_network.h"
#include "linearizability.h"
#include "list_append.h"
#include "local_cluster.h"
#include "support/tso_order.h"
#include "workload.h"

namespace rdb::chaos {
namespace {

using rdb::testing::LocalCluster;

const std::vector<std::string> kStores = {"s1", "s2", "s3"};  // also the number of replicas
// A fourth store for the replica-move fault (scenarios "move" and "mixed"); the other
// faults hit the first three only.
const char* const kSpareStore = "s4";

// The cluster under test. The network outlives the cluster so that tunnel
// threads never wait on a stopped process: processes die first.
class ChaosCluster {
 public:
  Status start(const ScenarioOptions& o) {
    try {
      // Small regions merge back 2 s after they settle: splits (faults) and merges both
      // happen under the workload.
      std::vector<std::string> pd_args = {"--max-replicas",          "3",    "--store-up-window-ms",   "2000",
                                          "--max-merge-region-size", "1MiB", "--split-merge-interval", "2"};
      group_ = o.scenario == "pd-leader-kill" || o.scenario == "pd-partition";
      if (group_) {
        // Members dial each other through their proxies, so PD links can be cut too.
        std::map<std::string, std::vector<std::string>> envs;
        for (const char* name : {"pd1", "pd2", "pd3"}) {
          RDB_ASSIGN_OR_RETURN(envs[name], net_.env_for(name));
        }
        cluster_.start_pd_group(3, pd_args, [envs](const std::string& name) { return envs.at(name); });
        for (const auto& name : cluster_.pd_member_names()) {
          net_.register_address(cluster_.pd_member(name).addr, name);
        }
      } else {
        cluster_.start_pd(pd_args);
        net_.register_address(cluster_.pd().addr, "pd");
      }
      std::vector<std::string> args = o.store_args;
      args.insert(args.end(), {"--raft-log-gc-threshold", "200", "--split-check-interval-ms", "500"});
      std::vector<std::string> names = kStores;
      if (o.scenario == "move" || o.scenario == "mixed") {
        names.push_back(kSpareStore);  // replicas move onto it and back (regions keep 3 replicas)
      }
      for (const auto& name : names) {
        RDB_ASSIGN_OR_RETURN(auto env, net_.env_for(name));
        cluster_.start_store(name, true, args, env);
        register_store(name);
      }
    } catch (const std::exception& e) {
      return Status::unavailable(fmt::format("the chaos cluster did not start: {}", e.what()));
    }
    client_ = connect(std::chrono::seconds(3));
    if (client_ == nullptr) {
      return Status::unavailable("cannot create a client of the chaos cluster");
    }
    if (!wait_healthy(std::chrono::seconds(60))) {
      return Status::unavailable("the chaos cluster did not elect a leader with 3 replicas in 60 s");
    }
    return Status::ok();
  }

  // The proxy names a store by both its gRPC and (with --raft-addr) its Raft address.
  void register_store(const std::string& name) {
    net_.register_address(cluster_.store(name).addr, name);
    if (!cluster_.store(name).raft_addr.empty()) {
      net_.register_address(cluster_.store(name).raft_addr, name);
    }
  }

  std::unique_ptr<RdbClient> connect(std::chrono::milliseconds timeout, bool txn_one_pc = true) {
    ClientOptions o;
    o.pd_endpoints = {group_ ? cluster_.pd_endpoints() : cluster_.pd().addr};
    o.timeout = timeout;
    o.txn_one_pc = txn_one_pc;
    auto c = RdbClient::connect(o);
    return c.is_ok() ? std::move(c).value() : nullptr;
  }

  // Polls the stores' logs until one holds `needle`; false when the deadline passed first.
  bool wait_for_store_log(const std::string& needle, std::chrono::milliseconds timeout) {
    return rdb::testing::poll_until(
        [&] {
          return std::any_of(kStores.begin(), kStores.end(), [&](const std::string& name) {
            return cluster_.store(name).logs().find(needle) != std::string::npos;
          });
        },
        timeout);
  }

  bool wait_healthy(std::chrono::milliseconds timeout) {
    return rdb::testing::poll_until(
        [&] {
          auto st = client_->cluster_status();
          if (!st.is_ok() || st->regions.empty()) {
            return false;
          }
          return std::all_of(st->regions.begin(), st->regions.end(), [](const RegionInfo& r) {
            return r.peers.size() == kStores.size() && r.leader.id != 0 &&
                   std::all_of(r.peers.begin(), r.peers.end(), [](const PeerInfo& p) { return p.role == "voter"; });
          });
        },
        timeout);
  }

  // The store PD names as the region's leader, or "" when unknown (PD down).
  std::string leader() {
    auto st = client_->cluster_status();
    if (!st.is_ok() || st->regions.empty()) {
      return "";
    }
    for (const auto& s : st->stores) {
      if (s.id != st->regions[0].leader.store_id) {
        continue;
      }
      for (const auto& name : kStores) {
        if (cluster_.store(name).addr == s.address) {
          return name;
        }
      }
    }
    return "";
  }

  void restart_store(const std::string& name) {
    cluster_.restart_store(name);
    register_store(name);
  }

  // The PD group's leader: the member that names itself leader when asked directly
  // (any other member's view may lag), asked for up to 5 s (an election may be under
  // way); "" when none does.
  std::string pd_endpoints() { return group_ ? cluster_.pd_endpoints() : cluster_.pd().addr; }

  std::string pd_leader() {
    std::string found;
    (void)rdb::testing::poll_until(
        [&] {
          for (const auto& name : cluster_.pd_member_names()) {
            ClientOptions o;
            o.pd_endpoints = {cluster_.pd_member(name).addr};
            o.timeout = std::chrono::milliseconds(500);
            auto direct = RdbClient::connect(o);
            auto members =
                direct.is_ok() ? (*direct)->pd_members() : Result<std::vector<PdMemberInfo>>(direct.status());
            for (const auto& m : members.is_ok() ? *members : std::vector<PdMemberInfo>{}) {
              if (m.leader && m.name == name) {
                found = name;
                return true;
              }
            }
          }
          return false;
        },
        std::chrono::seconds(5));
    return found;
  }
  bool pd_group() const { return group_; }

  FaultNetwork& net() { return net_; }
  ConfusedPeer& confused() { return confused_; }
  LocalCluster& cluster() { return cluster_; }
  RdbClient& client() { return *client_; }

 private:
  FaultNetwork net_;
  LocalCluster cluster_;
  std::unique_ptr<RdbClient> client_;
  bool group_ = false;
  ConfusedPeer confused_;  // stopped before the cluster goes
};

struct ActiveFault {
  std::string kind;
  std::string target;
  std::function<void()> heal;
};

std::string pick(const std::vector<std::string>& from, std::mt19937_64& rng) {
  return from[rng() % from.size()];
}

std::string leader_or_random(ChaosCluster& c, std::mt19937_64& rng) {
  std::string leader = c.leader();
  return leader.empty() ? pick(kStores, rng) : leader;
}

std::uint64_t count_lines_with(const std::string& text, const std::string& needle) {
  std::uint64_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + needle.size())) {
    ++n;
  }
  return n;
}

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) {
    out += (out.empty() ? "" : ",") + n;
  }
  return out;
}

ActiveFault start_fault(const std::string& kind, ChaosCluster& c, std::mt19937_64& rng) {
  if (kind == "kill-leader" || kind == "kill-random") {
    std::string victim = kind == "kill-leader" ? leader_or_random(c, rng) : pick(kStores, rng);
    c.cluster().store(victim).process->kill_now();
    return {"kill", victim, [&c, victim] { c.restart_store(victim); }};
  }
  if (kind == "pause") {
    std::string victim = pick(kStores, rng);
    (void)c.cluster().store(victim).process->pause();
    return {"pause", victim, [&c, victim] { c.cluster().store(victim).process->signal(SIGCONT); }};
  }
  if (kind == "partition-leader") {
    std::string victim = leader_or_random(c, rng);
    c.net().isolate(victim);
    return {"partition-leader", victim, [&c] { c.net().heal(); }};
  }
  if (kind == "partition-split") {
    // A minority of the stores vs. the rest (and the PD).
    std::vector<std::string> shuffled = kStores;
    std::shuffle(shuffled.begin(), shuffled.end(), rng);
    std::size_t minority_size = (kStores.size() - 1) / 2;
    std::vector<std::string> minority(shuffled.begin(), shuffled.begin() + static_cast<std::ptrdiff_t>(minority_size));
    std::vector<std::string> majority(shuffled.begin() + static_cast<std::ptrdiff_t>(minority_size), shuffled.end());
    majority.push_back("pd");
    for (const auto& a : minority) {
      for (const auto& b : majority) {
        c.net().cut(a, b);
        c.net().cut(b, a);
      }
    }
    return {"partition-split", join(minority) + " | " + join(majority), [&c] { c.net().heal(); }};
  }
  if (kind == "one-way") {
    std::string victim = leader_or_random(c, rng);
    std::vector<std::string> senders;
    for (const auto& s : kStores) {
      if (s != victim) {
        c.net().cut(s, victim);
        senders.push_back(s);
      }
    }
    return {"one-way", join(senders) + " -/-> " + victim, [&c] { c.net().heal(); }};
  }
  if (kind == "confused-peer") {
    auto st = c.client().cluster_status();
    if (!st.is_ok() || st->regions.empty()) {
      return {"confused-peer", "none (cluster status unavailable)", [] {}};
    }
    std::vector<ConfusedPeer::Target> targets;
    for (const auto& s : st->stores) {
      targets.push_back({s.id, s.address});
    }
    c.confused().start(std::move(targets), st->regions[0], st->cluster_id, rng());
    return {"confused-peer", "every store", [&c] { c.confused().stop(); }};
  }
  if (kind == "split") {
    // Cut the key space where the workload is busy: at one of its keys and inside the
    // log keys. Splits stay (nothing heals them); a key already starting a region is a no-op.
    std::vector<std::string> keys = {fmt::format("{}{}", kKeyPrefix, rng() % 4),
                                     fmt::format("{}{:016x}", kLogPrefix, rng())};
    auto r = c.client().split(keys);
    std::string target =
        join(keys) + (r.is_ok() ? fmt::format(" -> {} regions", r->size()) : " (failed: " + r.status().message() + ")");
    return {"split", target, [] {}};
  }
  if (kind == "merge") {
    // Split where the workload is busy, then let PD merge the pieces back while the
    // fault window lasts (regions this small merge 2 s after they settle); heal reports
    // how many regions are left.
    std::string key = fmt::format("{}{}", kKeyPrefix, 1 + rng() % 3);
    auto r = c.client().split({key});
    std::string target = key + (r.is_ok() ? "" : " (split failed: " + r.status().message() + ")");
    return {"merge", target, [] {}};
  }
  if (kind == "move") {
    // Move a replica of the region where the workload is busy to a store without one:
    // PD adds a learner there and swaps it in for the old replica in one joint step.
    auto st = c.client().cluster_status();
    if (!st.is_ok() || st->regions.empty()) {
      return {"move", "(no cluster status: " + (st.is_ok() ? std::string("no regions") : st.status().message()) + ")",
              [] {}};
    }
    std::string key = fmt::format("{}{}", kKeyPrefix, rng() % 4);
    const RegionInfo* region = &st->regions[0];
    for (const auto& r : st->regions) {
      if (key >= r.start_key && (r.end_key.empty() || key < r.end_key)) {
        region = &r;
      }
    }
    std::vector<std::uint64_t> holders;
    for (const auto& p : region->peers) {
      if (p.role == "voter") {
        holders.push_back(p.store_id);
      }
    }
    std::vector<std::uint64_t> free;
    for (const auto& s : st->stores) {
      bool holds = std::any_of(region->peers.begin(), region->peers.end(),
                               [&](const PeerInfo& p) { return p.store_id == s.id; });
      if (s.state == "up" && !holds) {
        free.push_back(s.id);
      }
    }
    if (holders.empty() || free.empty()) {
      return {"move", fmt::format("region {}: nowhere to move (a move under way?)", region->id), [] {}};
    }
    std::uint64_t from = holders[rng() % holders.size()];
    std::uint64_t to = free[rng() % free.size()];
    Status s = c.client().move_peer(region->id, from, to);
    return {"move",
            fmt::format("region {}: store {} -> {}{}", region->id, from, to,
                        s.is_ok() ? "" : " (refused: " + s.message() + ")"),
            [] {}};
  }
  if (kind == "pd-leader-kill") {
    std::string victim = c.pd_leader();
    std::string target = victim + " (leader)";
    if (victim.empty()) {
      victim = pick(c.cluster().pd_member_names(), rng);
      target = victim + " (no member named itself leader)";
    }
    c.cluster().kill_pd_member(victim);
    return {"pd-leader-kill", target, [&c, victim] { c.cluster().restart_pd_member(victim); }};
  }
  if (kind == "pd-partition") {
    std::string victim = c.pd_leader();
    std::string target = victim + " (leader) | the other PD members";
    if (victim.empty()) {
      victim = pick(c.cluster().pd_member_names(), rng);
      target = victim + " (no member named itself leader) | the other PD members";
    }
    for (const auto& other : c.cluster().pd_member_names()) {
      if (other != victim) {
        c.net().cut(victim, other);
        c.net().cut(other, victim);
      }
    }
    return {"pd-partition", target, [&c] { c.net().heal(); }};
  }
  if (kind == "pd-restart") {
    c.cluster().pd().process->kill_now();
    return {"pd-restart", "pd", [&c] { c.cluster().restart_pd_in_place(); }};
  }
  throw std::invalid_argument("unknown fault " + kind);
}

Status write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  return out ? Status::ok() : ServerStatus::io_error(fmt::format("cannot write '{}'", path));
}

// The bank's final read failed although the cluster healed: says whether a fresh
// process (its own connections) can read the accounts, and, where gdb is installed,
// saves every store's thread stacks and log beside the report.
void diagnose_stuck_read(ChaosCluster& c, const ScenarioOptions& o, std::vector<std::string>& lines) {
  std::string end = kBankPrefix;
  end.back() = static_cast<char>(end.back() + 1);
  std::string script = fmt::format("printf 'scan {} {}\\nrollback\\n' | '{}/rdb-cli' --pd '{}' --timeout-ms 30000 txn",
                                   kBankPrefix, end, rdb::testing::bin_dir(), c.pd_endpoints());
  auto fresh = rdb::testing::run_command({"/bin/sh", "-c", script}, c.cluster().dir().path(), std::chrono::seconds(40));
  lines.push_back(fmt::format("a fresh process's scan: exit {} ({} lines){}", fresh.exit_code,
                              std::count(fresh.out.begin(), fresh.out.end(), '\n'),
                              fresh.err.empty() ? "" : ": " + fresh.err.substr(0, 300)));
  if (o.out_dir.empty() || !std::filesystem::exists("/usr/bin/gdb")) {
    return;
  }
  for (const auto& name : kStores) {
    auto& store = c.cluster().store(name);
    if (store.process == nullptr || !store.process->running()) {
      continue;
    }
    auto stacks = rdb::testing::run_command(
        {"/usr/bin/gdb", "-batch", "-p", std::to_string(store.process->pid()), "-ex", "thread apply all bt"},
        c.cluster().dir().path(), std::chrono::seconds(60));
    (void)write_text(o.out_dir + "/stacks-" + name + ".txt", stacks.out + stacks.err);
    (void)write_text(o.out_dir + "/" + name + ".log", store.logs());
    lines.push_back(fmt::format("{}: stacks and log saved in {}", name, o.out_dir));
  }
}

// Faults on a schedule until `deadline`; every fault is healed before returning.
void run_nemesis(const ScenarioOptions& o, ChaosCluster& c, Recorder& rec,
                 std::chrono::steady_clock::time_point deadline, std::string& error) {
  std::mt19937_64 rng(o.seed);
  // All but "mixed" and the PD group's faults (mixed runs one PD).
  std::vector<std::string> kinds;
  for (const auto& k : scenario_names()) {
    if (k != "mixed" && k != "pd-leader-kill" && k != "pd-partition") {
      kinds.push_back(k);
    }
  }
  try {
    while (true) {
      std::this_thread::sleep_for(o.quiet);  // the schedule, not a wait for a condition
      if (std::chrono::steady_clock::now() + o.fault + std::chrono::seconds(1) > deadline) {
        return;
      }
      std::string kind = o.scenario == "mixed" ? pick(kinds, rng) : o.scenario;
      ActiveFault f = start_fault(kind, c, rng);
      std::size_t handle = rec.fault_started(f.kind, f.target);
      std::this_thread::sleep_for(o.fault);
      f.heal();
      rec.fault_healed(handle);
    }
  } catch (const std::exception& e) {
    error = e.what();
  }
}

}  // namespace

const std::vector<std::string>& scenario_names() {
  static const std::vector<std::string> names = {"kill-leader",     "kill-random", "pause",      "partition-leader",
                                                 "partition-split", "one-way",     "pd-restart", "confused-peer",
                                                 "split",           "merge",       "move",       "pd-leader-kill",
                                                 "pd-partition",    "mixed"};
  return names;
}

Result<RunSummary> run_scenario(const ScenarioOptions& o) {
  if (std::find(scenario_names().begin(), scenario_names().end(), o.scenario) == scenario_names().end()) {
    return Status::invalid_argument(
        fmt::format("unknown scenario '{}' (known: {})", o.scenario, fmt::join(scenario_names(), ", ")));
  }
  if (!o.out_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(o.out_dir, ec);
    if (ec) {
      return ServerStatus::io_error(fmt::format("cannot create '{}': {}", o.out_dir, ec.message()));
    }
  }
  ChaosCluster c;
  RDB_RETURN_IF_ERROR(c.start(o));

  WorkloadOptions w;
  w.duration = o.duration;
  w.seed = o.seed;
  w.clients = o.clients;
  w.keys = o.keys;
  w.write_heavy = o.write_heavy;
  Recorder rec;
  std::string nemesis_error;
  auto deadline = std::chrono::steady_clock::now() + o.duration;
  // The nemesis runs on this thread: daemons it restarts die with the thread that
  // started them (PR_SET_PDEATHSIG), so it must outlive the run.
  std::thread workload([&] { run_workload(c.client(), w, rec); });
  // A TSO caller alongside: every timestamp it gets is checked at the end.
  std::vector<rdb::testing::TsoOp> tso_ops;
  std::uint64_t tso_failed = 0;
  std::thread tso([&] {
    auto caller = c.connect(std::chrono::seconds(3));
    while (caller && std::chrono::steady_clock::now() < deadline) {
      rdb::testing::TsoOp op;
      op.invoked = std::chrono::steady_clock::now();
      auto ts = caller->get_tso(1);
      op.answered = std::chrono::steady_clock::now();
      if (ts.is_ok()) {
        op.ts = *ts;
        tso_ops.push_back(op);
      } else {
        ++tso_failed;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));  // a steady trickle, not a load test
    }
  });
  // The bank alongside: transfers in transactions, snapshots that must always balance.
  BankOptions bank_options;
  bank_options.accounts = o.bank_accounts;
  bank_options.clients = o.bank_clients;
  bank_options.duration = o.duration;
  bank_options.seed = o.seed;
  BankResult bank;
  std::thread banker([&] {
    auto teller = c.connect(std::chrono::seconds(3), o.txn_one_pc);
    if (teller && o.bank_accounts > 1) {
      bank = run_bank(*teller, bank_options);
    }
  });
  // List-append transactions alongside, for the dependency-graph checker.
  ListAppendOptions list_options;
  list_options.duration = o.duration;
  list_options.seed = o.seed;
  list_options.keys = o.list_keys;
  list_options.clients = o.list_clients;
  std::vector<ListTxn> list_txns;
  std::thread appender([&] {
    auto lister = c.connect(std::chrono::seconds(3), o.txn_one_pc);
    if (lister && o.list_append) {
      list_txns = run_list_append(*lister, list_options);
    }
  });
  // etcd watchers through rdb-etcd gateways alongside (the gateways live on that thread).
  EtcdWatchResult etcd_watch;
  std::thread etcd_watcher;
  if (o.etcd_watch) {
    EtcdWatchOptions ew;
    ew.pd = c.pd_endpoints();
    ew.scratch_dir = c.cluster().dir().path();
    ew.duration = o.duration;
    ew.seed = o.seed;
    etcd_watcher = std::thread([&etcd_watch, ew] { etcd_watch = run_etcd_watch(ew); });
  }
  run_nemesis(o, c, rec, deadline, nemesis_error);
  if (etcd_watcher.joinable()) {
    etcd_watcher.join();  // its watchers catch up once the faults healed
  }
  workload.join();
  tso.join();
  banker.join();
  appender.join();
  if (!nemesis_error.empty()) {
    return Status::internal(fmt::format("the nemesis failed: {}", nemesis_error));
  }

  // Healed: give the cluster time to settle, then read back with a patient client.
  (void)c.wait_healthy(std::chrono::seconds(60));
  if (o.scenario == "merge") {
    // A merge waits for its regions to settle; on a loaded machine (sanitizers) none may
    // have completed inside the fault window. Wait for one (with a deadline) before the
    // final reads, so they still read data that went through a merge.
    (void)c.wait_for_store_log("merged into region", std::chrono::seconds(60));
  }
  auto patient = c.connect(std::chrono::seconds(30));
  if (patient == nullptr) {
    return Status::unavailable("cannot create the final reader");
  }
  final_reads(*patient, w, rec);
  if (o.bank_accounts > 1) {
    bank_final_read(*patient, bank_options, bank);
    if (!bank.final_read) {
      diagnose_stuck_read(c, o, bank.final_read_diagnosis);
    }
    check_bank(bank_options, bank);
  }
  if (o.list_append) {
    list_append_final_read(*patient, list_options, list_txns);
  }

  RunSummary run;
  run.scenario = o.scenario;
  run.seed = o.seed;
  run.history.operations = rec.operations();
  run.history.faults = rec.faults();
  run.linearizability = check_history(run.history.operations);
  run.durability = check_durability(run.history.operations);
  run.confused_messages_sent = c.confused().sent();
  run.tso_obtained = tso_ops.size();
  run.tso_failed = tso_failed;
  run.tso_violation = rdb::testing::tso_order_violation(tso_ops).value_or("");
  run.bank_enabled = o.bank_accounts > 1;
  run.bank = std::move(bank);
  run.list_append_enabled = o.list_append;
  run.etcd_watch_enabled = o.etcd_watch;
  if (o.etcd_watch) {
    check_etcd_watch(etcd_watch);
    run.etcd_watch = std::move(etcd_watch);
  }
  run.list_append = check_list_append(list_txns);
  for (const auto& t : list_txns) {
    ++run.list_append_outcomes[static_cast<int>(t.outcome)];
  }
  for (const auto& name : kStores) {
    std::string logs = c.cluster().store(name).logs();
    run.store_drop_log_lines += count_lines_with(logs, "dropped a Raft message");
    run.merge_log_lines += count_lines_with(logs, "merged into region");
    for (const char* needle : {"outlived the read's deadline", "no linearizable read point"}) {
      for (auto at = logs.find(needle); at != std::string::npos && run.stuck_read_lines.size() < 8;
           at = logs.find(needle, at + 1)) {
        auto from = logs.rfind('\n', at);
        from = from == std::string::npos ? 0 : from + 1;
        run.stuck_read_lines.push_back(name + ": " + logs.substr(from, logs.find('\n', at) - from));
      }
    }
  }
  run.joint_change_log_lines = count_lines_with(c.cluster().pd().logs(), "for a joint change");
  if (c.pd_group()) {
    for (const auto& name : c.cluster().pd_member_names()) {
      const auto& member = c.cluster().pd_member(name);
      run.pd_elections += count_lines_with(member.earlier_logs + member.logs(), "leads the PD group");
    }
  }
  if (!o.out_dir.empty()) {
    RDB_RETURN_IF_ERROR(rec.write(o.out_dir + "/history.jsonl"));
    RDB_RETURN_IF_ERROR(write_text(o.out_dir + "/report.txt", text_report(run)));
    RDB_RETURN_IF_ERROR(write_text(o.out_dir + "/report.html", html_report(run)));
  }
  return run;
}

}  // namespace rdb::chaos
