#include "server/gc_worker.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/parse.h"
#include "server/callback_wait.h"
#include "storage/mvcc_codec.h"
#include "txnpb.pb.h"

namespace rdb {
namespace {

constexpr const char* kSafePointKey = "txn_gc_safe_point";
constexpr std::size_t kScanChunk = 1024;
constexpr std::size_t kKeysPerCommand = 256;

}  // namespace

GcWorker::GcWorker(StorageEngine& engine, RaftStore& store, ConcurrencyManager& concurrency,
                   std::chrono::milliseconds interval, MetricsRegistry& metrics)
    : engine_(engine),
      store_(store),
      concurrency_(concurrency),
      interval_(interval),
      versions_removed_(metrics.counter("rdb_txn_gc_versions_removed_total",
                                        "transactional versions removed below the GC safe point")) {
  auto stored = engine_.meta_get(kSafePointKey);
  if (stored.is_ok() && *stored) {
    if (auto sp = parse_u64(**stored, "the persisted GC safe point"); sp.is_ok()) {
      concurrency_.update_gc_safe_point(*sp);
    }
  }
}

GcWorker::~GcWorker() {
  stop();
}

void GcWorker::start() {
  thread_ = std::thread([this] { run(); });
}

void GcWorker::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
}

Status GcWorker::learn_safe_point(std::uint64_t safe_point) {
  std::lock_guard lock(learn_mu_);
  if (safe_point <= concurrency_.gc_safe_point()) {
    return Status::ok();
  }
  // Durable before any read is refused or any version removed by it.
  RDB_RETURN_IF_ERROR(engine_.meta_put(kSafePointKey, std::to_string(safe_point)));
  concurrency_.update_gc_safe_point(safe_point);
  return Status::ok();
}

void GcWorker::run() {
  std::unique_lock lock(mu_);
  while (!cv_.wait_for(lock, interval_, [this] { return stopping_; })) {
    lock.unlock();
    run_once();
    lock.lock();
  }
}

void GcWorker::run_once() {
  const std::uint64_t safe_point = concurrency_.gc_safe_point();
  if (safe_point == 0) {
    return;
  }
  for (const auto& region : store_.regions()) {
    if (!region.is_leader) {
      continue;
    }
    const auto pass = std::make_pair(safe_point, region.region.region_epoch().version());
    if (done_[region.region.id()] == pass) {
      continue;
    }
    if (collect(region, safe_point)) {
      done_[region.region.id()] = pass;
    }
    std::lock_guard lock(mu_);
    if (stopping_) {
      return;
    }
  }
}

bool GcWorker::collect(const RegionStatus& region, std::uint64_t safe_point) {
  auto [from, end] = mvcc::family_range(ColumnFamily::kTxnWrite, region.region.start_key(), region.region.end_key());
  std::vector<std::string> doomed;
  std::string key;    // the user key whose versions are being walked
  bool kept = false;  // its newest version at or below the safe point was seen
  for (;;) {
    auto chunk = engine_.scan_cf(ColumnFamily::kTxnWrite, from, end, kScanChunk);
    if (!chunk.is_ok()) {
      spdlog::warn("GC of region {}: scan failed: {}", region.region.id(), chunk.status().to_string());
      return false;
    }
    for (const auto& kv : *chunk) {
      auto wk = mvcc::parse_write_key(kv.key);
      txnpb::WriteRecord w;
      if (!wk.is_ok() || !w.ParseFromString(kv.value)) {
        continue;  // not ours to judge
      }
      if (wk->user_key != key) {
        key = wk->user_key;
        kept = false;
      }
      if (wk->commit_ts > safe_point) {
        continue;  // still visible to reads allowed now
      }
      if (kept) {
        doomed.push_back(kv.key);  // hidden by a newer version at or below the safe point
      } else if (w.op() == txnpb::PUT) {
        kept = true;  // what a read at the safe point sees
      } else {
        // A delete at or below the safe point: reads there see nothing, so it and all
        // older go. Rollback / lock-only records carry no data.
        kept = w.op() == txnpb::DEL;
        doomed.push_back(kv.key);
      }
      if (doomed.size() >= kKeysPerCommand && !propose(region, safe_point, doomed)) {
        return false;
      }
    }
    if (chunk->size() < kScanChunk) {
      break;
    }
    from = chunk->back().key + '\0';
  }
  return doomed.empty() || propose(region, safe_point, doomed);
}

bool GcWorker::propose(const RegionStatus& region, std::uint64_t safe_point, std::vector<std::string>& write_keys) {
  txnpb::TxnCommand cmd;
  cmd.mutable_gc()->set_safe_point(safe_point);
  for (auto& k : write_keys) {
    cmd.mutable_gc()->add_write_keys(std::move(k));
  }
  const auto count = write_keys.size();
  write_keys.clear();
  raft_serverpb::KvCommand kv;
  kv.set_type(raft_serverpb::KvCommand::TXN);
  std::vector<std::string> keys;
  for (const auto& wk : cmd.gc().write_keys()) {
    auto parsed = mvcc::parse_write_key(wk);
    if (parsed.is_ok()) {
      kv.add_keys(parsed->user_key);
      keys.push_back(std::move(parsed->user_key));
    }
  }
  *kv.mutable_txn() = std::move(cmd);
  kvrpc::Context ctx;
  ctx.set_region_id(region.region.id());
  *ctx.mutable_region_epoch() = region.region.region_epoch();
  *ctx.mutable_peer() = region.self;
  auto applied = await_callback<ProposeResult>(
      [&](ProposeCallback&& cb) { store_.propose(ctx, std::move(keys), std::move(kv), std::move(cb)); },
      std::chrono::system_clock::now() + std::chrono::seconds(10));
  if (!applied || applied->undetermined || applied->region_error || !applied->result.error().empty()) {
    spdlog::debug("GC of region {} stopped: {}", region.region.id(),
                  !applied                           ? "no answer"
                  : applied->region_error            ? applied->region_error->message()
                  : !applied->result.error().empty() ? applied->result.error()
                                                     : "undetermined");
    return false;
  }
  versions_removed_.inc(count);
  return true;
}

}  // namespace rdb
