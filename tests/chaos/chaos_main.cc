// rdb-chaos: runs chaos scenarios against a real local cluster for any duration
// and keeps each run's history and reports (see scenario.h, docs/chaos.md).
//   rdb-chaos --scenario partition-leader,kill-leader --duration 600 --out chaos-out
// Exit codes: 0 every run passed, 1 a run found a violation, 2 bad usage or a
// cluster that could not run.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>

#include "common/main_guard.h"
#include "common/parse.h"
#include "scenario.h"

static int run(int argc, char** argv) {
  std::string scenarios = "mixed";
  double duration_s = 60;
  int quiet_ms = 2000;
  int fault_ms = 3000;
  std::uint64_t seed = 1;
  int clients = 8;
  int keys = 4;
  std::string out = "chaos-out";
  std::vector<std::string> store_args;
  bool write_heavy = false;
  bool etcd_watch = false;

  CLI::App app{"rdb-chaos: chaos scenarios against a local rdb cluster, checked for linearizability and durability"};
  app.add_option("--scenario", scenarios,
                 fmt::format("comma-separated scenarios, or 'all' ({})", fmt::join(rdb::chaos::scenario_names(), ", ")))
      ->capture_default_str();
  app.add_option("--duration", duration_s, "workload seconds per scenario")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--quiet-ms", quiet_ms, "quiet time before each fault")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--fault-ms", fault_ms, "length of each fault window")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--seed", seed, "seed of the workload and the nemesis (printed; replays the schedule)")
      ->capture_default_str();
  app.add_option("--clients", clients, "concurrent workload clients")->capture_default_str()->check(CLI::Range(1, 256));
  app.add_option("--keys", keys, "shared keys")->capture_default_str()->check(CLI::Range(1, 1000));
  app.add_flag("--write-heavy", write_heavy, "mostly raw puts and log writes (no CAS, few reads)");
  app.add_flag("--etcd-watch", etcd_watch,
               "etcd writers and watchers through rdb-etcd gateways (killed and replaced every 5 s) alongside");
  app.add_option("--out", out, "directory for each run's history.jsonl, report.txt, report.html")
      ->capture_default_str();
  app.add_option("--store-arg", store_args, "extra rdb-server flag (repeatable), e.g. --store-arg=--lease-reads")
      ->allow_extra_args(false);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  std::vector<std::string> runs = scenarios == "all" ? rdb::chaos::scenario_names() : rdb::split_list(scenarios);
  if (runs.empty()) {
    fmt::print(stderr, "error: --scenario names no scenario\n");
    return 2;
  }
  for (const auto& name : runs) {
    const auto& known = rdb::chaos::scenario_names();
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      fmt::print(stderr, "error: unknown scenario '{}' (known: {}, all)\n", name, fmt::join(known, ", "));
      return 2;
    }
  }
  bool all_passed = true;
  for (const auto& name : runs) {
    rdb::chaos::ScenarioOptions o;
    o.scenario = name;
    o.duration = std::chrono::milliseconds(static_cast<std::int64_t>(duration_s * 1000));
    o.quiet = std::chrono::milliseconds(quiet_ms);
    o.fault = std::chrono::milliseconds(fault_ms);
    o.seed = seed;
    o.clients = clients;
    o.keys = keys;
    o.store_args = store_args;
    o.write_heavy = write_heavy;
    o.etcd_watch = etcd_watch;
    o.out_dir = out;
    o.out_dir += "/" + name;
    fmt::print("== {} (seed {}, {:.0f} s) ...\n", name, seed, duration_s);
    std::fflush(stdout);
    auto run = rdb::chaos::run_scenario(o);
    if (!run.is_ok()) {
      fmt::print(stderr, "error: {}: {}\n", name, run.status().to_string());
      return 2;
    }
    fmt::print("{}report: {}/report.html\n\n", rdb::chaos::text_report(*run), o.out_dir);
    all_passed = all_passed && run->passed();
  }
  return all_passed ? 0 : 1;
}

int main(int argc, char** argv) {
  return rdb::run_guarded("rdb-chaos", run, argc, argv, 2);
}
