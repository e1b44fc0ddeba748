#include "pd/dashboard.h"

#include <cmath>
#include <future>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <utility>
#include <vector>

#include "common/http_get.h"
#include "common/logging.h"

namespace rdb {

// A store's /metrics is network input (any process can register a store address): lines
// that do not parse are skipped, nothing throws.
std::string store_kv_metrics_json(const std::string& text) {
  std::uint64_t requests = 0;
  std::map<double, double> buckets;  // le -> cumulative count
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    auto space = line.rfind(' ');
    if (space == std::string::npos || line.empty() || line[0] == '#') {
      continue;
    }
    double value = 0;
    try {
      value = std::stod(line.substr(space + 1));
    } catch (const std::exception&) {
      continue;  // not a sample line
    }
    if (!std::isfinite(value) || value < 0 || value > 1e18) {
      continue;  // no counter of a live store looks like this
    }
    if (line.rfind("rdb_kv_requests_total", 0) == 0) {
      requests += static_cast<std::uint64_t>(value);
    } else if (line.rfind("rdb_kv_request_duration_seconds_bucket", 0) == 0) {
      auto le_at = line.find("le=\"");
      if (le_at == std::string::npos) {
        continue;
      }
      auto le_end = line.find('"', le_at + 4);
      if (le_end == std::string::npos) {
        continue;
      }
      std::string le = line.substr(le_at + 4, le_end - le_at - 4);
      double bound = 0;
      try {
        bound = le == "+Inf" ? 1e300 : std::stod(le);
      } catch (const std::exception&) {
        continue;
      }
      buckets[bound] += value;
    }
  }
  nlohmann::json out = {{"requests_total", requests}};
  nlohmann::json list = nlohmann::json::array();
  for (const auto& [le, count] : buckets) {
    list.push_back({le >= 1e300 ? -1.0 : le, count});  // -1: +Inf
  }
  out["latency_buckets"] = std::move(list);
  return out.dump();
}

namespace {

// A region bound as the page shows it: "" for the key space's ends.
std::string shown_key(const std::string& key) {
  return key.empty() ? "" : printable_key(key);
}

std::string store_state(const pdpb::StoreStatus& st) {
  if (st.store().state() == metapb::TOMBSTONE) {
    return "tombstone";
  }
  if (st.store().state() == metapb::OFFLINE) {
    return "offline";
  }
  return st.up() ? "up" : "down";
}

std::string role_of(const metapb::Peer& p) {
  if (p.is_learner()) {
    return "learner";
  }
  switch (p.role()) {
    case metapb::INCOMING_VOTER:
      return "incoming_voter";
    case metapb::DEMOTING_VOTER:
      return "demoting_voter";
    case metapb::LEAVING_VOTER:
      return "leaving_voter";
    default:
      return "voter";
  }
}

}  // namespace

std::string DashboardData::json() const {
  const auto now_ms = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
  nlohmann::json j;
  j["unix_ms"] = now_ms;
  j["pd"] = {{"name", group_.name()},
             {"leader", group_.serving_term() != 0},
             {"tso_timestamps_total", service_.timestamps_handed_out()}};
  pdpb::GetClusterStatusRequest req;
  req.mutable_header()->set_cluster_id(cluster_id_);
  pdpb::GetClusterStatusResponse resp;
  (void)service_.GetClusterStatus(nullptr, &req, &resp);
  if (resp.header().has_error()) {
    j["error"] = resp.header().error().message();  // not the leader: it knows no cluster
    j["stores"] = nlohmann::json::array();
    j["regions"] = nlohmann::json::array();
    j["operations"] = nlohmann::json::array();
    return j.dump();
  }
  j["max_replicas"] = resp.max_replicas();
  nlohmann::json stores = nlohmann::json::array();
  nlohmann::json metrics = nlohmann::json::object();
  // The live stores' /metrics, fetched at once (one short-lived thread each, at most
  // kMaxStoreMetrics): the answer waits for the slowest, not for their sum.
  std::vector<std::pair<std::uint64_t, std::future<Result<std::string>>>> fetches;
  for (const auto& st : resp.stores()) {
    std::string state = store_state(st);
    stores.push_back({{"id", st.store().id()},
                      {"address", st.store().address()},
                      {"status_address", st.store().status_address()},
                      {"raft_address", st.store().raft_address()},
                      {"state", state},
                      {"region_count", st.region_count()},
                      {"leader_count", st.leader_count()},
                      {"capacity_bytes", st.capacity_bytes()},
                      {"available_bytes", st.available_bytes()},
                      {"region_size", st.region_size()},
                      {"last_heartbeat_age_ms", st.last_heartbeat_age_ms()}});
    if (state != "up" || fetches.size() >= kMaxStoreMetrics) {
      continue;
    }
    fetches.emplace_back(st.store().id(), std::async(std::launch::async, [address = st.store().status_address(), this] {
                           auto addr = parse_host_port(address);
                           return addr.is_ok() ? http_get(*addr, "/metrics", store_timeout_)
                                               : Result<std::string>(addr.status());
                         }));
  }
  for (auto& [id, fetch] : fetches) {
    auto text = fetch.get();
    metrics[std::to_string(id)] = text.is_ok() ? nlohmann::json::parse(store_kv_metrics_json(*text))
                                               : nlohmann::json{{"error", text.status().message()}};
  }
  j["stores"] = std::move(stores);
  j["store_metrics"] = std::move(metrics);
  nlohmann::json regions = nlohmann::json::array();
  for (const auto& r : resp.regions()) {
    if (regions.size() >= kMaxRegions) {
      j["regions_truncated"] = true;
      break;
    }
    nlohmann::json peers = nlohmann::json::array();
    for (const auto& p : r.region().peers()) {
      peers.push_back({{"id", p.id()}, {"store_id", p.store_id()}, {"role", role_of(p)}});
    }
    regions.push_back({{"id", r.region().id()},
                       {"start_key", shown_key(r.region().start_key())},
                       {"end_key", shown_key(r.region().end_key())},
                       {"leader_store", r.leader().store_id()},
                       {"peers", std::move(peers)},
                       {"approximate_size", r.approximate_size()},
                       {"approximate_keys", r.approximate_keys()}});
  }
  j["region_count"] = resp.regions_size();
  j["regions"] = std::move(regions);
  nlohmann::json ops = nlohmann::json::array();
  for (const auto& op : service_.operations().recent()) {
    ops.push_back({{"unix_ms", op.unix_ms}, {"region_id", op.region_id}, {"kind", op.kind}, {"detail", op.detail}});
  }
  j["operations"] = std::move(ops);
  j["operations_total"] = service_.operations().total();
  return j.dump();
}

}  // namespace rdb
