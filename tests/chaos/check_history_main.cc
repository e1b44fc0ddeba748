// rdb-check-history: checks a recorded history (JSON lines) for linearizability.
//   rdb-check-history history.jsonl      exit 0 linearizable, 1 not, 2 bad input
#include <fmt/format.h>

#include "linearizability.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    fmt::print(stderr, "usage: rdb-check-history HISTORY.jsonl\n");
    return 2;
  }
  auto history = rdb::chaos::read_history(argv[1]);
  if (!history.is_ok()) {
    fmt::print(stderr, "error: {}\n", history.status().to_string());
    return 2;
  }
  auto v = rdb::chaos::check_history(*history);
  fmt::print("{} operations on {} keys checked in {:.3f} s: {}\n", v.operations, v.keys, v.seconds,
             v.linearizable ? "LINEARIZABLE" : "NOT LINEARIZABLE");
  if (!v.linearizable) {
    fmt::print("{} key(s) fail; the smallest:\n{}", v.failures.size(), v.failures.front().explanation);
  }
  return v.linearizable ? 0 : 1;
}
