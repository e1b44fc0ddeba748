// rdb-cli: a thin shell over the rdb client library.
//
// Exit codes (a contract for scripts): 0 ok, 1 key not found, 2 usage error,
// 3 CAS conflict, 4 any other error (message on stderr).
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <nlohmann/json.hpp>

#include "common/main_guard.h"
#include "common/tls_flags.h"
#include "common/version.h"
#include "rdb/client.h"
#include "txn_shell.h"

namespace {

constexpr int kExitOk = 0;
constexpr int kExitNotFound = 1;
constexpr int kExitUsage = 2;
constexpr int kExitConflict = 3;
constexpr int kExitError = 4;

struct Globals {
  std::string pd;
  std::string addr;
  rdb::TlsFiles tls;
  bool json = false;
  int timeout_ms = 5000;
};

void print_json(const nlohmann::json& j) {
  // Keys and values are bytes; anything that is not UTF-8 is shown with U+FFFD.
  std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
}

nlohmann::json peer_json(const rdb::PeerInfo& p) {
  return nlohmann::json{{"id", p.id}, {"store_id", p.store_id}, {"is_learner", p.is_learner}, {"role", p.role}};
}

nlohmann::json region_json(const rdb::RegionInfo& reg) {
  nlohmann::json peers = nlohmann::json::array();
  for (const auto& p : reg.peers) {
    peers.push_back(peer_json(p));
  }
  return {{"id", reg.id},
          {"start_key", reg.start_key},
          {"end_key", reg.end_key},
          {"epoch", {{"conf_ver", reg.conf_ver}, {"version", reg.version}}},
          {"leader", reg.leader.id == 0 ? nlohmann::json(nullptr) : peer_json(reg.leader)},
          {"peers", peers},
          {"approximate_size", reg.approximate_size},
          {"approximate_keys", reg.approximate_keys}};
}

std::string region_line(const rdb::RegionInfo& reg) {
  std::string peers;
  for (const auto& p : reg.peers) {
    peers += fmt::format("{}{}@store{}", peers.empty() ? "" : " ", p.id, p.store_id);
    if (p.role != "voter") {
      peers += "(" + p.role + ")";
    }
  }
  return fmt::format(
      "region {:<4} [{:?}, {:?}) epoch ({}, {}) leader {} peers {} size {:.1f} MiB keys {}", reg.id, reg.start_key,
      reg.end_key, reg.conf_ver, reg.version,
      reg.leader.id == 0 ? std::string("none") : fmt::format("{}@store{}", reg.leader.id, reg.leader.store_id), peers,
      static_cast<double>(reg.approximate_size) / (1 << 20), reg.approximate_keys);
}

int fail(const rdb::Status& s) {
  std::cerr << "error: " << s.to_string() << "\n";
  return s.code() == rdb::StatusCode::kInvalidArgument ? kExitUsage : kExitError;
}

}  // namespace

