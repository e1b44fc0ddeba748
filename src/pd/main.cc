// rdb-pd: the Placement Driver daemon (TSO, ids, cluster metadata).
#include <fmt/format.h>
#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "common/address.h"
#include "common/config_file.h"
#include "common/grpc_setup.h"
#include "common/http_status_server.h"
#include "common/limits.h"
#include "common/logging.h"
#include "common/main_guard.h"
#include "common/parse.h"
#include "common/ready_file.h"
#include "common/signals.h"
#include "common/tls_flags.h"
#include "common/version.h"
#include "pd/dashboard.h"
#include "pd/pd_service.h"
#include "pd/pd_transport.h"
#include "pd/tso_tcp_server.h"
#include "raftdisk/engine_options.h"
#include "storage/rocks_engine.h"

namespace {

int run(int argc, char** argv) {
  std::string addr = "127.0.0.1:2379";
  std::string status_addr = "127.0.0.1:2380";
  std::string data_dir = "./rdb-pd-data";
  std::string log_level = "info";
  std::string ready_file;
  std::uint64_t tso_window_ms = 3000;
  rdb::ReplicaCheckerConfig replicas;
  std::uint64_t store_down_s = 1800;
  rdb::TlsFiles tls;
  std::string tso_addr;
  std::string advertise_tso_addr;
  std::string name = "pd";
  std::string initial_cluster;
  std::string initial_cluster_state = "new";
  std::uint64_t election_timeout_ms = 500;
  std::uint64_t lease_ms = 400;

  CLI::App app{"rdb-pd: the rdb Placement Driver (timestamps, ids, cluster metadata)"};
  app.set_version_flag("--version", std::string(rdb::kRdbVersion));
  auto* addr_opt =
      app.add_option("--addr", addr, "gRPC listen address HOST:PORT (port 0 picks a free port)")->capture_default_str();
  app.add_option("--status-addr", status_addr, "HTTP status address for /metrics and /status")->capture_default_str();
  app.add_option("--data-dir", data_dir, "directory for PD's metadata")->capture_default_str();
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")->capture_default_str();
  app.add_option("--ready-file", ready_file, "write bound addresses as JSON to this file once serving");
  app.add_option("--name", name, "this member's name in the PD group (unique)")->capture_default_str();
  app.add_option("--initial-cluster", initial_cluster,
                 "the PD group's members when it is created: NAME=HOST:PORT,... (this member among them); "
                 "without it, this PD is a group of one")
      ->capture_default_str();
  app.add_option("--initial-cluster-state", initial_cluster_state,
                 "new: create the group from --initial-cluster; existing: join a running group (after "
                 "rdb-cli pd-member add), finding it through --initial-cluster")
      ->check(CLI::IsMember({"new", "existing"}))
      ->capture_default_str();
  app.add_option("--election-timeout-ms", election_timeout_ms,
                 "a follower that hears no leader for this long (up to twice) starts an election")
      ->check(CLI::Range(100, 60000))
      ->capture_default_str();
  app.add_option("--leader-lease-ms", lease_ms,
                 "the leader serves TSO only within this long of a quorum's confirmation; a new leader waits "
                 "this long before serving")
      ->check(CLI::Range(50, 60000))
      ->capture_default_str();
  app.add_option("--tso-addr", tso_addr,
                 "also serve TSO on plain TCP at HOST:PORT (port 0 picks one): clients move there from the gRPC "
                 "stream, saving gRPC's per-request work; plaintext only (not with TLS)");
  app.add_option("--advertise-tso-addr", advertise_tso_addr,
                 "HOST:PORT clients reach the --tso-addr endpoint at (default: --tso-addr, with the --addr host "
                 "when --tso-addr binds every interface)");
  app.add_option("--tso-save-window-ms", tso_window_ms, "how far ahead the persisted TSO bound runs")
      ->capture_default_str();
  app.add_option("--max-replicas", replicas.max_replicas, "voters per region (1, 3, 5, ...)")
      ->check(CLI::Range(1, 9))
      ->capture_default_str();
  app.add_option("--max-store-down-time", store_down_s,
                 "seconds a store may be silent before its replicas are rebuilt elsewhere")
      ->capture_default_str();
  std::string gc_life_time = "10m";
  app.add_option("--gc-life-time", gc_life_time,
                 "transactional versions older than this (behind PD's TSO) are garbage-collected; reads below "
                 "the GC safe point are refused (e.g. 10m, 1h, 30s; 0 keeps every version)")
      ->capture_default_str();
  app.add_option("--store-up-window-ms", replicas.store_up_window_ms,
                 "a store counts as up if it sent a heartbeat within this window")
      ->capture_default_str();
  rdb::BalanceConfig balance;
  app.add_option("--leader-schedule-limit", balance.leader_schedule_limit,
                 "leader transfers PD asks for per second to balance leaders (0: never)")
      ->capture_default_str();
  app.add_option("--region-schedule-limit", balance.region_schedule_limit,
                 "regions moved at once to balance replicas over the stores (0: never)")
      ->capture_default_str();
  rdb::MergeConfig merge;
  std::uint64_t split_merge_interval_s = merge.split_merge_interval_ms / 1000;
  app.add_option("--max-merge-region-size", merge.max_merge_region_size,
                 "regions this small (keys + values, as their leaders measure them) merge with a small neighbour "
                 "(0: never merge); accepts KiB/MiB/GiB")
      ->transform(CLI::AsSizeValue(false))
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast)
      ->capture_default_str();
  app.add_option("--max-merge-region-keys", merge.max_merge_region_keys,
                 "regions with at most this many keys may merge (and the size limit)")
      ->capture_default_str();
  app.add_option("--split-merge-interval", split_merge_interval_s,
                 "seconds a region must keep its range (since a split or merge, or since PD started) before it merges")
      ->capture_default_str();
  rdb::add_tls_flags(app, tls, /*server=*/true);
  rdb::add_config_file_flags(app, "rdb-pd");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  auto life = rdb::parse_duration(gc_life_time, "--gc-life-time");
  if (!life.is_ok()) {
    fmt::print(stderr, "rdb-pd: {}\n", life.status().message());
    return 2;
  }

