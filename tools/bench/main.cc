// rdb-bench: a load generator for rdb.
//
// N worker threads (--concurrency) each keep one request in flight against the
// cluster for --duration seconds after a --warmup, recording latency into
// log-bucketed histograms. Prints a progress line every second (stderr) and a
// summary (stdout), or one JSON object with --json.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "common/main_guard.h"
#include "latency_histogram.h"
#include "rdb/client.h"

namespace {

using rdb::bench::LatencyHistogram;
using Clock = std::chrono::steady_clock;

struct Config {
  std::string pd = "127.0.0.1:2379";
  std::string addr;
  std::string workload = "raw-put";
  int concurrency = 1;
  int key_size = 16;
  int value_size = 100;
  std::uint64_t keys = 10000;
  double duration_s = 10;
  double warmup_s = 1;
  std::uint32_t tso_count = 1;
  bool json = false;
};

std::string make_key(std::uint64_t i, int size) {
  std::string k = fmt::format("bench{:012}", i);
  if (static_cast<int>(k.size()) < size) {
    k.append(static_cast<std::size_t>(size) - k.size(), 'k');
  }
  return k;
}

struct Worker {
  LatencyHistogram hist;
  std::map<std::string, std::uint64_t> errors;
  std::uint64_t ops = 0;
  std::mutex mu;  // guards the above against the progress reporter
};

}  // namespace

namespace {

int run(int argc, char** argv) {
  Config cfg;
  CLI::App app{"rdb-bench: measure rdb throughput and latency"};
  app.add_option("--pd", cfg.pd, "PD endpoint HOST:PORT")->capture_default_str();
  app.add_option("--addr", cfg.addr, "talk to this store directly instead of routing via PD");
  app.add_option("--workload", cfg.workload, "raw-put, raw-get, get, cas, tso")
      ->check(CLI::IsMember({"raw-put", "raw-get", "get", "cas", "tso"}))
      ->capture_default_str();
  app.add_option("--concurrency", cfg.concurrency, "requests in flight (one per worker thread)")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  app.add_option("--key-size", cfg.key_size, "key size in bytes")->check(CLI::Range(17, 8192))->capture_default_str();
  app.add_option("--value-size", cfg.value_size, "value size in bytes")
      ->check(CLI::Range(0, 8 << 20))
      ->capture_default_str();
  app.add_option("--keys", cfg.keys, "number of distinct keys (uniform)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--duration", cfg.duration_s, "measured seconds")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--warmup", cfg.warmup_s, "seconds of unmeasured load first")->capture_default_str();
  app.add_option("--tso-count", cfg.tso_count, "timestamps per get_tso call")->capture_default_str();
  app.add_flag("--json", cfg.json, "print one JSON object with the results");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }

  rdb::ClientOptions options;
  if (!cfg.pd.empty()) {
    options.pd_endpoints = {cfg.pd};
  }
  options.store_addr = cfg.addr;
  options.timeout = std::chrono::seconds(10);
  auto client_or = rdb::RdbClient::connect(options);
  if (!client_or.is_ok()) {
    std::cerr << "rdb-bench: " << client_or.status().to_string() << "\n";
    return 2;
  }
  rdb::RdbClient& client = **client_or;
  const std::string value(static_cast<std::size_t>(cfg.value_size), 'v');

  // Reads need data: load every key once (in parallel) before measuring.
  if (cfg.workload == "raw-get" || cfg.workload == "get") {
    std::atomic<std::uint64_t> next{0};
    std::atomic<bool> failed{false};
    std::vector<std::thread> loaders;
    for (int t = 0; t < std::min(cfg.concurrency, 32); ++t) {
      loaders.emplace_back([&] {
        for (std::uint64_t i = next++; i < cfg.keys && !failed; i = next++) {
          std::string key = make_key(i, cfg.key_size);
          rdb::Status s = cfg.workload == "raw-get" ? client.raw_put(key, value) : client.cas(key, 0, value).status();
          if (!s.is_ok()) {
            std::cerr << "rdb-bench: loading failed: " << s.to_string() << "\n";
            failed = true;
          }
        }
      });
    }
    for (auto& l : loaders) {
      l.join();
    }
    if (failed) {
      return 4;
    }
  }

  std::vector<std::unique_ptr<Worker>> workers;
  workers.reserve(static_cast<std::size_t>(cfg.concurrency));
  for (int t = 0; t < cfg.concurrency; ++t) {
    workers.push_back(std::make_unique<Worker>());
  }
  std::atomic<bool> measuring{false};
  std::atomic<bool> stop{false};
  auto one_op = [&](std::mt19937_64& rng) -> rdb::Status {
    std::string key = make_key(rng() % cfg.keys, cfg.key_size);
    if (cfg.workload == "raw-put") {
      return client.raw_put(key, value);
    }
    if (cfg.workload == "raw-get") {
      return client.raw_get(key).status();
    }
    if (cfg.workload == "get") {
      return client.get(key).status();
    }
    if (cfg.workload == "cas") {
      auto cur = client.get(key);
      if (!cur.is_ok()) {
        return cur.status();
      }
      auto r = client.cas(key, cur->version, value);
      if (!r.is_ok()) {
        return r.status();
      }
      return r->succeeded ? rdb::Status::ok() : rdb::Status(rdb::StatusCode::kAlreadyExists, "cas conflict");
    }
    return client.get_tso(cfg.tso_count).status();
  };

