// rdb-server: a storage node. Serves the KV API over gRPC from a RocksDB data dir.
#include <fmt/format.h>
#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <filesystem>
#include <future>
#include <nlohmann/json.hpp>
#include <thread>
#include <tuple>
#include <vector>

#include "client/tso_batcher.h"
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
#include "common/test_switches.h"
#include "common/tls_flags.h"
#include "common/version.h"
#include "raftdisk/engine_options.h"
#include "server/disk_space.h"
#include "server/gc_worker.h"
#include "server/grpc_transport.h"
#include "server/kv_service.h"
#include "server/pd_worker.h"
#include "server/store_identity.h"
#include "server/tcp_transport.h"
#include "storage/rocks_engine.h"

namespace {

int run(int argc, char** argv) {
  std::string addr = "127.0.0.1:20160";
  std::string advertise_addr;
  std::string status_addr = "127.0.0.1:20180";
  std::string data_dir = "./rdb-server-data";
  std::string pd_addr;
  std::string log_level = "info";
  std::string ready_file;
  int pd_wait_s = 30;
  int tick_ms = 100;
  int heartbeat_ms = 1000;
  std::uint64_t log_gc_threshold = 10000;
  std::uint64_t log_gc_size_limit = 72ULL << 20;  // 3/4 of the default split size, as TiKV
  std::uint64_t log_gc_replicated_entries = 64;
  std::uint64_t entry_cache_bytes = 128ULL << 20;
  bool lease_reads = true;
  bool local_reads = true;
  bool hibernate_regions = true;
  std::size_t max_change_feeds = 1024;
  std::uint64_t change_feed_memory = std::uint64_t{256} << 20;
  int change_feed_idle_ms = 60000;
  bool unsafe_local_reads = false;
  bool txn_reads_ignore_locks = false;
  bool ack_before_commit = false;
  rdb::TlsFiles tls;
  std::string raft_addr;
  std::uint64_t reserve_space = std::uint64_t{256} << 20;
  std::uint64_t min_free_space = std::uint64_t{64} << 20;
  std::uint64_t snap_max_bytes_per_sec = std::uint64_t{100} << 20;
  std::size_t max_stream_requests = rdb::KvService::kDefaultMaxStreamRequests;
  std::uint64_t split_size = 96ULL << 20;
  std::uint64_t split_keys = 960'000;
  int split_check_ms = 10'000;
  std::size_t max_raft_queue = rdb::RaftStoreConfig().max_pending_tasks;

  CLI::App app{"rdb-server: an rdb storage node"};
  app.set_version_flag("--version", std::string(rdb::kRdbVersion));
  app.add_option("--addr", addr, "gRPC listen address HOST:PORT (port 0 picks a free port)")->capture_default_str();
  app.add_option("--advertise-addr", advertise_addr, "address clients should use (default: the bound --addr)");
  app.add_option("--raft-addr", raft_addr,
                 "listen address HOST:PORT for Raft traffic between stores on plain TCP, served by the Raft loop "
                 "itself (port 0 picks a free port; empty: Raft over gRPC). Stores without one are reached over "
                 "gRPC, as are snapshots. Not with TLS");
  app.add_option("--status-addr", status_addr, "HTTP status address for /metrics and /status")->capture_default_str();
  app.add_option("--data-dir", data_dir, "directory for this store's data")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast)
      ->capture_default_str();
  app.add_option("--pd", pd_addr,
                 "PD endpoints HOST:PORT[,HOST:PORT...] (the members of the PD group); without it the store runs "
                 "standalone");
  app.add_option("--pd-wait-seconds", pd_wait_s, "how long to keep trying to reach PD at start")->capture_default_str();
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")->capture_default_str();
  app.add_option("--ready-file", ready_file, "write bound addresses as JSON to this file once serving");
  app.add_option("--raft-tick-ms", tick_ms, "Raft tick interval (elections after 10 ticks of silence)")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  int gc_interval_ms = 60'000;
  app.add_option("--gc-interval-ms", gc_interval_ms,
                 "how often old transactional versions (below PD's GC safe point) are looked for")
      ->check(CLI::Range(10, 86'400'000))
      ->capture_default_str();
  app.add_option("--pd-heartbeat-ms", heartbeat_ms, "how often to report to PD")
      ->check(CLI::Range(10, 600000))
      ->capture_default_str();
  app.add_option("--raft-log-gc-threshold", log_gc_threshold,
                 "compact a region's Raft log once this many applied entries are kept")
      ->check(CLI::Range(std::uint64_t{10}, std::uint64_t{100000000}))
      ->capture_default_str();
  app.add_option("--raft-log-gc-size-limit", log_gc_size_limit,
                 "also compact a region's Raft log once the entries kept since the last compaction hold this many "
                 "bytes (0: no limit); accepts KiB/MiB/GiB")
      ->transform(CLI::AsSizeValue(false))
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast)
      ->capture_default_str();
  app.add_option("--raft-log-gc-replicated-entries", log_gc_replicated_entries,
                 "compact a region's Raft log once this many entries are applied and held by every peer (0: only "
                 "the count and size limits)")
      ->check(CLI::Range(std::uint64_t{0}, std::uint64_t{100000000}))
      ->capture_default_str();
  app.add_option("--raft-entry-cache-size", entry_cache_bytes,
                 "recent Raft log entries kept in memory for the whole store, shared equally by its regions (each "
                 "at most 32MiB; older entries are read from disk); accepts KiB/MiB/GiB")
      ->transform(CLI::AsSizeValue(false))
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast)
      ->capture_default_str();
  app.add_option("--max-stream-requests", max_stream_requests,
                 "requests of one client's BatchCommands stream awaiting answers before the store stops reading it "
                 "(backpressure)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 20))
      ->capture_default_str();
  app.add_option("--max-raft-queue", max_raft_queue,
                 "requests and peer messages waiting for the Raft thread before new ones get ServerIsBusy")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 24))
      ->capture_default_str();
  app.add_option("--reserve-space", reserve_space,
                 "bytes of a placeholder file kept in the data dir and deleted when a store starts on a full disk "
                 "(0: none); accepts KiB/MiB/GiB")
      ->transform(CLI::AsSizeValue(false))
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast)
      ->capture_default_str();
  app.add_option("--min-free-space", min_free_space,
                 "refuse writes (DiskFull) while the data dir's file system has less free space; accepts KiB/MiB/GiB")
      ->transform(CLI::AsSizeValue(false))
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast)
      ->capture_default_str();
  app.add_option("--region-split-size", split_size,
                 "split a region that holds more than 1.5 times this (keys + values as written) into parts of "
                 "this size; accepts KiB/MiB/GiB")
      ->transform(CLI::AsSizeValue(false))
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast)
      ->capture_default_str();
  app.add_option("--region-split-keys", split_keys,
                 "split a region that holds more than 1.5 times this many keys into parts of this many")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--split-check-interval-ms", split_check_ms,
                 "how often region leaders check whether what was written calls for a split")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--snap-max-bytes-per-sec", snap_max_bytes_per_sec,
                 "pace of the snapshots this store sends to others, all together (0: unlimited); accepts "
                 "KiB/MiB/GiB")
      ->transform(CLI::AsSizeValue(false))
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast)
      ->capture_default_str();
  rdb::add_tls_flags(app, tls, /*server=*/true);
  app.add_flag("--lease-reads", lease_reads,
               "serve linearizable reads under the leader lease: no heartbeat round while a lease (won by one, "
               "renewed ahead of its end) lasts; assumes the stores' monotonic clocks run at about the same rate "
               "(--lease-reads=false: a ReadIndex round for every batch of reads)")
      ->default_str("true");  // a flag: CLI11 captures no default for it
  app.add_flag("--local-reads", local_reads,
               "with --lease-reads, a leader serves a read inside its lease on the gRPC thread that received "
               "it, without a trip through the Raft thread (--local-reads=false: every read goes through it)")
      ->default_str("true");
  app.add_option("--max-change-feeds", max_change_feeds,
                 "live change feeds (watches, through rdb-etcd) this store keeps at once; more are refused")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1000000}))
      ->capture_default_str();
  app.add_option("--change-feed-memory", change_feed_memory,
                 "memory all change feeds together may buffer; a feed that would pass it is lost and its reader "
                 "catches up by scanning; accepts KiB/MiB/GiB")
      ->transform(CLI::AsSizeValue(false))
      ->check(CLI::Range(std::uint64_t{1} << 20, std::uint64_t{1} << 40))
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast)
      ->capture_default_str();
  app.add_option("--change-feed-idle-ms", change_feed_idle_ms, "a change feed nobody polled for this long is dropped")
      ->check(CLI::Range(1000, 3600000))
      ->capture_default_str();
  app.add_option("--hibernate-regions", hibernate_regions,
                 "idle regions stop ticking and heartbeating until something happens")
      ->capture_default_str();
  if constexpr (rdb::kTestSwitches) {  // never in builds with RDB_TEST_SWITCHES=OFF
    app.add_flag("--test-unsafe-local-reads", unsafe_local_reads,
                 "TEST ONLY: serve reads from any replica's local state (not linearizable; for testing the chaos "
                 "checker)");
    app.add_flag("--test-ack-before-commit", ack_before_commit,
                 "TEST ONLY: acknowledge raw writes before they commit (loses acknowledged writes on failover; for "
                 "testing the chaos checker)");
    app.add_flag("--test-txn-reads-ignore-locks", txn_reads_ignore_locks,
                 "TEST ONLY: transactional reads do not check locks (breaks snapshot isolation; for testing the "
                 "chaos bank checker)");
  }
  rdb::add_config_file_flags(app, "rdb-server");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  rdb::block_shutdown_signals();
  rdb::tune_process_for_grpc();
  if (auto s = rdb::init_logging("rdb-server", log_level); !s.is_ok()) {
    fmt::print(stderr, "rdb-server: {}\n", s.message());
    return 2;
  }
  auto server_creds = rdb::server_credentials(tls);
  auto peer_creds = rdb::channel_credentials(tls);
  for (const rdb::Status* s : {&server_creds.status(), &peer_creds.status()}) {
    if (!s->is_ok()) {
      spdlog::error("cannot start: {}", s->message());
      return 2;
    }
  }
  auto listen = rdb::parse_host_port(addr, true);
  auto status_listen = rdb::parse_host_port(status_addr, true);
  for (const rdb::Status* s : {&listen.status(), &status_listen.status()}) {
    if (!s->is_ok()) {
      spdlog::error("{}", s->message());
      return 2;
    }
  }
  if (split_size == 0) {
    spdlog::error("--region-split-size must be positive");
    return 2;
  }
  if (!raft_addr.empty()) {
    if (auto p = rdb::parse_host_port(raft_addr, true); !p.is_ok()) {
      spdlog::error("--raft-addr: {}", p.status().message());
      return 2;
    }
    if (tls.enabled()) {
      spdlog::error("--raft-addr is plaintext; with TLS (--ca, --cert, --key) Raft traffic stays on gRPC");
      return 2;
    }
    if (pd_addr.empty()) {
      spdlog::error("--raft-addr needs --pd (a standalone store has no peers)");
      return 2;
    }
  }
  const std::vector<std::string> pd_endpoints = rdb::split_list(pd_addr);
  for (const auto& ep : pd_endpoints) {
    if (auto p = rdb::parse_host_port(ep); !p.is_ok()) {
      spdlog::error("--pd: {}", p.status().message());
      return 2;
    }
  }
  if (!pd_addr.empty() && pd_endpoints.empty()) {
    spdlog::error("--pd: no endpoint in '{}'", pd_addr);
    return 2;
  }

  auto disk = std::make_shared<rdb::DiskSpace>(data_dir, min_free_space);
  {
    std::error_code ec;
    std::filesystem::create_directories(data_dir, ec);
    auto placeholder = disk->manage_placeholder(reserve_space);
    if (!placeholder.is_ok()) {
      spdlog::warn("{}", placeholder.status().message());
    } else if (!placeholder->empty()) {
      spdlog::warn("{}", *placeholder);
    }
  }
  auto engine = rdb::RocksEngine::open(data_dir, rdb::raft_disk_engine_options());
  if (!engine.is_ok()) {
    spdlog::error("cannot start: {}", engine.status().message());
    return 1;
  }
  rdb::MetricsRegistry metrics;
  std::unique_ptr<rdb::PdClient> pd_client;
  std::unique_ptr<rdb::TsoBatcher> tso;  // after pd_client: destroyed first
  std::unique_ptr<rdb::GcWorker> gc_worker;
  std::unique_ptr<rdb::PdWorker> pd_worker;
  std::unique_ptr<rdb::RaftTransport> transport;
  rdb::GrpcRaftTransport* grpc_transport = nullptr;  // owned by `transport` when peers exist
  rdb::RaftStoreConfig raft_config;
  raft_config.tick_interval = std::chrono::milliseconds(tick_ms);
  raft_config.log_gc_threshold = log_gc_threshold;
  raft_config.log_gc_size_limit = log_gc_size_limit;
  raft_config.log_gc_replicated_entries = log_gc_replicated_entries;
  raft_config.entry_cache_bytes = entry_cache_bytes;
  raft_config.lease_reads = lease_reads;
  raft_config.local_reads = local_reads;
  raft_config.hibernate_regions = hibernate_regions;
  raft_config.change_feeds.max_feeds = max_change_feeds;
  raft_config.change_feeds.memory_limit = change_feed_memory;
  raft_config.change_feeds.idle_timeout = std::chrono::milliseconds(change_feed_idle_ms);
  raft_config.max_pending_tasks = max_raft_queue;
  raft_config.disk = disk;
  raft_config.snap_dir = data_dir + "/snap";
  raft_config.unsafe_local_reads = unsafe_local_reads;
  if (unsafe_local_reads) {
    spdlog::warn("--test-unsafe-local-reads: reads are NOT linearizable (test-only switch)");
  }
  raft_config.ack_before_commit = ack_before_commit;
  if (ack_before_commit) {
    spdlog::warn("--test-ack-before-commit: acknowledged writes can be lost (test-only switch)");
  }
  raft_config.seed = static_cast<std::uint64_t>(::getpid());
  // The transport resolves peers' addresses through the PD worker, created once the cluster is joined.
  struct Resolver {
    std::atomic<rdb::PdWorker*> worker{nullptr};
  } resolver;
  raft_config.split_limits.bytes = split_size;
  raft_config.split_limits.keys = split_keys;
  raft_config.split_check_interval = std::chrono::milliseconds(split_check_ms);
  if (!pd_addr.empty()) {
    raft_config.alloc_ids = [&resolver](std::uint32_t count) -> rdb::Result<std::uint64_t> {
      rdb::PdWorker* w = resolver.worker.load();
      if (w == nullptr) {
        return rdb::Status::unavailable("not joined to the cluster yet");
      }
      return w->alloc_ids(count);
    };
  }
  raft_config.on_regions_changed = [&resolver] {
    if (rdb::PdWorker* w = resolver.worker.load()) {
      w->heartbeat_soon();  // PD learns new regions and leaders now, so clients find them
    }
  };
  if (pd_addr.empty()) {
    struct NoPeers final : rdb::RaftTransport {
      void send(std::vector<rdb::raftsvc::RaftMessage>) override {}  // a standalone store has none
      void send_snapshot(rdb::raftsvc::RaftMessage, std::vector<std::string>, std::function<void(bool)> done) override {
        done(false);
      }
    };
    transport = std::make_unique<NoPeers>();
  } else {
    auto grpc = std::make_unique<rdb::GrpcRaftTransport>(
        [&resolver](std::uint64_t store_id) -> rdb::Result<std::string> {
          rdb::PdWorker* w = resolver.worker.load();
          if (w == nullptr) {
            return rdb::Status::unavailable("not joined to the cluster yet");
          }
          return w->resolve(store_id);
        },
        8192, *peer_creds, snap_max_bytes_per_sec);
    grpc_transport = grpc.get();
    transport = std::move(grpc);
  }
  // Declared after `transport` (its fallback) and before the store, which must stop first.
  std::unique_ptr<rdb::TcpRaftTransport> tcp_transport;
  if (!raft_addr.empty() && grpc_transport != nullptr) {
    auto tcp = rdb::TcpRaftTransport::listen(
        raft_addr,
        [&resolver](std::uint64_t store_id) -> rdb::Result<std::string> {
          rdb::PdWorker* w = resolver.worker.load();
          if (w == nullptr) {
            return rdb::Status::unavailable("not joined to the cluster yet");
          }
          return w->resolve_raft(store_id);
        },
        *grpc_transport);
    if (!tcp.is_ok()) {
      spdlog::error("cannot start: {}", tcp.status().message());
      return 1;
    }
    tcp_transport = std::move(tcp).value();
  }
  rdb::RaftStore raft_store(**engine, raft_config,
                            tcp_transport ? static_cast<rdb::RaftTransport&>(*tcp_transport) : *transport, &metrics);
  if (tcp_transport) {
    tcp_transport->set_store(raft_store);
    raft_store.set_poller(tcp_transport.get());
    rdb::TcpRaftTransport* t = tcp_transport.get();
    metrics.gauge("rdb_raft_tcp_sent_messages_total", "Raft messages sent on the TCP transport (--raft-addr)",
                  [t] { return static_cast<double>(t->sent()); });
    metrics.gauge("rdb_raft_tcp_received_messages_total", "Raft messages received on the TCP transport",
                  [t] { return static_cast<double>(t->received()); });
    metrics.gauge("rdb_raft_tcp_dropped_messages_total",
                  "Raft messages the TCP transport dropped (buffer full, peer unreachable)",
                  [t] { return static_cast<double>(t->dropped()); });
    metrics.gauge("rdb_raft_tcp_refused_connections_total",
                  "Raft connections closed for a bad frame, another cluster's traffic or too many connections",
                  [t] { return static_cast<double>(t->refused_connections()); });
  }
  rdb::KvService service(**engine, raft_store, metrics, 0);
  if (txn_reads_ignore_locks) {
    spdlog::warn("--test-txn-reads-ignore-locks: transactions are NOT snapshot-isolated (test-only switch)");
    service.set_test_txn_reads_ignore_locks(true);
  }
  service.set_max_stream_requests(max_stream_requests);
  rdb::RaftService raft_service(raft_store);

  grpc::ServerBuilder builder;
  int bound_port = 0;
  builder.AddListeningPort(listen->to_string(), *server_creds, &bound_port);
  builder.SetMaxReceiveMessageSize(rdb::kMaxGrpcMessageBytes);
  builder.SetMaxSendMessageSize(rdb::kMaxGrpcMessageBytes);
  rdb::allow_keepalive_pings(builder);
  builder.RegisterService(&service);
  builder.RegisterService(&raft_service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || bound_port == 0) {
    spdlog::error("cannot listen on {} (address in use or not local?)", listen->to_string());
    return 1;
  }
  rdb::HostPort served{listen->host, static_cast<std::uint16_t>(bound_port)};
  std::string advertised = advertise_addr.empty() ? served.to_string() : advertise_addr;
  // The Raft listener is advertised on the host clients use when it listens on every interface.
  std::string advertised_raft;
  if (tcp_transport) {
    auto raft_listen = rdb::parse_host_port(raft_addr, true);
    auto public_host = rdb::parse_host_port(advertised, true);
    std::string host = raft_listen->host;
    if ((host == "0.0.0.0" || host == "[::]" || host == "::") && public_host.is_ok()) {
      host = public_host->host;
    }
    advertised_raft = rdb::HostPort{host, tcp_transport->port()}.to_string();
  }

  auto status_server = rdb::HttpStatusServer::start(
      *status_listen, {{"/metrics", {"text/plain; version=0.0.4", [&metrics] { return metrics.render_prometheus(); }}},
                       {"/status", {"application/json", [&] {
                                      nlohmann::json regions = nlohmann::json::array();
                                      for (const auto& r : raft_store.regions()) {
                                        regions.push_back({{"id", r.region.id()},
                                                           {"leader", r.is_leader},
                                                           {"leader_store_id", r.leader.store_id()},
                                                           {"term", r.term},
                                                           {"applied_index", r.applied_index},
                                                           {"peers", r.region.peers_size()}});
                                      }
                                      nlohmann::json j = {{"role", "store"},
                                                          {"version", std::string(rdb::kRdbVersion)},
                                                          {"store_id", raft_store.store_id()},
                                                          {"addr", advertised},
                                                          {"regions", regions},
                                                          {"data_dir", data_dir}};
                                      return j.dump() + "\n";
                                    }}}});
  // Requests may have arrived already; they wait for a Raft loop that will never run.
  // Stop the store first (it answers them "busy"), then give gRPC a short deadline.
  auto fail_start = [&](const std::string& why) {
    spdlog::error("cannot start: {}", why);
    raft_service.shutdown();
    raft_store.stop();
    server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
    return 1;
  };
  if (!status_server.is_ok()) {
    return fail_start(status_server.status().message());
  }
  rdb::HostPort status_served{status_listen->host, (*status_server)->port()};
  metrics.gauge("rdb_engine_estimated_keys", "RocksDB estimate of live keys",
                [e = engine->get()] { return static_cast<double>(e->estimate_num_keys()); });
  // RocksDB basics, summed over column families.
  for (const auto& [name, property, help] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"rdb_engine_memtable_bytes", "rocksdb.cur-size-all-mem-tables", "Memtable memory"},
           {"rdb_engine_sst_bytes", "rocksdb.total-sst-files-size", "Size of all SST files"},
           {"rdb_engine_live_data_bytes", "rocksdb.estimate-live-data-size", "Estimated live data"},
           {"rdb_engine_pending_compaction_bytes", "rocksdb.estimate-pending-compaction-bytes",
            "Bytes compaction still has to rewrite"},
           {"rdb_engine_running_compactions", "rocksdb.num-running-compactions", "Compactions running now"},
           {"rdb_engine_block_cache_bytes", "rocksdb.block-cache-usage", "Block cache memory in use"},
           {"rdb_engine_table_readers_bytes", "rocksdb.estimate-table-readers-mem",
            "Index and filter memory outside the block cache"}}) {
    metrics.gauge(name, help,
                  [e = engine->get(), p = property] { return static_cast<double>(e->int_property_total(p)); });
  }

  rdb::Result<rdb::StoreIdentity> identity = rdb::Status::internal("unset");
  if (pd_addr.empty()) {
    identity = rdb::load_standalone_identity(**engine);
  } else {
    auto pd = rdb::PdClient::create(pd_endpoints, *peer_creds, rdb::kMaxGrpcMessageBytes);
    if (!pd.is_ok()) {
      return fail_start(pd.status().message());
    }
    pd_client = std::move(pd).value();
    rdb::metapb::Store self;
    self.set_address(advertised);
    self.set_status_address(status_served.to_string());
    self.set_raft_address(advertised_raft);
    self.set_version(std::string(rdb::kRdbVersion));
    identity = rdb::join_cluster(**engine, *pd_client, self,
                                 std::chrono::system_clock::now() + std::chrono::seconds(pd_wait_s));
  }
  if (!identity.is_ok()) {
    return fail_start(identity.status().message());
  }
  raft_store.set_store_id(identity->store_id);
  raft_service.set_cluster_id(identity->cluster_id);
  if (grpc_transport != nullptr) {
    grpc_transport->set_cluster_id(identity->cluster_id);
  }
  if (tcp_transport) {
    tcp_transport->set_cluster_id(identity->cluster_id);
  }
  service.set_cluster_id(identity->cluster_id);
  if (auto s = raft_store.start(identity->region); !s.is_ok()) {
    return fail_start(s.message());
  }
  if (pd_client) {
    pd_worker =
        std::make_unique<rdb::PdWorker>(*pd_client, raft_store, std::chrono::milliseconds(heartbeat_ms), data_dir);
    resolver.worker = pd_worker.get();
    gc_worker = std::make_unique<rdb::GcWorker>(**engine, raft_store, service.txn_concurrency(),
                                                std::chrono::milliseconds(gc_interval_ms), metrics);
    pd_worker->on_gc_safe_point([gc = gc_worker.get()](std::uint64_t sp) {
      if (rdb::Status s = gc->learn_safe_point(sp); !s.is_ok()) {
        spdlog::error("cannot persist the GC safe point {}: {}", sp, s.to_string());
      }
    });
    gc_worker->start();
    tso = std::make_unique<rdb::TsoBatcher>(
        [pd = pd_client.get()] { return pd->current_channel(); },
        [pd = pd_client.get()](const auto& ch, const std::string& leader) { pd->member_failed(ch, leader); });
    tso->set_cluster_id(identity->cluster_id);
    service.set_timestamp_source([t = tso.get()]() -> rdb::Result<std::uint64_t> {
      return t->get(1, std::chrono::steady_clock::now() + std::chrono::seconds(2));
    });
    service.set_id_source([w = pd_worker.get()](std::uint32_t count) { return w->alloc_ids(count); });
    pd_worker->start();
  }

  spdlog::info("rdb-server {} store {} serving on {} (status {}), data in {}{}", rdb::kRdbVersion, identity->store_id,
               served.to_string(), status_served.to_string(), data_dir,
               pd_addr.empty() ? ", standalone" : fmt::format(", cluster {} via PD {}", identity->cluster_id, pd_addr));
  if (!ready_file.empty()) {
    nlohmann::json j = {{"addr", served.to_string()},
                        {"status_addr", status_served.to_string()},
                        {"store_id", identity->store_id},
                        {"raft_addr", advertised_raft},
                        {"pid", ::getpid()}};
    if (auto s = rdb::write_ready_file(ready_file, j.dump()); !s.is_ok()) {
      spdlog::error("{}", s.message());
    }
  }

  int sig = rdb::wait_for_shutdown_signal();
  spdlog::info("received signal {}, shutting down", sig);
  // Stop accepting, let in-flight requests finish (or cancel them after the grace period),
  // then close RocksDB. Acknowledged writes are already in the synced WAL.
  raft_service.shutdown();
  auto grace = std::chrono::system_clock::now() + std::chrono::seconds(5);
  std::promise<void> drained;
  auto drained_future = drained.get_future();
  std::thread shutdown_thread([&] {
    server->Shutdown(grace);
    drained.set_value();
  });
  // Writes on the callback API finish only when Raft answers them; Shutdown waits for
  // them. Past the grace period (e.g. no quorum), stop Raft, which answers every
  // pending write as undetermined, so Shutdown can return.
  if (drained_future.wait_until(grace + std::chrono::seconds(1)) != std::future_status::ready) {
    raft_store.stop();
  }
  shutdown_thread.join();
  server->Wait();
  if (gc_worker) {
    gc_worker->stop();
  }
  if (pd_worker) {
    pd_worker->stop();
  }
  raft_store.stop();
  resolver.worker = nullptr;
  transport.reset();
  status_server->reset();
  spdlog::info("rdb-server stopped cleanly");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return rdb::run_guarded("rdb-server", run, argc, argv, 1);
}