  rdb::block_shutdown_signals();
  rdb::tune_process_for_grpc();
  if (auto s = rdb::init_logging("rdb-pd", log_level); !s.is_ok()) {
    fmt::print(stderr, "rdb-pd: {}\n", s.message());
    return 2;
  }
  auto listen = rdb::parse_host_port(addr, true);
  auto status_listen = rdb::parse_host_port(status_addr, true);
  if (!listen.is_ok() || !status_listen.is_ok()) {
    spdlog::error("{}", (!listen.is_ok() ? listen.status() : status_listen.status()).message());
    return 2;
  }
  if (!tso_addr.empty()) {
    if (auto p = rdb::parse_host_port(tso_addr, true); !p.is_ok()) {
      spdlog::error("--tso-addr: {}", p.status().message());
      return 2;
    }
    if (tls.enabled()) {
      spdlog::error("--tso-addr is plaintext; with TLS (--ca, --cert, --key) TSO stays on gRPC");
      return 2;
    }
  }
  if (!advertise_tso_addr.empty()) {
    if (tso_addr.empty()) {
      spdlog::error("--advertise-tso-addr needs --tso-addr");
      return 2;
    }
    if (auto p = rdb::parse_host_port(advertise_tso_addr); !p.is_ok()) {
      spdlog::error("--advertise-tso-addr: {}", p.status().message());
      return 2;
    }
  }

  // The group: its members, and the cluster id they share.
  std::vector<rdb::pdpb::Member> members;
  std::optional<std::uint64_t> group_cluster_id;
  bool join = initial_cluster_state == "existing";
  if (initial_cluster.empty()) {
    if (join) {
      spdlog::error("--initial-cluster-state existing needs --initial-cluster (where the group's members are)");
      return 2;
    }
    rdb::pdpb::Member self;
    self.set_name(name);
    self.set_member_id(rdb::pd_member_id(name));
    members.push_back(self);  // its address is the one it binds
  } else {
    auto parsed = rdb::parse_initial_cluster(initial_cluster);
    if (!parsed.is_ok()) {
      spdlog::error("--initial-cluster: {}", parsed.status().message());
      return 2;
    }
    members = std::move(parsed).value();
    auto self = std::find_if(members.begin(), members.end(), [&](const auto& m) { return m.name() == name; });
    if (self == members.end()) {
      spdlog::error("--initial-cluster does not name this member ('{}'; set --name)", name);
      return 2;
    }
    auto self_addr = rdb::parse_host_port(self->address());
    if (addr_opt->count() == 0) {
      listen = self_addr;  // --addr not given: listen where the group expects this member
    } else if (listen->port != self_addr->port) {
      spdlog::error("--addr port {} differs from this member's address {} in --initial-cluster", listen->port,
                    self->address());
      return 2;
    }
    if (!join) {
      group_cluster_id = rdb::cluster_id_of(members);
    }
  }

