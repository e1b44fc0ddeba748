// rdb-check-history: re-checks a recorded history (JSON lines, see history.h) for
// linearizability and durability, and prints the text report.
//   rdb-check-history history.jsonl [--html report.html]
// Exit codes: 0 linearizable and durable, 1 not, 2 bad usage or input.
#include <fmt/format.h>

#include <fstream>
#include <string>

#include "common/main_guard.h"
#include "durability.h"
#include "linearizability.h"
#include "report.h"

namespace {

int run(int argc, char** argv) {
  std::string path;
  std::string html;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--html" && i + 1 < argc) {
      html = argv[++i];
    } else if (path.empty() && !arg.empty() && arg[0] != '-') {
      path = arg;
    } else {
      path.clear();
      break;
    }
  }
  if (path.empty()) {
    fmt::print(stderr, "usage: rdb-check-history HISTORY.jsonl [--html REPORT.html]\n");
    return 2;
  }
  auto history = rdb::chaos::read_history_file(path);
  if (!history.is_ok()) {
    fmt::print(stderr, "error: {}\n", history.status().to_string());
    return 2;
  }
  rdb::chaos::RunSummary run;
  run.scenario = path;
  run.history = std::move(history).value();
  run.linearizability = rdb::chaos::check_history(run.history.operations);
  run.durability = rdb::chaos::check_durability(run.history.operations);
  fmt::print("{}", rdb::chaos::text_report(run));
  if (!html.empty()) {
    std::ofstream out(html, std::ios::trunc);
    out << rdb::chaos::html_report(run);
    if (!out) {
      fmt::print(stderr, "error: cannot write '{}'\n", html);
      return 2;
    }
  }
  return run.passed() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  return rdb::run_guarded("rdb-check-history", run, argc, argv, 2);
}
