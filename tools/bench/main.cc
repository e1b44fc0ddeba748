// rdb-bench: a load generator for rdb — and, with --driver etcd, for etcd, so
// both are measured by the same harness (driver.h).
//
// --concurrency worker threads each keep one request in flight for --duration
// seconds (or until --ops operations) after a --warmup, optionally paced to a
// total --target-rate (latency then counts from each operation's scheduled start,
// so a stalled server is not hidden by coordinated omission). Latencies go into
// log-bucketed histograms. A progress line every second (stderr), a summary
// (stdout), or one JSON object with --json.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <thread>

#include "common/main_guard.h"
#include "common/parse.h"
#include "common/tls_flags.h"
#include "driver.h"
#include "floor.h"
#include "key_chooser.h"
#include "latency_histogram.h"
#include "rdb/client.h"

namespace {

using rdb::bench::BenchDriver;
using rdb::bench::KeyChooser;
using rdb::bench::LatencyHistogram;
using Clock = std::chrono::steady_clock;

constexpr int kExitBadUsage = 2;
constexpr int kExitFailed = 4;

struct Config {
  std::string driver = "rdb";
  std::string pd = "127.0.0.1:2379";
  std::string addr;
  rdb::TlsFiles tls;
  std::string endpoints;
  bool serializable = false;
  bool unary = false;
  int attempt_timeout_ms = 1000;
  std::string workload = "raw-put";
  int transfer_keys = 2;
  bool no_one_pc = false;
  int concurrency = 1;
  int key_size = 16;
  int value_size = 100;
  bool random_values = false;
  std::uint64_t keys = 10000;
  std::string distribution = "uniform";
  double zipf_theta = 0.99;
  double read_ratio = 0.5;
  double target_rate = 0;
  std::uint64_t total_ops = 0;
  double duration_s = 10;
  double warmup_s = 1;
  std::uint32_t tso_count = 1;
  std::uint32_t gap_report_ms = 0;  // report every stretch this long without a successful operation
  bool tso_async = false;
  bool async = false;
  bool json = false;
  std::uint32_t regions = 0;  // rdb: split the key range into this many regions first
  std::string floor_dir;      // --floor: measure the machine's floor instead of a system
  std::size_t floor_block = 4096;
  std::size_t floor_message = 128;
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

// What one operation of the workload does; the read share for mixed workloads.
struct Mix {
  bool reads_need_data = false;
  double read_ratio = 0;  // mixed: share of reads (the rest are puts)
};

Mix mix_of(const Config& cfg) {
  if (cfg.workload == "ycsb-a") {
    return {true, 0.5};
  }
  if (cfg.workload == "ycsb-b") {
    return {true, 0.95};
  }
  if (cfg.workload == "ycsb-c") {
    return {true, 1.0};
  }
  if (cfg.workload == "mixed") {
    return {true, cfg.read_ratio};
  }
  return {cfg.workload == "raw-get" || cfg.workload == "get", 0};
}

rdb::Status preload(BenchDriver& driver, const Config& cfg, const std::string& value) {
  std::atomic<std::uint64_t> next{0};
  std::mutex mu;
  rdb::Status failure;
  std::vector<std::thread> loaders;
  for (int t = 0; t < std::min(cfg.concurrency, 32); ++t) {
    loaders.emplace_back([&] {
      for (std::uint64_t i = next++; i < cfg.keys; i = next++) {
        std::string key = make_key(i, cfg.key_size);
        rdb::Status s = cfg.workload == "get" ? driver.load_versioned(key, value) : driver.put(key, value);
        if (!s.is_ok()) {
          std::lock_guard lock(mu);
          failure = s;
          return;
        }
      }
    });
  }
  for (auto& l : loaders) {
    l.join();
  }
  return failure;
}

// --floor: what the disk and the loopback network allow at best (floor.h).
int run_floor(const Config& cfg) {
  const auto duration =
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::duration<double>(cfg.duration_s));
  auto sync = rdb::bench::measure_fdatasync(cfg.floor_dir, duration, cfg.floor_block);
  if (!sync.is_ok()) {
    std::cerr << "rdb-bench: " << sync.status().to_string() << "\n";
    return kExitFailed;
  }
  auto rtt = rdb::bench::measure_loopback_rtt(duration, cfg.floor_message);
  if (!rtt.is_ok()) {
    std::cerr << "rdb-bench: " << rtt.status().to_string() << "\n";
    return kExitFailed;
  }
  auto summary = [&](const LatencyHistogram& h) {
    auto us = [&](double q) { return static_cast<double>(h.percentile(q)) / 1e3; };
    return nlohmann::json{
        {"count", h.count()},
        {"per_s", static_cast<double>(h.count()) / cfg.duration_s},
        {"latency_us",
         {{"mean", h.mean() / 1e3}, {"p50", us(0.5)}, {"p99", us(0.99)}, {"max", static_cast<double>(h.max()) / 1e3}}}};
  };
  nlohmann::json fs = summary(*sync);
  fs["dir"] = cfg.floor_dir;
  fs["block_bytes"] = cfg.floor_block;
  // With a large --floor-block: the disk's synced sequential write rate.
  fs["bytes_per_s"] = fs["per_s"].get<double>() * static_cast<double>(cfg.floor_block);
  nlohmann::json net = summary(*rtt);
  net["message_bytes"] = cfg.floor_message;
  // A put acknowledged by a majority waits at least for the client's round trip and one
  // durable append (the followers' round trip and fsync overlap the leader's at best).
  const double floor_us =
      static_cast<double>(sync->percentile(0.5)) / 1e3 + static_cast<double>(rtt->percentile(0.5)) / 1e3;
  if (cfg.json) {
    std::cout << nlohmann::json{{"fdatasync", fs}, {"loopback_rtt", net}, {"put_floor_p50_us", floor_us}}.dump()
              << "\n";
    return 0;
  }
  auto line = [](const char* what, const nlohmann::json& j) {
    const auto& l = j["latency_us"];
    return fmt::format("{:<13} {:>9.0f}/s  mean {:.1f} us  p50 {:.1f} us  p99 {:.1f} us  max {:.1f} us\n", what,
                       j["per_s"].get<double>(), l["mean"].get<double>(), l["p50"].get<double>(),
                       l["p99"].get<double>(), l["max"].get<double>());
  };
  std::cout << line("fdatasync", fs)
            << fmt::format("              {:.1f} MiB/s synced ({} B per append)\n",
                           fs["bytes_per_s"].get<double>() / (1 << 20), cfg.floor_block)
            << line("loopback rtt", net)
            << fmt::format("put floor     p50 {:.1f} us (one fdatasync + one round trip)\n", floor_us);
  return 0;
}

int run(int argc, char** argv) {
  Config cfg;
  CLI::App app{"rdb-bench: measure rdb (or etcd) throughput and latency"};
  app.add_option("--driver", cfg.driver, "system under test: rdb (native client) or etcd (v3 gRPC KV API)")
      ->check(CLI::IsMember({"rdb", "etcd"}))
      ->capture_default_str();
  app.add_option("--pd", cfg.pd, "rdb: PD endpoints HOST:PORT[,HOST:PORT...]")->capture_default_str();
  app.add_option("--addr", cfg.addr, "rdb: talk to this store directly instead of routing via PD");
  rdb::add_tls_flags(app, cfg.tls, /*server=*/false);
  app.add_option("--endpoints", cfg.endpoints, "etcd: comma-separated member endpoints HOST:PORT");
  app.add_flag("--serializable", cfg.serializable, "etcd: serializable reads (no ReadIndex; may be stale)");
  app.add_flag("--unary", cfg.unary,
               "rdb: one unary gRPC call per request instead of the client's batched BatchCommands stream");
  app.add_option("--workload", cfg.workload,
                 "raw-put, raw-get, get (versioned), cas, cas-contended, mixed (--read-ratio), ycsb-a (50% reads), "
                 "ycsb-b (95%), ycsb-c (100%), tso, transfer (a transaction reading and writing "
                 "--transfer-keys keys: rdb Transaction, etcd Txn guarded by mod_revision)")
      ->check(CLI::IsMember({"raw-put", "raw-get", "get", "cas", "cas-contended", "mixed", "ycsb-a", "ycsb-b", "ycsb-c",
                             "tso", "transfer"}))
      ->capture_default_str();
  app.add_option("--transfer-keys", cfg.transfer_keys, "transfer: keys each transaction reads and writes")
      ->check(CLI::Range(1, 2))
      ->capture_default_str();
  app.add_flag("--no-one-pc", cfg.no_one_pc, "rdb: commit every transaction in two phases (no 1PC)");
  app.add_option("--concurrency", cfg.concurrency, "requests in flight (one per worker thread)")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  app.add_option("--key-size", cfg.key_size, "key size in bytes")->check(CLI::Range(17, 8192))->capture_default_str();
  app.add_flag("--random-values", cfg.random_values,
               "values of random bytes (incompressible on disk) instead of a repeated letter");
  app.add_option("--value-size", cfg.value_size, "value size in bytes")
      ->check(CLI::Range(0, 8 << 20))
      ->capture_default_str();
  app.add_option("--keys", cfg.keys, "number of distinct keys (cas-contended: default 8)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--distribution", cfg.distribution, "key distribution: uniform or zipfian")
      ->check(CLI::IsMember({"uniform", "zipfian"}))
      ->capture_default_str();
  app.add_option("--zipf-theta", cfg.zipf_theta, "zipfian skew")
      ->check(CLI::Range(0.01, 0.9999))
      ->capture_default_str();
  app.add_option("--read-ratio", cfg.read_ratio, "mixed: share of reads, 0..1")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  app.add_option("--target-rate", cfg.target_rate, "total operations per second to offer (0: as fast as possible)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--ops", cfg.total_ops, "stop after this many measured operations (instead of --duration)");
  app.add_option("--duration", cfg.duration_s, "measured seconds")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--warmup", cfg.warmup_s, "seconds of unmeasured load first")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--tso-count", cfg.tso_count, "timestamps per get_tso call")->capture_default_str();
  app.add_option("--gap-report-ms", cfg.gap_report_ms,
                 "report every stretch of at least this many ms in which no operation succeeded (0: off), e.g. "
                 "the TSO outage while a PD leader is killed; JSON field gaps_ms")
      ->capture_default_str();
  app.add_flag("--tso-async", cfg.tso_async,
               "tso: keep --concurrency requests in flight through the client's callback API (no thread per "
               "request)");
  app.add_flag("--async", cfg.async,
               "keep --concurrency requests in flight from one thread instead of one thread per request: rdb "
               "through the client's asynchronous API, etcd through gRPC's callback API (raw-put, raw-get, get, "
               "mixed, ycsb-a/b/c; tso for rdb)");
  app.add_option("--attempt-timeout-ms", cfg.attempt_timeout_ms,
                 "rdb: a store silent this long is taken as hung (ClientOptions::attempt_timeout)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_flag("--json", cfg.json, "print one JSON object with the results");
  app.add_option("--regions", cfg.regions,
                 "rdb: first split the benchmark's keys into this many regions of equal key counts (1..65536)")
      ->check(CLI::Range(1, 65536));
  app.add_option("--floor", cfg.floor_dir,
                 "measure this machine's floor instead of a system: fdatasync of an appended block on the file "
                 "system holding DIR, then a loopback TCP round trip, each for --duration seconds")
      ->check(CLI::ExistingDirectory);
  app.add_option("--floor-block", cfg.floor_block, "--floor: bytes appended before each fdatasync")
      ->check(CLI::Range(1, 64 << 20))
      ->capture_default_str();
  app.add_option("--floor-message", cfg.floor_message, "--floor: bytes sent each way per round trip")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : kExitBadUsage;
  }
  if (!cfg.floor_dir.empty()) {
    return run_floor(cfg);
  }
  if (cfg.workload == "transfer" && cfg.transfer_keys > 1 && cfg.keys < 2) {
    std::cerr << "rdb-bench: --workload transfer with --transfer-keys 2 needs --keys of at least 2\n";
    return kExitBadUsage;
  }
  if (cfg.async) {
    const std::set<std::string> async_workloads = {"raw-put", "raw-get", "get",    "mixed",
                                                   "ycsb-a",  "ycsb-b",  "ycsb-c", "tso"};
    if (async_workloads.count(cfg.workload) == 0 || (cfg.driver != "rdb" && cfg.workload == "tso")) {
      std::cerr << "rdb-bench: --async needs a workload of raw-put, raw-get, get, mixed, ycsb-a/b/c or (rdb only) "
                   "tso\n";
      return kExitBadUsage;
    }
    if (cfg.target_rate > 0) {
      std::cerr << "rdb-bench: --async keeps --concurrency requests in flight; it does not pace (--target-rate)\n";
      return kExitBadUsage;
    }
    cfg.tso_async = cfg.tso_async || cfg.workload == "tso";
  }
  if (cfg.workload == "cas-contended" && app.count("--keys") == 0) {
    cfg.keys = 8;
  }