  std::vector<std::thread> threads;
  threads.reserve(static_cast<std::size_t>(cfg.concurrency));
  for (int t = 0; t < cfg.concurrency; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(static_cast<std::uint64_t>(t) * 7919 + 1);
      Worker& w = *workers[static_cast<std::size_t>(t)];
      while (!stop.load(std::memory_order_relaxed)) {
        auto start = Clock::now();
        rdb::Status s = one_op(rng);
        auto nanos = static_cast<std::uint64_t>(std::chrono::nanoseconds(Clock::now() - start).count());
        if (!measuring.load(std::memory_order_relaxed)) {
          continue;
        }
        std::lock_guard lock(w.mu);
        if (s.is_ok()) {
          w.hist.record(nanos);
          ++w.ops;
        } else {
          ++w.errors[s.code() == rdb::StatusCode::kAlreadyExists ? "cas_conflict"
                                                                 : std::string(rdb::status_code_name(s.code()))];
        }
      }
    });
  }

  std::this_thread::sleep_for(std::chrono::duration<double>(cfg.warmup_s));  // load runs unmeasured
  measuring = true;
  auto begin = Clock::now();
  auto end = begin + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(cfg.duration_s));
  std::uint64_t last_ops = 0;
  for (int sec = 1; Clock::now() < end; ++sec) {
    std::this_thread::sleep_until(std::min(begin + std::chrono::seconds(sec), end));  // progress tick
    std::uint64_t ops = 0;
    LatencyHistogram snapshot;
    for (auto& w : workers) {
      std::lock_guard lock(w->mu);
      ops += w->ops;
      snapshot.merge(w->hist);
    }
    std::cerr << fmt::format("[{:>3}s] {:>9} ops/s  p50 {:.0f} us  p99 {:.0f} us\n", sec, ops - last_ops,
                             static_cast<double>(snapshot.percentile(0.5)) / 1e3,
                             static_cast<double>(snapshot.percentile(0.99)) / 1e3);
    last_ops = ops;
  }
  measuring = false;
  double elapsed = std::chrono::duration<double>(Clock::now() - begin).count();
  stop = true;
  for (auto& t : threads) {
    t.join();
  }

  LatencyHistogram total;
  std::map<std::string, std::uint64_t> errors;
  std::uint64_t ops = 0;
  for (auto& w : workers) {
    total.merge(w->hist);
    ops += w->ops;
    for (const auto& [k, v] : w->errors) {
      errors[k] += v;
    }
  }
  auto us = [&](double q) { return static_cast<double>(total.percentile(q)) / 1e3; };
  double ops_per_s = static_cast<double>(ops) / elapsed;
  if (cfg.json) {
    nlohmann::json j = {{"workload", cfg.workload},
                        {"concurrency", cfg.concurrency},
                        {"key_size", cfg.key_size},
                        {"value_size", cfg.value_size},
                        {"keys", cfg.keys},
                        {"duration_s", elapsed},
                        {"ops", ops},
                        {"ops_per_s", ops_per_s},
                        {"latency_us",
                         {{"mean", total.mean() / 1e3},
                          {"p50", us(0.5)},
                          {"p95", us(0.95)},
                          {"p99", us(0.99)},
                          {"p999", us(0.999)},
                          {"max", static_cast<double>(total.max()) / 1e3}}},
                        {"errors", errors}};
    if (cfg.workload == "tso") {
      j["timestamps_per_s"] = ops_per_s * cfg.tso_count;
    }
    std::cout << j.dump() << "\n";
  } else {
    std::cout << fmt::format("workload {}  concurrency {}  {:.1f} s\n", cfg.workload, cfg.concurrency, elapsed);
    std::cout << fmt::format(
        "throughput  {:.0f} ops/s{}\n", ops_per_s,
        cfg.workload == "tso" ? fmt::format(" ({:.0f} timestamps/s)", ops_per_s * cfg.tso_count) : "");
    std::cout << fmt::format("latency us  mean {:.1f}  p50 {:.1f}  p95 {:.1f}  p99 {:.1f}  p99.9 {:.1f}  max {:.1f}\n",
                             total.mean() / 1e3, us(0.5), us(0.95), us(0.99), us(0.999),
                             static_cast<double>(total.max()) / 1e3);
    for (const auto& [k, v] : errors) {
      std::cout << fmt::format("errors      {}: {}\n", k, v);
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return rdb::run_guarded("rdb-bench", run, argc, argv, 4);
}