namespace {

int run(int argc, char** argv) {
  Globals g;
  CLI::App app{"rdb-cli: use an rdb cluster from the shell"};
  app.set_version_flag("--version", std::string(rdb::kRdbVersion));
  app.require_subcommand(1);
  app.fallthrough();
  app.add_option("--pd", g.pd,
                 "PD endpoints HOST:PORT[,HOST:PORT...]: members of the PD group (routing and timestamps)")
      ->envname("RDB_PD");
  app.add_option("--addr", g.addr, "talk to this store HOST:PORT directly instead of routing via PD")
      ->envname("RDB_ADDR");
  rdb::add_tls_flags(app, g.tls, /*server=*/false);
  app.add_flag("--json", g.json, "print one JSON object per result");
  app.add_option("--timeout-ms", g.timeout_ms, "deadline for the whole call, retries included")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.footer(
      "Exit codes: 0 ok, 1 key not found, 2 usage error, 3 CAS conflict (txn: conflict), 4 other error.\n"
      "Example: rdb-cli --pd 127.0.0.1:2379 raw-put greeting hello");

  std::string key, value, start, end, expected_text;
  std::vector<std::string> keys;
  std::uint32_t limit = 100;
  bool reverse = false, keys_only = false, cas_delete = false;
  std::uint32_t count = 1;

  auto* raw_put = app.add_subcommand("raw-put", "write VALUE under KEY in the raw key space");
  raw_put->add_option("KEY", key)->required();
  raw_put->add_option("VALUE", value)->required();
  auto* raw_get = app.add_subcommand("raw-get", "read KEY from the raw key space (exit 1 if missing)");
  raw_get->add_option("KEY", key)->required();
  auto* raw_delete = app.add_subcommand("raw-delete", "delete KEY from the raw key space");
  raw_delete->add_option("KEY", key)->required();
  auto* raw_scan = app.add_subcommand("raw-scan", "list pairs in [START, END) (END omitted = to the end)");
  raw_scan->add_option("START", start)->required();
  raw_scan->add_option("END", end);
  raw_scan->add_option("--limit", limit, "at most this many pairs (1-10240)")->capture_default_str();
  raw_scan->add_flag("--reverse", reverse, "descending key order");
  raw_scan->add_flag("--keys-only", keys_only, "print keys only");
  auto* batch_get = app.add_subcommand("raw-batch-get", "read several keys; prints those that exist");
  batch_get->add_option("KEYS", keys)->required();
  auto* batch_put = app.add_subcommand("raw-batch-put", "write KEY VALUE pairs atomically");
  batch_put->add_option("KEY_VALUE_PAIRS", keys, "KEY1 VALUE1 KEY2 VALUE2 ...")->required();
  auto* batch_delete = app.add_subcommand("raw-batch-delete", "delete several keys atomically");
  batch_delete->add_option("KEYS", keys)->required();
  auto* delete_range = app.add_subcommand("raw-delete-range", "delete every raw key in [START, END)");
  delete_range->add_option("START", start)->required();
  delete_range->add_option("END", end)->required();
  auto* get = app.add_subcommand("get", "read KEY's value and version from the versioned key space");
  get->add_option("KEY", key)->required();
  auto* cas = app.add_subcommand(
      "cas", "set KEY to VALUE if its version is EXPECTED_VERSION (0 = must not exist); exit 3 on conflict");
  cas->add_option("KEY", key)->required();
  cas->add_option("EXPECTED_VERSION", expected_text)->required();
  cas->add_option("VALUE", value, "new value (omit with --delete)");
  cas->add_flag("--delete", cas_delete, "delete KEY instead of writing a value");
  auto* cluster = app.add_subcommand("cluster", "show stores and regions as PD sees them");
  std::uint64_t remove_store_id = 0;
  auto* remove_store =
      app.add_subcommand("remove-store", "take a store out of the cluster: its replicas move to other stores first");
  remove_store->add_option("STORE_ID", remove_store_id)->required();
  std::uint64_t move_region = 0;
  std::uint64_t move_from = 0;
  std::uint64_t move_to = 0;
  auto* move_peer = app.add_subcommand(
      "move-peer", "move REGION_ID's replica from store FROM_STORE to store TO_STORE (a learner, then one joint step)");
  move_peer->add_option("REGION_ID", move_region)->required();
  move_peer->add_option("FROM_STORE", move_from)->required();
  move_peer->add_option("TO_STORE", move_to)->required();
  auto* pd_members = app.add_subcommand("pd-members", "list the PD group's members and its leader");
  auto* pd_member = app.add_subcommand("pd-member", "change the PD group's membership");
  pd_member->require_subcommand(1);
  std::string member_spec;
  auto* pd_member_add = pd_member->add_subcommand(
      "add", "add NAME=HOST:PORT to the PD group; then start that rdb-pd with --initial-cluster-state existing");
  pd_member_add->add_option("NAME=HOST:PORT", member_spec)->required();
  auto* pd_member_remove = pd_member->add_subcommand("remove", "remove member NAME from the PD group");
  pd_member_remove->add_option("NAME", member_spec)->required();
  auto* split = app.add_subcommand("split", "split the regions holding KEY... at those keys; prints the regions");
  split->add_option("KEY", keys)->required();
  app.add_subcommand("txn",
                     "run one transaction read from stdin, a command per line: get K | scan START END [LIMIT] | "
                     "put K V | delete K | commit | rollback (exit 0 done, 3 conflict, 4 other error)");
  auto* tso = app.add_subcommand("tso", "get timestamps from PD");
  tso->add_option("--count", count, "how many consecutive timestamps (1-65536)")->capture_default_str();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? kExitOk : kExitUsage;
  }

