#include "pd/dashboard.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace rdb {
namespace {

TEST(DashboardTest, StoreMetricsAreSummedOverMethods) {
  auto j = nlohmann::json::parse(
      store_kv_metrics_json("# HELP rdb_kv_requests_total KV requests received\n"
                            "rdb_kv_requests_total{method=\"RawGet\"} 10\n"
                            "rdb_kv_requests_total{method=\"RawPut\"} 5\n"
                            "rdb_kv_request_duration_seconds_bucket{method=\"RawGet\",le=\"0.001\"} 8\n"
                            "rdb_kv_request_duration_seconds_bucket{method=\"RawPut\",le=\"0.001\"} 1\n"
                            "rdb_kv_request_duration_seconds_bucket{method=\"RawGet\",le=\"+Inf\"} 10\n"
                            "rdb_kv_request_duration_seconds_bucket{method=\"RawPut\",le=\"+Inf\"} 5\n"
                            "rdb_raft_proposals_total 99\n"));
  EXPECT_EQ(j["requests_total"], 15);
  EXPECT_EQ(j["latency_buckets"], nlohmann::json::parse("[[0.001, 9.0], [-1.0, 15.0]]"));
}

// A store's /metrics is whatever the process at its registered address answers.
TEST(DashboardTest, GarbageMetricsAreSkippedNotFatal) {
  auto j =
      nlohmann::json::parse(store_kv_metrics_json("rdb_kv_requests_total{method=\"RawGet\"} banana\n"
                                                  "rdb_kv_requests_total{method=\"RawGet\"} nan\n"
                                                  "rdb_kv_requests_total{method=\"RawGet\"} -5\n"
                                                  "rdb_kv_requests_total{method=\"RawGet\"} 1e300\n"
                                                  "rdb_kv_request_duration_seconds_bucket{le=\"zz\"} 3\n"
                                                  "rdb_kv_request_duration_seconds_bucket{le=\"0.5 7\n"
                                                  "rdb_kv_requests_total\n"
                                                  " \n"
                                                  "\xff\xfe garbage 1\n"
                                                  "rdb_kv_requests_total{method=\"Get\"} 2\n"));
  EXPECT_EQ(j["requests_total"], 2);
  EXPECT_TRUE(j["latency_buckets"].empty());
  EXPECT_EQ(nlohmann::json::parse(store_kv_metrics_json(""))["requests_total"], 0);
}

TEST(DashboardTest, ThePageIsBuiltIn) {
  std::string_view page = dashboard_html();
  EXPECT_EQ(page.substr(0, 15), "<!DOCTYPE html>");
  EXPECT_NE(page.find("/dashboard/data"), std::string_view::npos);
  EXPECT_EQ(page.find("http://"), std::string_view::npos) << "the page fetches nothing from elsewhere";
  EXPECT_EQ(page.find("https://"), std::string_view::npos);
}

}  // namespace
}  // namespace rdb