  std::unique_ptr<rdb::RdbClient> rdb_client;
  std::unique_ptr<BenchDriver> driver;
  if (cfg.driver == "rdb") {
    if (cfg.serializable) {
      std::cerr << "rdb-bench: --serializable applies to --driver etcd only (rdb reads are always linearizable)\n";
      return kExitBadUsage;
    }
    rdb::ClientOptions options;
    if (!cfg.pd.empty()) {
      options.pd_endpoints = {cfg.pd};  // a comma-separated list is split by the client
    }
    options.store_addr = cfg.addr;
    options.tls_ca = cfg.tls.ca;
    options.tls_cert = cfg.tls.cert;
    options.tls_key = cfg.tls.key;
    options.timeout = std::chrono::seconds(10);
    options.batch_requests = !cfg.unary;
    options.txn_one_pc = !cfg.no_one_pc;
    options.attempt_timeout = std::chrono::milliseconds(cfg.attempt_timeout_ms);
    auto client_or = rdb::RdbClient::connect(options);
    if (!client_or.is_ok()) {
      std::cerr << "rdb-bench: " << client_or.status().to_string() << "\n";
      return kExitBadUsage;
    }
    rdb_client = std::move(client_or).value();
    driver = rdb::bench::make_rdb_driver(*rdb_client);
    if (cfg.regions > 1) {
      std::vector<std::string> cuts;
      for (std::uint32_t r = 1; r < cfg.regions; ++r) {
        cuts.push_back(make_key(cfg.keys * r / cfg.regions, cfg.key_size));
      }
      // In slices of 64 keys: one batch split each.
      for (std::size_t i = 0; i < cuts.size(); i += 64) {
        std::vector<std::string> slice(cuts.begin() + static_cast<std::ptrdiff_t>(i),
                                       cuts.begin() + static_cast<std::ptrdiff_t>(std::min(cuts.size(), i + 64)));
        auto split = rdb_client->split(slice);
        for (int retry = 0; retry < 5 && !split.is_ok() && split.status().code() == rdb::StatusCode::kUnavailable;
             ++retry) {
          split = rdb_client->split(slice);  // a busy store: splitting again is a no-op where it happened
        }
        if (!split.is_ok()) {
          std::cerr << "rdb-bench: splitting into " << cfg.regions << " regions: " << split.status().to_string()
                    << "\n";
          return kExitBadUsage;
        }
      }
      std::cerr << "rdb-bench: the keys are split into " << cfg.regions << " regions\n";
    }
  } else {
    if (cfg.unary) {
      std::cerr << "rdb-bench: --unary applies to --driver rdb only\n";
      return kExitBadUsage;
    }
    if (cfg.workload == "tso") {
      std::cerr << "rdb-bench: --workload tso needs --driver rdb (etcd has no timestamp oracle)\n";
      return kExitBadUsage;
    }
    auto d = rdb::bench::make_etcd_driver(rdb::split_list(cfg.endpoints), cfg.serializable);
    if (!d.is_ok()) {
      std::cerr << "rdb-bench: " << d.status().to_string() << "\n";
      return kExitBadUsage;
    }
    driver = std::move(d).value();
  }
  std::string value(static_cast<std::size_t>(cfg.value_size), 'v');
  if (cfg.random_values) {
    std::mt19937_64 bytes(42);
    for (char& c : value) {
      c = static_cast<char>(bytes() & 0xff);
    }
  }
  const Mix mix = mix_of(cfg);
  const KeyChooser chooser =
      cfg.distribution == "zipfian" ? KeyChooser::zipfian(cfg.keys, cfg.zipf_theta) : KeyChooser::uniform(cfg.keys);

