#include "common/metrics.h"

#include <fmt/format.h>

#include <cmath>

namespace rdb {

double Histogram::bucket_bound(int i) const {
  return first_bound_ * std::ldexp(1.0, i);
}

void Histogram::observe(std::chrono::nanoseconds elapsed) {
  observe_value(std::chrono::duration<double>(elapsed).count());
}

void Histogram::observe_value(double v) {
  int i = 0;
  while (i < kBuckets - 1 && v > bucket_bound(i)) {
    ++i;
  }
  buckets_[static_cast<std::size_t>(i)].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  double old = sum_.load(std::memory_order_relaxed);
  while (!sum_.compare_exchange_weak(old, old + v, std::memory_order_relaxed)) {
  }
}

Counter& MetricsRegistry::counter(const std::string& name, const std::string& help, const std::string& labels) {
  std::lock_guard lock(mu_);
  Family& f = families_[name];
  f.help = help;
  f.type = "counter";
  auto& slot = f.counters[labels];
  if (!slot) {
    slot = std::make_unique<Counter>();
  }
  return *slot;
}

Histogram& MetricsRegistry::histogram(const std::string& name, const std::string& help, const std::string& labels,
                                      double first_bound) {
  std::lock_guard lock(mu_);
  Family& f = families_[name];
  f.help = help;
  f.type = "histogram";
  auto& slot = f.histograms[labels];
  if (!slot) {
    slot = std::make_unique<Histogram>(first_bound);
  }
  return *slot;
}

void MetricsRegistry::gauge(const std::string& name, const std::string& help, std::function<double()> read) {
  std::lock_guard lock(mu_);
  Family& f = families_[name];
  f.help = help;
  f.type = "gauge";
  f.gauge = std::move(read);
}

std::string MetricsRegistry::render_prometheus() const {
  std::lock_guard lock(mu_);
  std::string out;
  auto braces = [](const std::string& labels, const std::string& extra = "") {
    std::string inner = labels;
    if (!extra.empty()) {
      inner = inner.empty() ? extra : inner + "," + extra;
    }
    return inner.empty() ? std::string() : "{" + inner + "}";
  };
  for (const auto& [name, f] : families_) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, f.help, name, f.type);
    if (f.gauge) {
      out += fmt::format("{} {}\n", name, f.gauge());
    }
    for (const auto& [labels, c] : f.counters) {
      out += fmt::format("{}{} {}\n", name, braces(labels), c->value());
    }
    for (const auto& [labels, h] : f.histograms) {
      std::uint64_t cumulative = 0;
      for (int i = 0; i < Histogram::kBuckets; ++i) {
        cumulative += h->buckets_[static_cast<std::size_t>(i)].load(std::memory_order_relaxed);
        std::string le = (i == Histogram::kBuckets - 1) ? "+Inf" : fmt::format("{:g}", h->bucket_bound(i));
        out += fmt::format("{}_bucket{} {}\n", name, braces(labels, fmt::format("le=\"{}\"", le)), cumulative);
      }
      out += fmt::format("{}_sum{} {:g}\n", name, braces(labels), h->sum_.load(std::memory_order_relaxed));
      out += fmt::format("{}_count{} {}\n", name, braces(labels), h->count());
    }
  }
  return out;
}

}  // namespace rdb
