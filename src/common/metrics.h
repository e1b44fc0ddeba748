// Minimal Prometheus-style metrics: counters, gauges and latency histograms.
//
// A MetricsRegistry owns its metrics; references returned by counter()/gauge()/
// histogram() stay valid for the registry's lifetime, so hot paths look a metric
// up once and then update it lock-free. Updating a metric is thread-safe and
// wait-free; registering and rendering take a mutex.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace rdb {

class Counter {
 public:
  void inc(std::uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  std::uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

// Histogram with fixed log2 buckets: by default latencies from 16 µs to ~67 s;
// with first_bound 1, sizes from 1 to ~4 million (e.g. entries per batch).
class Histogram {
 public:
  static constexpr int kBuckets = 23;
  static constexpr double kLatencyFirstBound = 16e-6;
  explicit Histogram(double first_bound = kLatencyFirstBound) : first_bound_(first_bound) {}
  void observe(std::chrono::nanoseconds elapsed);
  void observe_value(double value_in_units);  // for non-time histograms (e.g. batch size)
  std::uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  // Upper bound of bucket i in seconds (or units, for value histograms).
  double bucket_bound(int i) const;

 private:
  friend class MetricsRegistry;
  double first_bound_;
  std::array<std::atomic<std::uint64_t>, kBuckets> buckets_{};
  std::atomic<std::uint64_t> count_{0};
  std::atomic<double> sum_{0.0};
};

class MetricsRegistry {
 public:
  // `labels` is the Prometheus label set without braces, e.g. `method="RawPut"`.
  Counter& counter(const std::string& name, const std::string& help, const std::string& labels = "");
  Histogram& histogram(const std::string& name, const std::string& help, const std::string& labels = "",
                       double first_bound = Histogram::kLatencyFirstBound);
  // A gauge is read on demand when rendering.
  void gauge(const std::string& name, const std::string& help, std::function<double()> read);

  std::string render_prometheus() const;

 private:
  struct Family {
    std::string help;
    std::string type;
    std::map<std::string, std::unique_ptr<Counter>> counters;
    std::map<std::string, std::unique_ptr<Histogram>> histograms;
    std::function<double()> gauge;
  };
  mutable std::mutex mu_;
  std::map<std::string, Family> families_;
};

// Observes the elapsed time of a scope into a histogram.
class ScopedTimer {
 public:
  explicit ScopedTimer(Histogram& h) : h_(h), start_(std::chrono::steady_clock::now()) {}
  ~ScopedTimer() { h_.observe(std::chrono::steady_clock::now() - start_); }
  ScopedTimer(const ScopedTimer&) = delete;
  ScopedTimer& operator=(const ScopedTimer&) = delete;

 private:
  Histogram& h_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace rdb