  if (mix.reads_need_data) {  // reads need data: load every key once before measuring
    if (rdb::Status s = preload(*driver, cfg, value); !s.is_ok()) {
      std::cerr << "rdb-bench: loading failed: " << s.to_string() << "\n";
      return kExitFailed;
    }
  }

  std::vector<std::unique_ptr<Worker>> workers;
  workers.reserve(static_cast<std::size_t>(cfg.concurrency));
  for (int t = 0; t < cfg.concurrency; ++t) {
    workers.push_back(std::make_unique<Worker>());
  }
  std::atomic<bool> measuring{false};
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> measured{0};
  const std::uint64_t per_worker = std::max<std::uint64_t>(1, cfg.keys / static_cast<std::uint64_t>(cfg.concurrency));
  auto one_op = [&](std::mt19937_64& rng, int t) -> rdb::Status {
    std::uint64_t k = chooser.next(rng);
    if (cfg.workload == "cas") {  // uncontended: each worker owns a slice of the keys
      k = (k % per_worker) * static_cast<std::uint64_t>(cfg.concurrency) + static_cast<std::uint64_t>(t);
    }
    std::string key = make_key(k, cfg.key_size);
    if (cfg.workload == "raw-put") {
      return driver->put(key, value);
    }
    if (cfg.workload == "raw-get") {
      return driver->get(key);
    }
    if (cfg.workload == "get") {
      return driver->read_version(key).status();
    }
    if (cfg.workload == "cas" || cfg.workload == "cas-contended") {
      auto version = driver->read_version(key);
      if (!version.is_ok()) {
        return version.status();
      }
      auto written = driver->cas(key, *version, value);
      if (!written.is_ok()) {
        return written.status();
      }
      return *written ? rdb::Status::ok() : rdb::ServerStatus::already_exists("cas conflict");
    }
    if (cfg.workload == "tso") {
      return driver->tso(cfg.tso_count);
    }
    if (cfg.workload == "transfer") {
      std::vector<std::string> keys = {key};
      while (keys.size() < static_cast<std::size_t>(cfg.transfer_keys)) {
        std::string other = make_key(chooser.next(rng), cfg.key_size);
        if (other != key) {
          keys.push_back(std::move(other));
        }
      }
      auto written = driver->transfer(keys);
      if (!written.is_ok()) {
        return written.status();
      }
      return *written ? rdb::Status::ok() : rdb::ServerStatus::already_exists("transfer conflict");
    }
    bool read = std::uniform_real_distribution<double>(0.0, 1.0)(rng) < mix.read_ratio;
    return read ? driver->get(key) : driver->put(key, value);
  };

