#include "bank.h"

#include <fmt/format.h>

#include <mutex>
#include <random>
#include <thread>

namespace rdb::chaos {
namespace {

std::string account_key(int i) {
  return fmt::format("{}{:03}", kBankPrefix, i);
}

// One snapshot of every account; nullopt when the read failed.
std::optional<BankRead> snapshot(RdbClient& client, const BankOptions& o, std::string* error = nullptr) {
  auto txn = client.begin();
  if (!txn.is_ok()) {
    if (error != nullptr) {
      *error = "begin: " + txn.status().to_string();
    }
    return std::nullopt;
  }
  std::string end = std::string(kBankPrefix);
  end.back() = static_cast<char>(end.back() + 1);
  auto pairs = (*txn)->scan(kBankPrefix, end, static_cast<std::uint32_t>(o.accounts + 1));
  if (!pairs.is_ok()) {
    if (error != nullptr) {
      *error = "scan: " + pairs.status().to_string();
    }
    return std::nullopt;
  }
  BankRead read;
  read.start_ts = (*txn)->start_ts();
  read.balances.assign(static_cast<std::size_t>(o.accounts), 0);
  std::vector<bool> seen(static_cast<std::size_t>(o.accounts), false);
  for (const auto& kv : *pairs) {
    int i = std::stoi(kv.key.substr(std::string(kBankPrefix).size()));
    if (i < 0 || i >= o.accounts) {
      continue;
    }
    read.balances[static_cast<std::size_t>(i)] = std::stoll(kv.value);
    seen[static_cast<std::size_t>(i)] = true;
  }
  for (std::size_t i = 0; i < seen.size(); ++i) {
    if (!seen[i]) {
      read.balances[i] = std::numeric_limits<std::int64_t>::min();  // missing: the checker says so
    }
  }
  (void)(*txn)->rollback();
  return read;
}

}  // namespace

BankResult run_bank(RdbClient& client, const BankOptions& o) {
  BankResult result;
  const auto deadline = std::chrono::steady_clock::now() + o.duration;
  while (!result.set_up && std::chrono::steady_clock::now() < deadline) {
    auto txn = client.begin();
    if (!txn.is_ok()) {
      continue;
    }
    for (int i = 0; i < o.accounts; ++i) {
      (void)(*txn)->put(account_key(i), std::to_string(o.initial));
    }
    Status s = (*txn)->commit();
    if (s.is_ok()) {
      result.set_up = true;
    } else if (s.code() == StatusCode::kUndetermined) {
      // Committed or not: a snapshot tells.
      auto seen = snapshot(client, o);
      result.set_up = seen && seen->balances.front() != std::numeric_limits<std::int64_t>::min();
    }
  }
  if (!result.set_up) {
    return result;
  }
  std::mutex mu;
  std::vector<std::thread> threads;
  for (int c = 0; c < o.clients; ++c) {
    threads.emplace_back([&, c] {
      std::mt19937_64 rng(o.seed * 7919 + static_cast<std::uint64_t>(c));
      while (std::chrono::steady_clock::now() < deadline) {
        if (rng() % 3 == 0) {
          auto read = snapshot(client, o);
          std::lock_guard lock(mu);
          if (read) {
            result.reads.push_back(std::move(*read));
          } else {
            ++result.reads_failed;
          }
          continue;
        }
        int from = static_cast<int>(rng() % static_cast<std::uint64_t>(o.accounts));
        int to = static_cast<int>(rng() % static_cast<std::uint64_t>(o.accounts - 1));
        to += to >= from ? 1 : 0;
        auto txn = client.begin();
        if (!txn.is_ok()) {
          std::lock_guard lock(mu);
          ++result.failed;
          continue;
        }
        auto a = (*txn)->get(account_key(from));
        auto b = (*txn)->get(account_key(to));
        if (!a.is_ok() || !b.is_ok() || !a->has_value() || !b->has_value()) {
          std::lock_guard lock(mu);
          ++result.failed;
          continue;
        }
        std::int64_t have = std::stoll(**a);
        std::int64_t amount = static_cast<std::int64_t>(rng() % 20) + 1;
        if (have < amount) {
          (void)(*txn)->rollback();
          continue;
        }
        (void)(*txn)->put(account_key(from), std::to_string(have - amount));
        (void)(*txn)->put(account_key(to), std::to_string(std::stoll(**b) + amount));
        Status s = (*txn)->commit();
        std::lock_guard lock(mu);
        if (s.is_ok()) {
          ++result.committed;
        } else if (s.code() == StatusCode::kAborted) {
          ++result.aborted;
        } else if (s.code() == StatusCode::kUndetermined) {
          ++result.undetermined;
        } else {
          ++result.failed;
        }
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  return result;
}

void bank_final_read(RdbClient& client, const BankOptions& o, BankResult& result) {
  if (!result.set_up) {
    return;
  }
  for (int attempt = 0; attempt < 5 && !result.final_read; ++attempt) {
    if (auto read = snapshot(client, o, &result.final_read_error)) {
      result.reads.push_back(std::move(*read));
      result.final_read = true;
    }
  }
}

void check_bank(const BankOptions& o, BankResult& result) {
  const std::int64_t total = o.initial * o.accounts;
  for (const auto& r : result.reads) {
    std::int64_t sum = 0;
    for (std::size_t i = 0; i < r.balances.size(); ++i) {
      if (r.balances[i] == std::numeric_limits<std::int64_t>::min()) {
        result.violation = fmt::format("the snapshot at {} lacks account {}", r.start_ts, i);
        return;
      }
      if (r.balances[i] < 0) {
        result.violation = fmt::format("the snapshot at {} shows account {} at {}", r.start_ts, i, r.balances[i]);
        return;
      }
      sum += r.balances[i];
    }
    if (sum != total) {
      result.violation = fmt::format("the snapshot at {} sums to {}, not {} (balances {})", r.start_ts, sum, total,
                                     fmt::join(r.balances, ", "));
      return;
    }
  }
}

}  // namespace rdb::chaos