  std::uint64_t expected_version = 0;
  if (cas->parsed()) {
    try {
      std::size_t used = 0;
      expected_version = std::stoull(expected_text, &used);
      if (used != expected_text.size() || expected_text.front() == '-') {
        throw std::invalid_argument("trailing");
      }
    } catch (const std::exception&) {
      std::cerr << "error: EXPECTED_VERSION '" << expected_text << "' is not a non-negative integer\n";
      return kExitUsage;
    }
    if (cas_delete == (cas->count("VALUE") > 0)) {
      std::cerr << "error: give either VALUE or --delete to cas\n";
      return kExitUsage;
    }
  }
  if (batch_put->parsed() && keys.size() % 2 != 0) {
    std::cerr << "error: raw-batch-put needs KEY VALUE pairs (got an odd number of arguments)\n";
    return kExitUsage;
  }

  rdb::ClientOptions options;
  if (!g.pd.empty()) {
    options.pd_endpoints.push_back(g.pd);  // a comma-separated list is split by the client
  }
  options.store_addr = g.addr;
  options.tls_ca = g.tls.ca;
  options.tls_cert = g.tls.cert;
  options.tls_key = g.tls.key;
  options.timeout = std::chrono::milliseconds(g.timeout_ms);
  if (g.pd.empty() && g.addr.empty()) {
    options.pd_endpoints.push_back("127.0.0.1:2379");  // the playground's PD
  }
  auto client_or = rdb::RdbClient::connect(options);
  if (!client_or.is_ok()) {
    return fail(client_or.status());
  }
  rdb::RdbClient& client = **client_or;

  auto ok_line = [&](const char* op, const std::string& k) {
    if (g.json) {
      print_json({{"op", op}, {"key", k}, {"ok", true}});
    } else {
      std::cout << "OK\n";
    }
    return kExitOk;
  };
  auto print_pairs = [&](const std::vector<rdb::KeyValue>& pairs, bool with_values) {
    for (const auto& p : pairs) {
      if (g.json) {
        nlohmann::json j = {{"key", p.key}};
        if (with_values) {
          j["value"] = p.value;
        }
        print_json(j);
      } else if (with_values) {
        std::cout << p.key << "\t" << p.value << "\n";
      } else {
        std::cout << p.key << "\n";
      }
    }
    return kExitOk;
  };