  auto engine = rdb::RocksEngine::open(data_dir, rdb::raft_disk_engine_options());
  if (!engine.is_ok()) {
    spdlog::error("cannot start: {}", engine.status().message());
    return 1;
  }
  auto peer_creds = rdb::channel_credentials(tls);
  if (!peer_creds.is_ok()) {
    spdlog::error("cannot start: {}", peer_creds.status().message());
    return 2;
  }
  // --initial-cluster and --initial-cluster-state matter only to a new data directory
  // (as etcd's do): a member restarted after membership changes keeps its cluster id.
  auto persisted = (*engine)->meta_get("cluster_id");
  if (persisted.is_ok() && persisted->has_value()) {
    group_cluster_id.reset();
  } else if (join) {
    // A joining member takes the running group's cluster id (once; then it is persisted).
    {
      auto id = rdb::ask_cluster_id(members, name, *peer_creds, std::chrono::seconds(30));
      if (!id.is_ok()) {
        spdlog::error("cannot join the PD group: {}", id.status().message());
        return 1;
      }
      group_cluster_id = *id;
    }
  }
  rdb::SystemClock clock;
  auto meta = rdb::ClusterMeta::load(**engine, clock, group_cluster_id);
  if (!meta.is_ok()) {
    spdlog::error("cannot start: {}", meta.status().message());
    return 1;
  }
  rdb::GrpcPdTransport transport((*meta)->cluster_id(), *peer_creds);
  rdb::PdGroupOptions group_options;
  group_options.name = name;
  group_options.initial_members = members;
  group_options.join_existing = join;
  group_options.election_ticks =
      static_cast<int>(std::max<std::uint64_t>(3, election_timeout_ms / group_options.tick_ms));
  group_options.lease_ms = lease_ms;
  auto group = rdb::PdGroup::open(**engine, **meta, transport, group_options);
  if (!group.is_ok()) {
    spdlog::error("cannot start: {}", group.status().message());
    return 1;
  }
  rdb::MetricsRegistry metrics;
  replicas.store_down_after_ms = store_down_s * 1000;
  rdb::ClusterLiveness liveness(clock, replicas);
  merge.split_merge_interval_ms = split_merge_interval_s * 1000;
  rdb::PdService service(**group, clock, {tso_window_ms}, **meta, liveness, metrics, balance, merge);
  service.set_gc_life_time(*life);
  rdb::PdPeerService peer_service(**group, (*meta)->cluster_id());

  auto creds = rdb::server_credentials(tls);
  if (!creds.is_ok()) {
    spdlog::error("cannot start: {}", creds.status().message());
    return 2;
  }
  grpc::ServerBuilder builder;
  int bound_port = 0;
  builder.AddListeningPort(listen->to_string(), *creds, &bound_port);
  builder.SetMaxReceiveMessageSize(rdb::kMaxGrpcMessageBytes);
  builder.SetMaxSendMessageSize(rdb::kMaxGrpcMessageBytes);
  rdb::allow_keepalive_pings(builder);
  builder.RegisterService(&service);
  builder.RegisterService(&peer_service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || bound_port == 0) {
    spdlog::error("cannot listen on {} (address in use or not local?)", listen->to_string());
    return 1;
  }
  rdb::HostPort served{listen->host, static_cast<std::uint16_t>(bound_port)};
  service.set_self_address(served.to_string());
  std::unique_ptr<rdb::TsoTcpServer> tso_server;
  if (!tso_addr.empty()) {
    auto started =
        rdb::TsoTcpServer::start(tso_addr, [&service](const rdb::pdpb::TsoRequest& req, rdb::pdpb::TsoResponse* resp) {
          return service.serve_tso(req, resp);
        });
    if (!started.is_ok()) {
      spdlog::error("--tso-addr: {}", started.status().message());
      server->Shutdown();
      return 1;
    }
    tso_server = std::move(started).value();
    std::string advertised = advertise_tso_addr;
    if (advertised.empty()) {
      auto wildcard = [](const std::string& h) { return h.empty() || h == "0.0.0.0" || h == "::" || h == "[::]"; };
      std::string host = rdb::parse_host_port(tso_addr, true)->host;
      if (wildcard(host)) {
        host = served.host;
      }
      if (wildcard(host)) {
        spdlog::error(
            "--tso-addr and --addr bind every interface: say where clients reach TSO with "
            "--advertise-tso-addr");
        server->Shutdown();
        return 2;
      }
      advertised = rdb::HostPort{host, tso_server->port()}.to_string();
    }
    service.set_tso_addr(advertised);
    rdb::TsoTcpServer* t = tso_server.get();
    metrics.gauge("rdb_pd_tso_tcp_requests_total", "TSO requests served on the plain-TCP endpoint (--tso-addr)",
                  [t] { return static_cast<double>(t->requests_served()); });
    metrics.gauge("rdb_pd_tso_tcp_bad_frames_total",
                  "Connections to the TSO endpoint closed for a malformed frame (bad magic, length or payload)",
                  [t] { return static_cast<double>(t->bad_frames()); });
    metrics.gauge("rdb_pd_tso_tcp_refused_total", "Connections to the TSO endpoint closed at its connection limit",
                  [t] { return static_cast<double>(t->connections_refused()); });
  }
  rdb::PdGroup* group_ptr = group->get();

