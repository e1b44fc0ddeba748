// A tour of the rdb client API. Start a playground (`make playground`), then:
//   build/bin/rdb-client-example 127.0.0.1:2379
#include <fmt/format.h>

#include "rdb/client.h"

int main(int argc, char** argv) {
  rdb::ClientOptions options;
  options.pd_endpoints = {argc > 1 ? argv[1] : "127.0.0.1:2379"};
  options.timeout = std::chrono::seconds(5);
  auto client_or = rdb::RdbClient::connect(options);
  if (!client_or.is_ok()) {
    fmt::print(stderr, "connect: {}\n", client_or.status().to_string());
    return 1;
  }
  rdb::RdbClient& client = **client_or;

  // Raw key space: last writer wins.
  if (auto s = client.raw_put("example/greeting", "hello"); !s.is_ok()) {
    fmt::print(stderr, "raw_put: {}\n", s.to_string());
    return 1;
  }
  auto value = client.raw_get("example/greeting");
  if (!value.is_ok()) {
    fmt::print(stderr, "raw_get: {}\n", value.status().to_string());
    return 1;
  }
  fmt::print("example/greeting = {}\n", value->value_or("<missing>"));

  // Versioned key space: optimistic concurrency with compare-and-swap.
  auto current = client.get("example/counter");
  if (!current.is_ok()) {
    fmt::print(stderr, "get: {}\n", current.status().to_string());
    return 1;
  }
  int n = current->found ? std::stoi(current->value) : 0;
  auto cas = client.cas("example/counter", current->version, std::to_string(n + 1));
  if (!cas.is_ok()) {
    // UNDETERMINED means the write may or may not have happened: re-read before deciding.
    fmt::print(stderr, "cas: {}\n", cas.status().to_string());
    return 1;
  }
  if (cas->succeeded) {
    fmt::print("counter {} -> {} (version {})\n", n, n + 1, cas->version);
  } else {
    fmt::print("lost a race: counter is now at version {}\n", cas->version);
  }

  // Timestamps from PD.
  auto ts = client.get_tso(10);
  if (!ts.is_ok()) {
    fmt::print(stderr, "get_tso: {}\n", ts.status().to_string());
    return 1;
  }
  fmt::print("10 timestamps starting at {} (physical {} ms, logical {})\n", *ts, rdb::tso_physical_ms(*ts),
             rdb::tso_logical(*ts));
  return 0;
}