  if (app.got_subcommand("txn")) {
    return rdb::cli::run_txn_shell(client, std::cin, std::cout, g.json);
  }
  if (raw_put->parsed()) {
    auto s = client.raw_put(key, value);
    return s.is_ok() ? ok_line("raw-put", key) : fail(s);
  }
  if (raw_get->parsed()) {
    auto r = client.raw_get(key);
    if (!r.is_ok()) {
      return fail(r.status());
    }
    if (!r->has_value()) {
      if (g.json) {
        print_json({{"key", key}, {"found", false}});
      } else {
        std::cerr << "not found: " << key << "\n";
      }
      return kExitNotFound;
    }
    if (g.json) {
      print_json({{"key", key}, {"found", true}, {"value", **r}});
    } else {
      std::cout << **r << "\n";
    }
    return kExitOk;
  }
  if (raw_delete->parsed()) {
    auto s = client.raw_delete(key);
    return s.is_ok() ? ok_line("raw-delete", key) : fail(s);
  }
  if (raw_scan->parsed()) {
    auto r = client.raw_scan(start, end, {limit, reverse, keys_only});
    return r.is_ok() ? print_pairs(*r, !keys_only) : fail(r.status());
  }
  if (batch_get->parsed()) {
    auto r = client.raw_batch_get(keys);
    return r.is_ok() ? print_pairs(*r, true) : fail(r.status());
  }
  if (batch_put->parsed()) {
    std::vector<rdb::KeyValue> pairs;
    for (std::size_t i = 0; i + 1 < keys.size(); i += 2) {
      pairs.push_back({keys[i], keys[i + 1]});
    }
    auto s = client.raw_batch_put(pairs);
    if (!s.is_ok()) {
      return fail(s);
    }
    if (g.json) {
      print_json({{"op", "raw-batch-put"}, {"count", pairs.size()}, {"ok", true}});
    } else {
      std::cout << "OK\n";
    }
    return kExitOk;
  }
  if (batch_delete->parsed()) {
    auto s = client.raw_batch_delete(keys);
    if (!s.is_ok()) {
      return fail(s);
    }
    if (g.json) {
      print_json({{"op", "raw-batch-delete"}, {"count", keys.size()}, {"ok", true}});
    } else {
      std::cout << "OK\n";
    }
    return kExitOk;
  }
  if (delete_range->parsed()) {
    auto s = client.raw_delete_range(start, end);
    if (!s.is_ok()) {
      return fail(s);
    }
    if (g.json) {
      print_json({{"op", "raw-delete-range"}, {"start_key", start}, {"end_key", end}, {"ok", true}});
    } else {
      std::cout << "OK\n";
    }
    return kExitOk;
  }
  if (get->parsed()) {
    auto r = client.get(key);
    if (!r.is_ok()) {
      return fail(r.status());
    }
    if (!r->found) {
      if (g.json) {
        print_json({{"key", key}, {"found", false}, {"version", 0}});
      } else {
        std::cerr << "not found: " << key << "\n";
      }
      return kExitNotFound;
    }
    if (g.json) {
      print_json({{"key", key}, {"found", true}, {"value", r->value}, {"version", r->version}});
    } else {
      std::cout << r->value << "\t(version " << r->version << ")\n";
    }
    return kExitOk;
  }
  if (cas->parsed()) {
    auto r = client.cas(key, expected_version, cas_delete ? std::nullopt : std::optional<std::string>(value));
    if (!r.is_ok()) {
      return fail(r.status());
    }
    if (g.json) {
      nlohmann::json j = {{"key", key}, {"succeeded", r->succeeded}, {"version", r->version}};
      if (!r->succeeded) {
        j["found"] = r->current_found;
        if (r->current_found) {
          j["value"] = r->current_value;
        }
      }
      print_json(j);
    } else if (r->succeeded) {
      std::cout << "OK (version " << r->version << ")\n";
    } else if (r->current_found) {
      std::cout << "CONFLICT: current version " << r->version << ", value " << r->current_value << "\n";
    } else {
      std::cout << "CONFLICT: key does not exist (expected version must be 0)\n";
    }
    return r->succeeded ? kExitOk : kExitConflict;
  }
  if (remove_store->parsed()) {
    auto s = client.remove_store(remove_store_id);
    if (!s.is_ok()) {
      return fail(s);
    }
    if (g.json) {
      print_json({{"op", "remove-store"}, {"store_id", remove_store_id}, {"ok", true}});
    } else {
      std::cout << "OK: store " << remove_store_id << " is being removed (see `cluster`)\n";
    }
    return kExitOk;
  }
  if (pd_members->parsed() || pd_member_add->parsed() || pd_member_remove->parsed()) {
    rdb::Result<std::vector<rdb::PdMemberInfo>> r = rdb::Status::internal("no PD member command");
    std::string op = "pd-members";
    if (pd_members->parsed()) {
      r = client.pd_members();
    } else if (pd_member_add->parsed()) {
      op = "pd-member add";
      auto eq = member_spec.find('=');
      if (eq == std::string::npos || eq == 0) {
        std::cerr << "error: pd-member add takes NAME=HOST:PORT (got '" << member_spec << "')\n";
        return kExitUsage;
      }
      r = client.add_pd_member(member_spec.substr(0, eq), member_spec.substr(eq + 1));
    } else {
      op = "pd-member remove";
      r = client.remove_pd_member(member_spec);
    }
    if (!r.is_ok()) {
      return fail(r.status());
    }
    if (g.json) {
      nlohmann::json members = nlohmann::json::array();
      for (const auto& m : *r) {
        members.push_back({{"name", m.name}, {"id", m.id}, {"address", m.address}, {"leader", m.leader}});
      }
      print_json({{"op", op}, {"members", members}});
    } else {
      for (const auto& m : *r) {
        std::cout << fmt::format("{:<12} {:<22} {}\n", m.name, m.address, m.leader ? "leader" : "");
      }
    }
    return kExitOk;
  }
  if (move_peer->parsed()) {
    auto s = client.move_peer(move_region, move_from, move_to);
    if (!s.is_ok()) {
      return fail(s);
    }
    if (g.json) {
      print_json({{"op", "move-peer"},
                  {"region_id", move_region},
                  {"from_store", move_from},
                  {"to_store", move_to},
                  {"ok", true}});
    } else {
      std::cout << "OK: region " << move_region << " is moving its replica from store " << move_from << " to store "
                << move_to << " (see `cluster`)\n";
    }
    return kExitOk;
  }
  if (cluster->parsed()) {
    auto r = client.cluster_status();
    if (!r.is_ok()) {
      return fail(r.status());
    }
    if (g.json) {
      nlohmann::json stores = nlohmann::json::array();
      for (const auto& s : r->stores) {
        stores.push_back({{"id", s.id},
                          {"address", s.address},
                          {"status_address", s.status_address},
                          {"state", s.state},
                          {"region_count", s.region_count},
                          {"leader_count", s.leader_count},
                          {"capacity_bytes", s.capacity_bytes},
                          {"available_bytes", s.available_bytes},
                          {"region_size", s.region_size}});
      }
      nlohmann::json regions = nlohmann::json::array();
      for (const auto& reg : r->regions) {
        regions.push_back(region_json(reg));
      }
      print_json({{"stores", stores}, {"regions", regions}, {"max_replicas", r->max_replicas}});
      return kExitOk;
    }
    std::cout << fmt::format("{} stores (max replicas {})\n", r->stores.size(), r->max_replicas);
    for (const auto& s : r->stores) {
      std::cout << fmt::format(
          "  store {:<4} {:<22} {:<9} regions {:<4} leaders {:<4} size {:.1f} MiB free {:.1f}/{:.1f} GiB\n", s.id,
          s.address, s.state, s.region_count, s.leader_count, static_cast<double>(s.region_size) / (1 << 20),
          static_cast<double>(s.available_bytes) / (1 << 30), static_cast<double>(s.capacity_bytes) / (1 << 30));
    }
    std::cout << fmt::format("{} regions\n", r->regions.size());
    for (const auto& reg : r->regions) {
      std::cout << "  " << region_line(reg) << "\n";
    }
    return kExitOk;
  }
  if (split->parsed()) {
    auto r = client.split(keys);
    if (!r.is_ok()) {
      return fail(r.status());
    }
    if (g.json) {
      nlohmann::json regions = nlohmann::json::array();
      for (const auto& reg : *r) {
        regions.push_back(region_json(reg));
      }
      print_json({{"op", "split"}, {"regions", regions}});
    } else {
      for (const auto& reg : *r) {
        std::cout << region_line(reg) << "\n";
      }
    }
    return kExitOk;
  }
  if (tso->parsed()) {
    auto r = client.get_tso(count);
    if (!r.is_ok()) {
      return fail(r.status());
    }
    if (g.json) {
      print_json({{"timestamp", *r},
                  {"count", count},
                  {"physical_ms", rdb::tso_physical_ms(*r)},
                  {"logical", rdb::tso_logical(*r)}});
    } else {
      std::cout << *r << "\n";
    }
    return kExitOk;
  }
  std::cerr << app.help();
  return kExitUsage;
}

}  // namespace

int main(int argc, char** argv) {
  return rdb::run_guarded("rdb-cli", run, argc, argv, kExitError);
}