  std::uint64_t cluster_id = (*meta)->cluster_id();
  rdb::ClusterMeta* meta_ptr = meta->get();
  rdb::DashboardData dashboard(service, **group, cluster_id, std::chrono::milliseconds(300));
  auto status_server = rdb::HttpStatusServer::start(
      *status_listen, {{"/metrics", {"text/plain; version=0.0.4", [&metrics] { return metrics.render_prometheus(); }}},
                       {"/dashboard", {"text/html; charset=utf-8", [] { return std::string(rdb::dashboard_html()); }}},
                       {"/dashboard/data", {"application/json", [&dashboard] { return dashboard.json(); }}},
                       {"/status", {"application/json", [&, meta_ptr] {
                                      nlohmann::json j = {{"role", "pd"},
                                                          {"version", std::string(rdb::kRdbVersion)},
                                                          {"cluster_id", cluster_id},
                                                          {"bootstrapped", meta_ptr->is_bootstrapped()},
                                                          {"name", group_ptr->name()},
                                                          {"leader", group_ptr->is_leader()},
                                                          {"serving", group_ptr->serving_term() != 0},
                                                          {"members", group_ptr->members().size()},
                                                          {"stores", meta_ptr->all_stores().size()},
                                                          {"regions", meta_ptr->all_regions().size()},
                                                          {"addr", served.to_string()},
                                                          {"tso_addr", service.tso_addr()}};
                                      return j.dump() + "\n";
                                    }}}});
  if (!status_server.is_ok()) {
    spdlog::error("cannot start: {}", status_server.status().message());
    server->Shutdown();
    return 1;
  }
  rdb::HostPort status_served{status_listen->host, (*status_server)->port()};
  metrics.gauge("rdb_pd_tso_saved_bound_ms", "Committed TSO upper bound (ms)",
                [group_ptr] { return static_cast<double>(group_ptr->tso_bound_ms()); });
  metrics.gauge("rdb_pd_is_leader", "1 while this member serves as the PD group's leader",
                [group_ptr] { return group_ptr->serving_term() != 0 ? 1.0 : 0.0; });

  spdlog::info("rdb-pd {} member '{}' of cluster {} ({} members) on {} (status {}), data in {}", rdb::kRdbVersion, name,
               cluster_id, group_ptr->members().size(), served.to_string(), status_served.to_string(), data_dir);
  if (!ready_file.empty()) {
    nlohmann::json j = {{"addr", served.to_string()},
                        {"status_addr", status_served.to_string()},
                        {"tso_addr", service.tso_addr()},
                        {"cluster_id", cluster_id},
                        {"name", name},
                        {"pid", ::getpid()}};
    if (auto s = rdb::write_ready_file(ready_file, j.dump()); !s.is_ok()) {
      spdlog::error("{}", s.message());
    }
  }

  int sig = rdb::wait_for_shutdown_signal();
  spdlog::info("received signal {}, shutting down", sig);
  // In-flight calls get a short grace period; streams (TSO) are then cancelled.
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(3));
  server->Wait();
  status_server->reset();
  tso_server.reset();  // after the status server, whose /metrics reads its counters
  spdlog::info("rdb-pd stopped cleanly");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return rdb::run_guarded("rdb-pd", run, argc, argv, 1);
}