  // Pacing: each worker offers target_rate / concurrency operations per second.
  const auto interval = cfg.target_rate > 0 ? std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(
                                                  static_cast<double>(cfg.concurrency) / cfg.target_rate))
                                            : Clock::duration::zero();
  // --gap-report-ms: the stretches without any success (outages), across all workers.
  std::mutex gaps_mu;
  std::vector<double> gaps_ms;
  std::atomic<std::int64_t> last_ok_ns{0};
  const auto gap_origin = Clock::now();
  auto note_success = [&](Clock::time_point now) {
    if (cfg.gap_report_ms == 0) {
      return;
    }
    std::int64_t t = std::chrono::duration_cast<std::chrono::nanoseconds>(now - gap_origin).count();
    std::int64_t prev = last_ok_ns.exchange(t);
    if (prev != 0 && t - prev >= static_cast<std::int64_t>(cfg.gap_report_ms) * 1'000'000) {
      double ms = static_cast<double>(t - prev) / 1e6;
      std::lock_guard lock(gaps_mu);
      gaps_ms.push_back(ms);
      std::cerr << fmt::format("gap: {:.0f} ms without a successful operation\n", ms);
    }
  };
  // --tso-async: each in-flight request re-issues itself from its callback.
  std::atomic<int> async_outstanding{0};
  // An asynchronous operation of slot `t` that started at `start` ended with `s`: counted
  // while measuring. Returns the time it ended.
  auto record_async = [&](int t, Clock::time_point start, const rdb::Status& s) {
    auto now = Clock::now();
    if (measuring.load(std::memory_order_relaxed)) {
      Worker& w = *workers[static_cast<std::size_t>(t)];
      std::lock_guard lock(w.mu);
      if (s.is_ok()) {
        w.hist.record(static_cast<std::uint64_t>(std::chrono::nanoseconds(now - start).count()));
        ++w.ops;
        note_success(now);
        if (cfg.total_ops > 0 && ++measured >= cfg.total_ops) {
          stop = true;
        }
      } else {
        ++w.errors[std::string(rdb::status_code_name(s.code()))];
      }
    }
    return now;
  };
  std::function<void(Clock::time_point)> issue_tso = [&](Clock::time_point start) {
    ++async_outstanding;
    driver->tso_async(cfg.tso_count, [&, start](const rdb::Status& s) {
      auto now = record_async(0, start, s);
      if (!stop.load(std::memory_order_relaxed)) {
        issue_tso(now);
      }
      --async_outstanding;
    });
  };
  // --async: each in-flight slot t re-issues its next operation from its callback (slot t's
  // random generator and worker are used by one operation at a time).
  std::vector<std::mt19937_64> slot_rngs;
  slot_rngs.reserve(static_cast<std::size_t>(cfg.concurrency));
  for (int t = 0; t < cfg.concurrency; ++t) {
    slot_rngs.emplace_back(static_cast<std::uint64_t>(t) * 7919 + 1);
  }
  std::function<void(int, Clock::time_point)> issue_op = [&](int t, Clock::time_point start) {
    ++async_outstanding;
    auto on_done = [&, t, start](const rdb::Status& s) {
      auto now = record_async(t, start, s);
      if (!stop.load(std::memory_order_relaxed)) {
        issue_op(t, now);
      }
      --async_outstanding;
    };
    auto& rng = slot_rngs[static_cast<std::size_t>(t)];
    std::string key = make_key(chooser.next(rng), cfg.key_size);
    if (cfg.workload == "get") {
      driver->read_version_async(key, std::move(on_done));
      return;
    }
    bool read = cfg.workload == "raw-get" ||
                (mix.read_ratio > 0 && std::uniform_real_distribution<double>(0.0, 1.0)(rng) < mix.read_ratio);
    if (read) {
      driver->get_async(key, std::move(on_done));
    } else {
      driver->put_async(key, value, std::move(on_done));
    }
  };
  const bool tso_async_mode = cfg.workload == "tso" && cfg.tso_async;
  const bool async_mode = tso_async_mode || cfg.async;
  std::vector<std::thread> threads;
  threads.reserve(static_cast<std::size_t>(cfg.concurrency));
  for (int t = 0; t < cfg.concurrency && tso_async_mode; ++t) {
    issue_tso(Clock::now());
  }
  for (int t = 0; t < cfg.concurrency && async_mode && !tso_async_mode; ++t) {
    issue_op(t, Clock::now());  // all from this one thread
  }
  for (int t = 0; t < cfg.concurrency && !async_mode; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(static_cast<std::uint64_t>(t) * 7919 + 1);
      Worker& w = *workers[static_cast<std::size_t>(t)];
      auto scheduled = Clock::now() + interval * t / cfg.concurrency;  // spread the workers' phases
      while (!stop.load(std::memory_order_relaxed)) {
        if (interval > Clock::duration::zero()) {
          std::this_thread::sleep_until(scheduled);  // the offered rate, not a wait for a condition
        }
        auto start = interval > Clock::duration::zero() ? scheduled : Clock::now();
        scheduled += interval;
        rdb::Status s = one_op(rng, t);
        auto nanos = static_cast<std::uint64_t>(std::chrono::nanoseconds(Clock::now() - start).count());
        if (!measuring.load(std::memory_order_relaxed)) {
          continue;
        }
        std::lock_guard lock(w.mu);
        if (s.is_ok()) {
          w.hist.record(nanos);
          ++w.ops;
          note_success(Clock::now());
          if (cfg.total_ops > 0 && ++measured >= cfg.total_ops) {
            stop = true;
          }
        } else {
          ++w.errors[s.code() == rdb::ServerCode::kAlreadyExists ? "cas_conflict"
                                                                 : std::string(rdb::status_code_name(s.code()))];
        }
      }
    });
  }

  std::this_thread::sleep_for(std::chrono::duration<double>(cfg.warmup_s));  // load runs unmeasured
  measuring = true;
  auto begin = Clock::now();
  auto end = cfg.total_ops > 0
                 ? Clock::time_point::max()
                 : begin + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(cfg.duration_s));
  std::uint64_t last_ops = 0;
  for (int sec = 1; Clock::now() < end && !stop; ++sec) {
    auto tick = begin + std::chrono::seconds(sec);
    while (Clock::now() < std::min(tick, end) && !stop) {  // progress tick; --ops may end it early
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
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
  while (async_outstanding.load() > 0) {  // the last callbacks still reference this frame
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
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
    nlohmann::json j = {{"driver", cfg.driver},
                        {"workload", cfg.workload},
                        {"concurrency", cfg.concurrency},
                        {"key_size", cfg.key_size},
                        {"value_size", cfg.value_size},
                        {"keys", cfg.keys},
                        {"distribution", cfg.distribution},
                        {"target_rate", cfg.target_rate},
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
    if (mix.read_ratio > 0) {
      j["read_ratio"] = mix.read_ratio;
    }
    j["async"] = async_mode;
    if (cfg.driver == "etcd") {
      j["serializable"] = cfg.serializable;
    } else {
      j["batched"] = !cfg.unary;
    }
    if (cfg.workload == "tso") {
      j["timestamps_per_s"] = ops_per_s * cfg.tso_count;
    }
    if (cfg.gap_report_ms > 0) {
      j["gaps_ms"] = gaps_ms;
    }
    std::cout << j.dump() << "\n";
  } else {
    std::cout << fmt::format("driver {}  workload {}  concurrency {}  {:.1f} s\n", cfg.driver, cfg.workload,
                             cfg.concurrency, elapsed);
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
  return rdb::run_guarded("rdb-bench", run, argc, argv, kExitFailed);
}
