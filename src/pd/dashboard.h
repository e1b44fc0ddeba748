// PD's web dashboard (GET /dashboard on the status port): one static page built into the
// binary (dashboard.html: HTML, CSS and JS inline, nothing fetched from elsewhere), and the
// data it polls every second (GET /dashboard/data, JSON):
//   pd          this member: name, whether it leads, timestamps handed out (the TSO rate is
//               their rise over time)
//   stores      id, addresses, state (up/down/offline/tombstone), capacity and available
//               bytes, region and leader counts — as `rdb-cli cluster --json` shows them
//   regions     id, key range (printable), leader's store, peers and roles, approximate size
//   store_metrics  per live store, read from its /metrics: KV requests so far and the KV
//               latency histogram (cumulative buckets), from which the page draws QPS and p99
//   operations  the scheduling steps PD asked of regions lately (OperationLog)
// Only the PD leader knows the cluster: another member's data says so and names no stores.
// Bounded: at most kMaxRegions regions (then "regions_truncated"); the store metrics of at
// most kMaxStoreMetrics stores, fetched in parallel with a short timeout and 4 MiB each.
// Thread safety: DashboardData may be used from any thread (the status server's).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "pd/pd_service.h"

namespace rdb {

// The page, as served.
std::string_view dashboard_html();

// The dashboard's view of one store's /metrics (Prometheus text): {"requests_total": KV
// requests, "latency_buckets": [[le seconds (-1: +Inf), cumulative count], ...]} summed over
// the KV methods, as JSON. Lines that do not parse are skipped.
std::string store_kv_metrics_json(const std::string& text);

class DashboardData {
 public:
  static constexpr std::size_t kMaxRegions = 20'000;
  static constexpr std::size_t kMaxStoreMetrics = 64;

  DashboardData(PdService& service, PdGroup& group, std::uint64_t cluster_id, std::chrono::milliseconds store_timeout)
      : service_(service), group_(group), cluster_id_(cluster_id), store_timeout_(store_timeout) {}

  std::string json() const;

 private:
  PdService& service_;
  PdGroup& group_;
  std::uint64_t cluster_id_;
  std::chrono::milliseconds store_timeout_;
};

}  // namespace rdb
