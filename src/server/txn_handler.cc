#include "server/txn_handler.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <set>

#include "common/limits.h"
#include "server/callback_wait.h"
#include "server/mvcc_reader.h"
#include "server/txn_applier.h"

namespace rdb {
namespace {

constexpr std::array<const char*, 14> kMethodNames = {
    "KvGet",         "KvBatchGet",           "KvScan",           "KvScanLock",        "KvPrewrite",
    "KvCommit",      "KvBatchRollback",      "KvCheckTxnStatus", "KvResolveLock",     "KvTxnHeartBeat",
    "KvScanChanges", "KvChangeFeedRegister", "KvChangeFeedPoll", "KvChangeFeedCancel"};

// A poll's answer: room for the changes and, with_prev, what they replaced.
constexpr std::size_t kFeedAnswerBytes = kMaxResponseBytes / 4;

grpc::Status to_grpc(const Status& s) {
  if (s.code() == StatusCode::kInvalidArgument) {
    return {grpc::StatusCode::INVALID_ARGUMENT, s.message()};
  }
  return {grpc::StatusCode::INTERNAL, s.to_string()};
}

Status need_ts(std::uint64_t ts, const char* what) {
  return ts == 0 ? Status::invalid_argument(fmt::format("{} is missing (0)", what)) : Status::ok();
}

Status validate_key_list(const google::protobuf::RepeatedPtrField<std::string>& keys) {
  if (keys.empty()) {
    return Status::invalid_argument("no keys given");
  }
  RDB_RETURN_IF_ERROR(validate_batch_size(static_cast<std::size_t>(keys.size())));
  std::set<std::string_view> seen;
  for (const auto& k : keys) {
    RDB_RETURN_IF_ERROR(validate_key(k));
    if (!seen.insert(k).second) {
      return Status::invalid_argument("a key is named twice");
    }
  }
  return Status::ok();
}

// The first refusal of a command, for responses that carry one.
template <typename Resp>
void first_error(const txnpb::TxnResult& r, Resp* resp) {
  if (r.errors_size() > 0) {
    *resp->mutable_error() = r.errors(0);
  }
}

}  // namespace

TxnHandler::TxnHandler(StorageEngine& engine, RaftStore& store, MetricsRegistry& metrics)
    : engine_(engine), store_(store) {
  for (int m = 0; m < kCount; ++m) {
    std::string labels = fmt::format("method=\"{}\"", kMethodNames[static_cast<std::size_t>(m)]);
    metrics_[static_cast<std::size_t>(m)] = {
        &metrics.counter("rdb_kv_requests_total", "KV requests received", labels),
        &metrics.counter("rdb_kv_errors_total", "KV requests that failed or were misrouted", labels),
        &metrics.histogram("rdb_kv_request_duration_seconds", "KV request handling time", labels)};
  }
}

template <typename Req, typename Resp, typename Read>
grpc::Status TxnHandler::read(Method m, const Req& req, Resp* resp,
                              std::vector<std::string> keys,  // NOLINT(performance-unnecessary-value-param)
                              const Status& input, const ReadFence& fence, Deadline deadline, Read&& read,
                              const std::shared_ptr<metapb::Region>& region) {
  RpcMetrics& rm = metrics_[static_cast<std::size_t>(m)];
  rm.requests->inc();
  ScopedTimer timer(*rm.latency);
  if (!input.is_ok()) {
    rm.errors->inc();
    return to_grpc(input);
  }
  if (fence.ts != 0 && fence.ts < concurrency_.gc_safe_point()) {
    rm.errors->inc();
    return {grpc::StatusCode::INVALID_ARGUMENT,
            fmt::format("the read's timestamp {} is below the GC safe point {}: the versions it would see may have "
                        "been collected (--gc-life-time on PD); start a new transaction",
                        fence.ts, concurrency_.gc_safe_point())};
  }
  if (fence.ts != 0) {
    // Before the read point: a 1PC commit either sees this timestamp in max_ts, or is
    // marked here and is waited out, so the read point below includes it.
    concurrency_.update_max_ts(fence.ts);
    auto live = [this](std::uint64_t region, std::uint64_t term) { return store_.leader_term(region) == term; };
    bool clear = fence.range ? concurrency_.wait_for_memory_locks_in_range(fence.start, fence.end, deadline, live)
                             : concurrency_.wait_for_memory_locks(fence.keys, deadline, live);
    if (!clear) {
      rm.errors->inc();
      std::string blocking = concurrency_.describe_blocking(fence.start, fence.end, fence.keys, live);
      spdlog::warn("{} at {}: a one-phase commit's memory lock on {} outlived the read's deadline",
                   kMethodNames[static_cast<std::size_t>(m)], fence.ts, blocking.empty() ? "(gone now)" : blocking);
      return {grpc::StatusCode::DEADLINE_EXCEEDED,
              "a one-phase commit on the keys read did not finish before the deadline (" + blocking + ")"};
    }
  }
  if (!store_.try_local_read(req.context(), keys, region.get())) {  // else: under the lease, on this thread
    using ReadPoint = std::optional<kvrpc::RegionError>;
    auto ready = await_callback<ReadPoint>(
        [&](ReadCallback&& cb) { store_.read_index(req.context(), std::move(keys), std::move(cb), region); }, deadline);
    if (!ready) {
      rm.errors->inc();
      spdlog::warn("{} in region {}: no linearizable read point before the deadline",
                   kMethodNames[static_cast<std::size_t>(m)], req.context().region_id());
      return {grpc::StatusCode::DEADLINE_EXCEEDED, "no linearizable read point before the deadline"};
    }
    if (auto& err = *ready) {
      rm.errors->inc();
      *resp->mutable_region_error() = std::move(*err);
      return grpc::Status::OK;
    }
  }
  EngineSource source(engine_);
  MvccReader reader(source);
  if (reads_ignore_locks_) {
    reader.ignore_locks_for_test();
  }
  if (Status s = read(reader); !s.is_ok()) {
    rm.errors->inc();
    spdlog::error("{} failed: {}", kMethodNames[static_cast<std::size_t>(m)], s.to_string());
    return to_grpc(s);
  }
  return grpc::Status::OK;
}

template <typename Req, typename Resp, typename Answer>
grpc::Status TxnHandler::write(Method m, const Req& req, Resp* resp, txnpb::TxnCommand cmd, const Status& input,
                               Deadline deadline, Answer&& answer, const Prepare& prepare) {
  RpcMetrics& rm = metrics_[static_cast<std::size_t>(m)];
  rm.requests->inc();
  ScopedTimer timer(*rm.latency);
  if (!input.is_ok()) {
    rm.errors->inc();
    return to_grpc(input);
  }
  std::vector<std::string> keys = TxnApplier::keys_of(cmd);
  auto latched = concurrency_.latch(keys, deadline);
  if (!latched) {
    rm.errors->inc();
    return {grpc::StatusCode::DEADLINE_EXCEEDED,
            "the keys stayed latched by other commands until the deadline; nothing was written"};
  }
  auto guard = std::make_shared<ConcurrencyManager::Guard>(std::move(*latched));
  kvrpc::Context ctx = req.context();
  if (prepare) {
    if (auto early = prepare(ctx, cmd, *guard)) {
      return *early;
    }
  }
  raft_serverpb::KvCommand kv;
  kv.set_type(raft_serverpb::KvCommand::TXN);
  for (const auto& k : keys) {
    kv.add_keys(k);
  }
  *kv.mutable_txn() = std::move(cmd);
  // Latches go when this handler does; a 1PC's memory locks stay until the command
  // applied or failed, even when this handler stops waiting (a read must not pass it).
  std::shared_ptr<ConcurrencyManager::Guard> hold_until_applied;
  if (guard->memory_locked()) {
    hold_until_applied = guard;
  }
  auto applied = await_callback<ProposeResult>(
      [&](ProposeCallback&& cb) {
        store_.propose(ctx, std::move(keys), std::move(kv),
                       [hold_until_applied, cb = std::move(cb)](ProposeResult r) mutable { cb(std::move(r)); });
      },
      deadline);
  if (!applied) {
    rm.errors->inc();
    return {grpc::StatusCode::DEADLINE_EXCEEDED,
            "the transactional write did not finish before the deadline; it may "
            "still apply"};
  }
  if (applied->undetermined) {
    rm.errors->inc();
    return {grpc::StatusCode::UNAVAILABLE, "the store stopped before the write's outcome was known"};
  }
  if (applied->region_error) {
    rm.errors->inc();
    *resp->mutable_region_error() = std::move(*applied->region_error);
    return grpc::Status::OK;
  }
  if (!applied->result.error().empty()) {
    rm.errors->inc();
    return {grpc::StatusCode::INVALID_ARGUMENT, applied->result.error()};
  }
  answer(applied->result.txn());
  return grpc::Status::OK;
}

grpc::Status TxnHandler::get(const kvrpc::KvGetRequest& req, kvrpc::KvGetResponse* resp, Deadline deadline) {
  Status input = validate_key(req.key());
  if (input.is_ok()) {
    input = need_ts(req.version(), "the read's timestamp (version)");
  }
  ReadFence fence{req.version(), false, {req.key()}, {}, {}};
  return read(kGet, req, resp, {req.key()}, input, fence, deadline, [&](MvccReader& reader) -> Status {
    RDB_ASSIGN_OR_RETURN(auto got, reader.get(req.key(), req.version()));
    if (got.locked) {
      *resp->mutable_error()->mutable_locked() = std::move(*got.locked);
    } else if (got.found) {
      resp->set_value(std::move(got.value));
      resp->set_commit_ts(got.commit_ts);
    } else {
      resp->set_not_found(true);
    }
    return Status::ok();
  });
}

grpc::Status TxnHandler::batch_get(const kvrpc::KvBatchGetRequest& req, kvrpc::KvBatchGetResponse* resp,
                                   Deadline deadline) {
  Status input = validate_key_list(req.keys());
  if (input.is_ok()) {
    input = need_ts(req.version(), "the read's timestamp (version)");
  }
  std::vector<std::string> keys(req.keys().begin(), req.keys().end());
  ReadFence fence{req.version(), false, keys, {}, {}};
  return read(kBatchGet, req, resp, keys, input, fence, deadline, [&](MvccReader& reader) -> Status {
    std::size_t bytes = 0;
    for (const auto& k : keys) {
      RDB_ASSIGN_OR_RETURN(auto got, reader.get(k, req.version()));
      if (got.locked) {
        resp->clear_pairs();
        *resp->mutable_error()->mutable_locked() = std::move(*got.locked);
        return Status::ok();
      }
      if (got.found) {
        bytes += k.size() + got.value.size();
        if (bytes > kMaxResponseBytes) {
          return Status::invalid_argument(fmt::format(
              "the values found exceed the response bound of {} bytes; ask for fewer keys", kMaxResponseBytes));
        }
        auto* kv = resp->add_pairs();
        kv->set_key(k);
        kv->set_value(std::move(got.value));
        kv->set_commit_ts(got.commit_ts);
      }
    }
    return Status::ok();
  });
}

namespace {

// A range read's part in this region: [start, min(end, region end)), and the region's end
// when it cut the range there (the client goes on from it in the next region).
std::pair<std::string, std::optional<std::string>> clip_to_region(const metapb::Region& region,
                                                                  const std::string& end) {
  if (!region.end_key().empty() && (end.empty() || region.end_key() < end)) {
    return {region.end_key(), region.end_key()};
  }
  return {end, std::nullopt};
}

}  // namespace

grpc::Status TxnHandler::scan(const kvrpc::KvScanRequest& req, kvrpc::KvScanResponse* resp, Deadline deadline) {
  Status input = validate_scan_limit(req.limit());
  if (input.is_ok()) {
    input = validate_range(req.start_key(), req.end_key(), false);
  }
  if (input.is_ok()) {
    input = need_ts(req.version(), "the read's timestamp (version)");
  }
  auto region = std::make_shared<metapb::Region>();
  ReadFence fence{req.version(), true, {}, req.start_key(), req.end_key()};
  return read(
      kScan, req, resp, {req.start_key()}, input, fence, deadline,
      [&](MvccReader& reader) -> Status {
        // This region's part of the range; the client goes on in the next.
        auto [end, boundary] = clip_to_region(*region, req.end_key());
        RDB_ASSIGN_OR_RETURN(
            auto got, reader.scan(req.start_key(), end, req.version(), req.limit(), req.key_only(), kMaxResponseBytes));
        if (got.locked) {
          *resp->mutable_error()->mutable_locked() = std::move(*got.locked);
          return Status::ok();
        }
        resp->set_truncated(got.truncated);
        if (boundary && got.pairs.size() < req.limit() && !got.truncated) {
          resp->set_region_boundary(true);
          resp->set_next_key(*boundary);
        }
        for (auto& p : got.pairs) {
          auto* kv = resp->add_kvs();
          kv->set_key(std::move(p.key));
          kv->set_value(std::move(p.value));
          kv->set_commit_ts(p.commit_ts);
        }
        return Status::ok();
      },
      region);
}

grpc::Status TxnHandler::scan_changes(const kvrpc::KvScanChangesRequest& req, kvrpc::KvScanChangesResponse* resp,
                                      Deadline deadline) {
  Status input = validate_scan_limit(req.limit());
  if (input.is_ok()) {
    input = validate_range(req.start_key(), req.end_key(), false);
  }
  if (input.is_ok()) {
    input = need_ts(req.version(), "the read's timestamp (version)");
  }
  if (input.is_ok() && req.from_version() >= req.version()) {
    input = Status::invalid_argument(
        fmt::format("changes after {} up to {}: an empty window", req.from_version(), req.version()));
  }
  auto region = std::make_shared<metapb::Region>();
  // Versions from from_version on must still be there: the window starts at the GC fence.
  ReadFence fence{std::max<std::uint64_t>(req.from_version(), 1), true, {}, req.start_key(), req.end_key()};
  if (req.version() > fence.ts) {
    concurrency_.update_max_ts(req.version());  // the read point is `version`, the fence its bottom
  }
  return read(
      kScanChanges, req, resp, {req.start_key()}, input, fence, deadline,
      [&](MvccReader& reader) -> Status {
        auto [end, boundary] = clip_to_region(*region, req.end_key());
        RDB_ASSIGN_OR_RETURN(auto got, reader.scan_changes(req.start_key(), end, req.from_version(), req.version(),
                                                           req.limit(), req.with_prev(), kMaxResponseBytes));
        if (got.locked) {
          *resp->mutable_error()->mutable_locked() = std::move(*got.locked);
          return Status::ok();
        }
        if (got.truncated) {
          resp->set_truncated(true);
          resp->set_next_key(std::move(got.next_key));
        } else if (boundary) {
          resp->set_region_boundary(true);
          resp->set_next_key(*boundary);
        }
        for (auto& c : got.changes) {
          auto* out = resp->add_changes();
          out->set_key(std::move(c.key));
          out->set_commit_ts(c.commit_ts);
          out->set_deleted(c.deleted);
          out->set_value(std::move(c.value));
          if (c.prev) {
            out->set_has_prev(true);
            out->set_prev_value(std::move(c.prev->value));
            out->set_prev_commit_ts(c.prev->commit_ts);
          }
        }
        return Status::ok();
      },
      region);
}

grpc::Status TxnHandler::register_feed(const kvrpc::KvChangeFeedRegisterRequest& req,
                                       kvrpc::KvChangeFeedRegisterResponse* resp, Deadline deadline) {
  Status input = validate_range(req.start_key(), req.end_key(), false);
  auto region = std::make_shared<metapb::Region>();
  grpc::Status refused = grpc::Status::OK;
  // Through a read point: this store leads the region now, at the epoch the client knows.
  grpc::Status s = read(
      kRegisterFeed, req, resp, {req.start_key()}, input, ReadFence{}, deadline,
      [&](MvccReader&) -> Status {
        auto [end, boundary] = clip_to_region(*region, req.end_key());
        auto id = store_.change_feeds().add(req.start_key(), end);
        if (!id.is_ok()) {
          refused = {grpc::StatusCode::RESOURCE_EXHAUSTED, id.status().message()};
          return Status::ok();
        }
        resp->set_feed_id(*id);
        resp->set_end_key(end);
        // Read after the feed is in place: every commit applied before it is at or below
        // this (a 1PC takes its timestamp from max_ts; others come from the TSO first).
        resp->set_max_ts(concurrency_.max_ts());
        return Status::ok();
      },
      region);
  return s.ok() ? refused : s;
}

grpc::Status TxnHandler::poll_feed(const kvrpc::KvChangeFeedPollRequest& req, kvrpc::KvChangeFeedPollResponse* resp,
                                   Deadline deadline) {
  Status input = need_ts(req.version(), "the poll's timestamp (version)");
  if (input.is_ok() && req.after() >= req.version()) {
    input =
        Status::invalid_argument(fmt::format("changes after {} up to {}: an empty window", req.after(), req.version()));
  }
  auto range = store_.change_feeds().range_of(req.feed_id());
  if (!range.is_ok()) {
    // Not here: "lost" only once this store is known to lead the region the client meant.
    // A client whose cache points at a follower (or an old epoch) is sent on instead, or it
    // would give up a feed that lives on on the leader.
    auto unknown = range.status();
    return read(
        kPollFeed, req, resp, {}, input, ReadFence{}, deadline,
        [&](MvccReader&) -> Status {
          resp->set_lost(unknown.message());
          return Status::ok();
        },
        nullptr);
  }
  // Named, not a structured binding: the lambda below captures them.
  const std::string& start = range->first;
  const std::string& end = range->second;
  auto region = std::make_shared<metapb::Region>();
  ReadFence fence{req.version(), true, {}, start, end};
  return read(
      kPollFeed, req, resp, {start}, input, fence, deadline,
      [&](MvccReader& reader) -> Status {
        if (clip_to_region(*region, end).second) {
          resp->set_lost(fmt::format("the feed's range reaches past region {} now", region->id()));
          return Status::ok();
        }
        // No lock at or below `version` left: every commit there was applied, so published.
        RDB_ASSIGN_OR_RETURN(auto locked, reader.blocking_lock(start, end, req.version()));
        if (locked) {
          *resp->mutable_error()->mutable_locked() = std::move(*locked);
          return Status::ok();
        }
        auto taken = store_.change_feeds().take(req.feed_id(), req.after(), req.version(), kFeedAnswerBytes);
        if (!taken.is_ok() || !taken->lost.empty()) {
          resp->set_lost(taken.is_ok() ? taken->lost : taken.status().message());
          return Status::ok();
        }
        resp->set_resolved_ts(taken->resolved_ts);
        for (auto& c : taken->changes) {
          auto* out = resp->add_changes();
          if (req.with_prev()) {
            RDB_ASSIGN_OR_RETURN(auto prev, reader.newest_version(c.key, c.commit_ts - 1, true));
            if (prev && prev->record.op() == txnpb::PUT) {
              out->set_has_prev(true);
              out->set_prev_value(std::move(*prev->record.mutable_value()));
              out->set_prev_commit_ts(prev->commit_ts);
            }
          }
          out->set_key(std::move(c.key));
          out->set_commit_ts(c.commit_ts);
          out->set_deleted(c.deleted);
          out->set_value(std::move(c.value));
        }
        return Status::ok();
      },
      region);
}

grpc::Status TxnHandler::cancel_feed(const kvrpc::KvChangeFeedCancelRequest& req,
                                     kvrpc::KvChangeFeedCancelResponse* /*resp*/) {
  metrics_[kCancelFeed].requests->inc();
  store_.change_feeds().remove(req.feed_id());
  return grpc::Status::OK;
}

grpc::Status TxnHandler::scan_lock(const kvrpc::KvScanLockRequest& req, kvrpc::KvScanLockResponse* resp,
                                   Deadline deadline) {
  Status input = validate_scan_limit(req.limit());
  if (input.is_ok()) {
    input = validate_range(req.start_key(), req.end_key(), false);
  }
  auto region = std::make_shared<metapb::Region>();
  return read(
      kScanLock, req, resp, {req.start_key()}, input, ReadFence{}, deadline,
      [&](MvccReader& reader) -> Status {
        const std::string end = clip_to_region(*region, req.end_key()).first;
        RDB_ASSIGN_OR_RETURN(auto locks, reader.scan_locks(req.start_key(), end, req.max_version(), req.limit()));
        for (auto& l : locks) {
          *resp->add_locks() = std::move(l);
        }
        return Status::ok();
      },
      region);
}

grpc::Status TxnHandler::prewrite(const kvrpc::KvPrewriteRequest& req, kvrpc::KvPrewriteResponse* resp,
                                  Deadline deadline) {
  txnpb::TxnCommand cmd;
  auto* p = cmd.mutable_prewrite();
  *p->mutable_mutations() = req.mutations();
  p->set_primary(req.primary_lock());
  p->set_start_ts(req.start_version());
  p->set_ttl_ms(req.lock_ttl());
  p->set_txn_size(req.txn_size());
  Status input = need_ts(req.start_version(), "the start timestamp (start_version)");
  if (input.is_ok() && req.mutations().empty()) {
    input = Status::invalid_argument("prewrite needs at least one mutation");
  }
  if (input.is_ok()) {
    input = validate_key(req.primary_lock(), "primary key");
  }
  if (input.is_ok()) {
    input = validate_batch_size(static_cast<std::size_t>(req.mutations_size()));
  }
  std::size_t bytes = 0;
  for (int i = 0; input.is_ok() && i < req.mutations_size(); ++i) {
    input = validate_key(req.mutations(i).key());
    if (input.is_ok()) {
      input = validate_value(req.mutations(i).value());
    }
    bytes += req.mutations(i).key().size() + req.mutations(i).value().size();
  }
  if (input.is_ok()) {
    input = validate_write_bytes(bytes);
  }
  std::uint64_t one_pc = 0;
  auto prepare = [&](kvrpc::Context& ctx, txnpb::TxnCommand& c,
                     ConcurrencyManager::Guard& guard) -> std::optional<grpc::Status> {
    // Latched, so every earlier command on these keys applied here (or gave up): a
    // lock of another transaction dooms this prewrite without a Raft round.
    EngineSource source(engine_);
    MvccReader reader(source);
    for (const auto& mu : req.mutations()) {
      auto lock = reader.lock(mu.key());
      if (lock.is_ok() && *lock && (*lock)->start_ts() != req.start_version()) {
        // Unless this is a retry of a prewrite that already committed there (1PC).
        auto mine = reader.version_of_txn(mu.key(), req.start_version());
        if (!mine.is_ok() || *mine) {
          resp->clear_errors();
          return std::nullopt;  // the applier decides
        }
        *resp->add_errors()->mutable_locked() = MvccReader::lock_info(mu.key(), **lock);
      }
    }
    if (resp->errors_size() > 0) {
      return grpc::Status::OK;
    }
    std::uint64_t term = 0;
    if (req.try_one_pc() && req.max_commit_ts() > req.start_version()) {
      if (auto ts = one_pc_commit_ts(ctx, req.start_version(), req.max_commit_ts(), guard, &term)) {
        one_pc = *ts;
        c.mutable_prewrite()->set_one_pc_commit_ts(one_pc);
        ctx.set_term(term);
      }
    }
    return std::nullopt;
  };
  return write(
      kPrewrite, req, resp, std::move(cmd), input, deadline,
      [resp, &one_pc](const txnpb::TxnResult& r) {
        *resp->mutable_errors() = r.errors();
        // A retry of a 1PC that committed (found committed, in either mode) reports that commit.
        if (r.errors_size() == 0 && (one_pc != 0 || r.commit_ts() != 0)) {
          resp->set_one_pc_commit_ts(r.commit_ts() != 0 ? r.commit_ts() : one_pc);
        }
      },
      prepare);
}

std::optional<std::uint64_t> TxnHandler::one_pc_commit_ts(const kvrpc::Context& ctx, std::uint64_t start_ts,
                                                          std::uint64_t max_commit_ts, ConcurrencyManager::Guard& guard,
                                                          std::uint64_t* term) {
  auto led = store_.leader_term(ctx.region_id());
  if (!led) {
    return std::nullopt;  // the proposal will say who leads
  }
  const std::uint64_t version = ctx.region_epoch().version();
  if (!concurrency_.synced(ctx.region_id(), *led, version)) {
    // Reads an earlier leader served are not in max_ts: a timestamp fetched now, in this
    // term, is above all of them.
    TimestampSource source;
    {
      std::lock_guard lock(timestamp_mu_);
      source = timestamp_source_;
    }
    if (!source) {
      return std::nullopt;
    }
    auto fresh = source();
    if (!fresh.is_ok()) {
      spdlog::warn("1PC off for region {}: no timestamp to sync max_ts ({})", ctx.region_id(),
                   fresh.status().to_string());
      return std::nullopt;
    }
    concurrency_.update_max_ts(*fresh);
    concurrency_.mark_synced(ctx.region_id(), *led, version);
  }
  // Marked before max_ts is read: a read either waits for this commit or is below it.
  guard.mark_memory_locks(ctx.region_id(), *led);
  auto commit_ts = concurrency_.next_commit_ts(start_ts, max_commit_ts);
  if (!commit_ts) {
    // A read was served above the client's present: committing above it would put
    // this commit in the future of transactions that start after it returns.
    return std::nullopt;  // the marks go with the latches, once the plain prewrite applied
  }
  *term = *led;
  return commit_ts;
}

grpc::Status TxnHandler::commit(const kvrpc::KvCommitRequest& req, kvrpc::KvCommitResponse* resp, Deadline deadline) {
  txnpb::TxnCommand cmd;
  *cmd.mutable_commit()->mutable_keys() = req.keys();
  cmd.mutable_commit()->set_start_ts(req.start_version());
  cmd.mutable_commit()->set_commit_ts(req.commit_version());
  Status input = validate_key_list(req.keys());
  if (input.is_ok() && (req.start_version() == 0 || req.commit_version() <= req.start_version())) {
    input = Status::invalid_argument(fmt::format("commit_version {} must be above start_version {} (and that above 0)",
                                                 req.commit_version(), req.start_version()));
  }
  return write(kCommit, req, resp, std::move(cmd), input, deadline,
               [resp](const txnpb::TxnResult& r) { first_error(r, resp); });
}

grpc::Status TxnHandler::batch_rollback(const kvrpc::KvBatchRollbackRequest& req, kvrpc::KvBatchRollbackResponse* resp,
                                        Deadline deadline) {
  txnpb::TxnCommand cmd;
  *cmd.mutable_rollback()->mutable_keys() = req.keys();
  cmd.mutable_rollback()->set_start_ts(req.start_version());
  Status input = validate_key_list(req.keys());
  if (input.is_ok()) {
    input = need_ts(req.start_version(), "the start timestamp (start_version)");
  }
  return write(kRollback, req, resp, std::move(cmd), input, deadline,
               [resp](const txnpb::TxnResult& r) { first_error(r, resp); });
}

grpc::Status TxnHandler::check_txn_status(const kvrpc::KvCheckTxnStatusRequest& req,
                                          kvrpc::KvCheckTxnStatusResponse* resp, Deadline deadline) {
  txnpb::TxnCommand cmd;
  auto* c = cmd.mutable_check_status();
  c->set_primary(req.primary_key());
  c->set_lock_ts(req.lock_ts());
  c->set_current_ts(req.current_ts());
  c->set_rollback_if_not_exist(req.rollback_if_not_exist());
  Status input = validate_key(req.primary_key(), "primary key");
  if (input.is_ok()) {
    input = need_ts(req.lock_ts(), "the transaction's start timestamp (lock_ts)");
  }
  if (input.is_ok()) {
    input = need_ts(req.current_ts(), "the current timestamp (current_ts)");
  }
  return write(kCheck, req, resp, std::move(cmd), input, deadline, [resp](const txnpb::TxnResult& r) {
    first_error(r, resp);
    resp->set_lock_ttl(r.lock_ttl());
    resp->set_commit_version(r.commit_ts());
    resp->set_action(r.action());
  });
}

grpc::Status TxnHandler::resolve_lock(const kvrpc::KvResolveLockRequest& req, kvrpc::KvResolveLockResponse* resp,
                                      Deadline deadline) {
  txnpb::TxnCommand cmd;
  *cmd.mutable_resolve()->mutable_keys() = req.keys();
  cmd.mutable_resolve()->set_start_ts(req.start_version());
  cmd.mutable_resolve()->set_commit_ts(req.commit_version());
  Status input = validate_key_list(req.keys());
  if (input.is_ok() &&
      (req.start_version() == 0 || (req.commit_version() != 0 && req.commit_version() <= req.start_version()))) {
    input = Status::invalid_argument(fmt::format("resolving transaction {}: commit_version {} is not above it",
                                                 req.start_version(), req.commit_version()));
  }
  return write(kResolve, req, resp, std::move(cmd), input, deadline,
               [resp](const txnpb::TxnResult& r) { first_error(r, resp); });
}

grpc::Status TxnHandler::heart_beat(const kvrpc::KvTxnHeartBeatRequest& req, kvrpc::KvTxnHeartBeatResponse* resp,
                                    Deadline deadline) {
  txnpb::TxnCommand cmd;
  cmd.mutable_heart_beat()->set_primary(req.primary_lock());
  cmd.mutable_heart_beat()->set_start_ts(req.start_version());
  cmd.mutable_heart_beat()->set_advise_ttl_ms(req.advise_lock_ttl());
  Status input = validate_key(req.primary_lock(), "primary key");
  if (input.is_ok()) {
    input = need_ts(req.start_version(), "the start timestamp (start_version)");
  }
  return write(kHeartBeat, req, resp, std::move(cmd), input, deadline, [resp](const txnpb::TxnResult& r) {
    first_error(r, resp);
    resp->set_lock_ttl(r.lock_ttl());
  });
}

}  // namespace rdb
