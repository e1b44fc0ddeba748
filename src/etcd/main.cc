// rdb-etcd: etcd's v3 API as a stateless gateway over an rdb cluster (see docs/etcd.md).
#include <fmt/format.h>
#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/address.h"
#include "common/config_file.h"
#include "common/grpc_setup.h"
#include "common/http_status_server.h"
#include "common/limits.h"
#include "common/logging.h"
#include "common/main_guard.h"
#include "common/ready_file.h"
#include "common/signals.h"
#include "common/tls_flags.h"
#include "common/version.h"
#include "etcd/lease.h"
#include "etcd/services.h"
#include "etcd/watch.h"

namespace {

int run(int argc, char** argv) {
  std::string pd = "127.0.0.1:2379";
  std::string addr = "127.0.0.1:12379";
  std::string status_addr;
  std::string advertise;
  std::string name;
  std::string ns = "etcd";
  std::string log_level = "info";
  std::string ready_file;
  rdb::TlsFiles tls;
  rdb::etcd::KvOptions kv_options;
  std::uint64_t timeout_ms = 10000;
  std::uint64_t lease_check_ms = 500;
  std::uint64_t watch_poll_ms = 50;
  std::uint64_t progress_notify_ms = 600000;
  rdb::etcd::WatchOptions watch_options;

  CLI::App app{"rdb-etcd: etcd's v3 API (KV, Lease, Watch, ...) served over an rdb cluster; stateless, run any number"};
  app.set_version_flag("--version", std::string(rdb::kRdbVersion));
  app.add_option("--pd", pd, "PD endpoints HOST:PORT[,HOST:PORT...]")->capture_default_str();
  app.add_option("--addr", addr, "gRPC listen address HOST:PORT for etcd clients (port 0 picks a free port)")
      ->capture_default_str();
  app.add_option("--status-addr", status_addr, "HTTP address for /status (off when empty)");
  app.add_option("--advertise-client-url", advertise,
                 "the URL clients reach this gateway at, as MemberList shows it (default: http(s)://ADDR)");
  app.add_option("--name", name, "this gateway's name in MemberList (default: its address)");
  app.add_option("--namespace", ns,
                 "the etcd key space served: gateways of one namespace share it; namespaces never overlap")
      ->capture_default_str();
  app.add_option("--max-txn-ops", kv_options.max_txn_ops, "most operations in one branch of a Txn (as etcd's flag)")
      ->check(CLI::Range(1, 10240))
      ->capture_default_str();
  app.add_option("--max-range-bytes", kv_options.max_range_bytes,
                 "a Range whose answer would exceed this many bytes is refused (bounds the gateway's memory)")
      ->transform(CLI::AsSizeValue(false))
      ->capture_default_str();
  app.add_option("--request-timeout-ms", timeout_ms, "deadline of each request to rdb, conflict retries included")
      ->check(CLI::Range(100, 600000))
      ->capture_default_str();
  app.add_option("--lease-check-interval-ms", lease_check_ms,
                 "how often the lease keeper (the live gateway with the lowest member id) revokes expired leases")
      ->check(CLI::Range(10, 60000))
      ->capture_default_str();
  app.add_option("--watch-poll-interval-ms", watch_poll_ms,
                 "how often each watch reads its range's new commits (the latency of an event; each read scans "
                 "the watched range's versions)")
      ->check(CLI::Range(1, 60000))
      ->capture_default_str();
  app.add_option("--watch-progress-notify-interval-ms", progress_notify_ms,
                 "a watcher that asked for progress notifications and saw no event this long is told its revision")
      ->check(CLI::Range(10, 86400000))
      ->capture_default_str();
  app.add_option("--max-watchers-per-stream", watch_options.max_watchers_per_stream,
                 "watchers one Watch stream may hold (each polls a change feed per region of its range)")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  app.add_option("--max-watch-streams", watch_options.max_streams,
                 "Watch streams this gateway serves at once (each holds two threads); more are refused "
                 "(RESOURCE_EXHAUSTED)")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")->capture_default_str();
  app.add_option("--ready-file", ready_file, "write bound addresses as JSON to this file once serving");
  rdb::add_tls_flags(app, tls, /*server=*/true);
  rdb::add_config_file_flags(app, "rdb-etcd");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  rdb::block_shutdown_signals();
  rdb::tune_process_for_grpc();
  if (auto s = rdb::init_logging("rdb-etcd", log_level); !s.is_ok()) {
    fmt::print(stderr, "rdb-etcd: {}\n", s.message());
    return 2;
  }
  if (ns.empty() || ns.find('\0') != std::string::npos) {
    spdlog::error("--namespace must be a non-empty name");
    return 2;
  }
  auto listen = rdb::parse_host_port(addr, true);
  if (!listen.is_ok()) {
    spdlog::error("--addr: {}", listen.status().message());
    return 2;
  }

  rdb::ClientOptions options;
  options.pd_endpoints = {pd};
  options.timeout = std::chrono::milliseconds(timeout_ms);
  options.tls_ca = tls.ca;
  options.tls_cert = tls.cert;
  options.tls_key = tls.key;
  auto client = rdb::RdbClient::connect(options);
  if (!client.is_ok()) {
    spdlog::error("cannot start: {}", client.status().message());
    return 2;
  }
  // The cluster id etcd clients see is the rdb cluster's: wait for PD (as a store does).
  std::uint64_t cluster_id = 0;
  for (int attempt = 0;; ++attempt) {
    auto status = (*client)->cluster_status();
    if (status.is_ok()) {
      cluster_id = status->cluster_id;
      break;
    }
    if (attempt == 0) {
      spdlog::warn("waiting for PD at {}: {}", pd, status.status().message());
    }
    if (attempt >= 60) {
      spdlog::error("cannot start: PD at {} did not answer: {}", pd, status.status().message());
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }

  auto creds = rdb::server_credentials(tls);
  if (!creds.is_ok()) {
    spdlog::error("cannot start: {}", creds.status().message());
    return 2;
  }
  rdb::etcd::KeyLayout layout(ns);
  kv_options.cluster_id = cluster_id;
  kv_options.timeout = std::chrono::milliseconds(timeout_ms);
  rdb::etcd::EtcdKv kv(**client, layout, kv_options);
  rdb::etcd::MemberRegistry members(**client, layout);
  rdb::etcd::KvService kv_service(kv);
  rdb::etcd::MaintenanceService maintenance(kv, **client);
  rdb::etcd::ClusterService cluster(kv, members);
  rdb::etcd::AuthService auth;
  watch_options.poll_interval = std::chrono::milliseconds(watch_poll_ms);
  watch_options.progress_notify_interval = std::chrono::milliseconds(progress_notify_ms);
  watch_options.max_response_bytes = kv_options.max_range_bytes < watch_options.max_response_bytes
                                         ? kv_options.max_range_bytes
                                         : watch_options.max_response_bytes;
  rdb::etcd::WatchService watch(kv, **client, layout, watch_options);
  rdb::etcd::Leases leases(kv, **client, layout, members);
  rdb::etcd::LeaseService lease_service(leases);

  grpc::ServerBuilder builder;
  int bound_port = 0;
  builder.AddListeningPort(listen->to_string(), *creds, &bound_port);
  builder.SetMaxReceiveMessageSize(rdb::kMaxGrpcMessageBytes);
  builder.SetMaxSendMessageSize(rdb::kMaxGrpcMessageBytes);
  rdb::allow_keepalive_pings(builder);
  builder.RegisterService(&kv_service);
  builder.RegisterService(&maintenance);
  builder.RegisterService(&cluster);
  builder.RegisterService(&auth);
  builder.RegisterService(&watch);
  builder.RegisterService(&lease_service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || bound_port == 0) {
    spdlog::error("cannot listen on {} (address in use or not local?)", listen->to_string());
    return 1;
  }
  rdb::HostPort served{listen->host, static_cast<std::uint16_t>(bound_port)};
  const std::string url =
      !advertise.empty() ? advertise : fmt::format("{}://{}", tls.enabled() ? "https" : "http", served.to_string());
  const std::uint64_t member_id = rdb::etcd::member_id_of(url);
  kv.set_member_id(member_id);
  members.start(name.empty() ? served.to_string() : name, url);
  leases.start_expiry(std::chrono::milliseconds(lease_check_ms));

  std::unique_ptr<rdb::HttpStatusServer> status_server;
  std::string status_served;
  if (!status_addr.empty()) {
    auto status_listen = rdb::parse_host_port(status_addr, true);
    if (!status_listen.is_ok()) {
      spdlog::error("--status-addr: {}", status_listen.status().message());
      return 2;
    }
    auto started = rdb::HttpStatusServer::start(
        *status_listen, {{"/status", {"application/json", [&] {
                                        nlohmann::json j = {{"role", "etcd-gateway"},
                                                            {"version", std::string(rdb::kRdbVersion)},
                                                            {"etcd_api", rdb::etcd::kEtcdApiVersion},
                                                            {"cluster_id", cluster_id},
                                                            {"member_id", member_id},
                                                            {"namespace", ns},
                                                            {"addr", served.to_string()}};
                                        return j.dump() + "\n";
                                      }}}});
    if (!started.is_ok()) {
      spdlog::error("cannot start: {}", started.status().message());
      return 1;
    }
    status_server = std::move(started).value();
    status_served = rdb::HostPort{status_listen->host, status_server->port()}.to_string();
  }

  spdlog::info("rdb-etcd {} serving etcd's v3 API on {} (namespace '{}', cluster {}, member {:x})", rdb::kRdbVersion,
               served.to_string(), ns, cluster_id, member_id);
  if (!ready_file.empty()) {
    nlohmann::json j = {{"addr", served.to_string()}, {"member_id", member_id}, {"pid", ::getpid()}};
    if (!status_served.empty()) {
      j["status_addr"] = status_served;
    }
    if (auto s = rdb::write_ready_file(ready_file, j.dump()); !s.is_ok()) {
      spdlog::error("{}", s.message());
    }
  }

  int sig = rdb::wait_for_shutdown_signal();
  spdlog::info("received signal {}, shutting down", sig);
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(3));
  server->Wait();
  leases.stop();
  members.stop();
  spdlog::info("rdb-etcd stopped cleanly");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return rdb::run_guarded("rdb-etcd", run, argc, argv, 1);
}
