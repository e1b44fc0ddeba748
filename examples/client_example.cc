// A tour of the rdb client API. Start a playground (`make playground`), then:
//   build/bin/rdb-client-example 127.0.0.1:2379
// Built against an installed rdb too (examples/CMakeLists.txt): it uses only <rdb/client.h>
// and the standard library.
#include <rdb/client.h>

#include <iostream>
#include <string>

namespace {

int fail(const std::string& what, const rdb::Status& s) {
  std::cerr << what << ": " << s.to_string() << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  rdb::ClientOptions options;
  options.pd_endpoints = {argc > 1 ? argv[1] : "127.0.0.1:2379"};
  options.timeout = std::chrono::seconds(5);
  auto client_or = rdb::RdbClient::connect(options);
  if (!client_or.is_ok()) {
    return fail("connect", client_or.status());
  }
  rdb::RdbClient& client = **client_or;

  // Raw key space: last writer wins.
  if (auto s = client.raw_put("example/greeting", "hello"); !s.is_ok()) {
    return fail("raw_put", s);
  }
  auto value = client.raw_get("example/greeting");
  if (!value.is_ok()) {
    return fail("raw_get", value.status());
  }
  std::cout << "example/greeting = " << value->value_or("<missing>") << "\n";

  // Versioned key space: optimistic concurrency with compare-and-swap.
  auto current = client.get("example/counter");
  if (!current.is_ok()) {
    return fail("get", current.status());
  }
  int n = current->found ? std::stoi(current->value) : 0;
  auto cas = client.cas("example/counter", current->version, std::to_string(n + 1));
  if (!cas.is_ok()) {
    // UNDETERMINED means the write may or may not have happened: re-read before deciding.
    return fail("cas", cas.status());
  }
  if (cas->succeeded) {
    std::cout << "counter " << n << " -> " << n + 1 << " (version " << cas->version << ")\n";
  } else {
    std::cout << "lost a race: counter is now at version " << cas->version << "\n";
  }

  // Transactional key space: snapshot isolation across keys and regions.
  auto txn = client.begin();
  if (!txn.is_ok()) {
    return fail("begin", txn.status());
  }
  auto balance = (*txn)->get("example/balance");
  if (!balance.is_ok()) {
    return fail("txn get", balance.status());
  }
  int cents = balance->has_value() ? std::stoi(**balance) : 0;
  if (auto s = (*txn)->put("example/balance", std::to_string(cents + 100)); !s.is_ok()) {
    return fail("txn put", s);
  }
  if (auto s = (*txn)->put("example/ledger/" + std::to_string((*txn)->start_ts()), "+100"); !s.is_ok()) {
    return fail("txn put", s);
  }
  if (auto s = (*txn)->commit(); !s.is_ok()) {
    // ABORTED: another transaction wrote the balance first; nothing applied, try again.
    return fail("commit", s);
  }
  std::cout << "balance " << cents << " -> " << cents + 100 << " (committed at " << (*txn)->commit_ts() << ")\n";

  // Timestamps from PD.
  auto ts = client.get_tso(10);
  if (!ts.is_ok()) {
    return fail("get_tso", ts.status());
  }
  std::cout << "10 timestamps starting at " << *ts << " (physical " << rdb::tso_physical_ms(*ts) << " ms, logical "
            << rdb::tso_logical(*ts) << ")\n";
  return 0;
}
