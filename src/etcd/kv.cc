#include "etcd/kv.h"

#include <fmt/format.h>

#include <set>

#include "common/limits.h"

namespace rdb::etcd {
namespace {

using etcdserverpb::Compare;
using etcdserverpb::DeleteRangeRequest;
using etcdserverpb::DeleteRangeResponse;
using etcdserverpb::KeyValue;
using etcdserverpb::PutRequest;
using etcdserverpb::PutResponse;
using etcdserverpb::RangeRequest;
using etcdserverpb::RangeResponse;
using etcdserverpb::TxnRequest;
using etcdserverpb::TxnResponse;

constexpr std::uint32_t kPage = 1000;  // keys read per scan while walking a range

template <typename T>
int three_way(const T& a, const T& b) {
  return a < b ? -1 : (b < a ? 1 : 0);
}

bool holds(Compare::CompareResult result, int cmp) {
  switch (result) {
    case Compare::EQUAL:
      return cmp == 0;
    case Compare::NOT_EQUAL:
      return cmp != 0;
    case Compare::GREATER:
      return cmp > 0;
    case Compare::LESS:
      return cmp < 0;
    default:
      return false;
  }
}

bool compare_kv(const Compare& c, const KeyValue& kv) {
  switch (c.target()) {
    case Compare::VALUE:
      return holds(c.result(), three_way(kv.value(), c.value()));
    case Compare::VERSION:
      return holds(c.result(), three_way(kv.version(), c.version()));
    case Compare::CREATE:
      return holds(c.result(), three_way(kv.create_revision(), c.create_revision()));
    case Compare::MOD:
      return holds(c.result(), three_way(kv.mod_revision(), c.mod_revision()));
    case Compare::LEASE:
      return holds(c.result(), three_way(kv.lease(), c.lease()));
    default:
      return false;
  }
}

// The sort of a Range answer: by `target`, ascending, ties in key order.
bool less_by(RangeRequest::SortTarget target, const KeyValue& a, const KeyValue& b) {
  switch (target) {
    case RangeRequest::VERSION:
      return a.version() < b.version();
    case RangeRequest::CREATE:
      return a.create_revision() < b.create_revision();
    case RangeRequest::MOD:
      return a.mod_revision() < b.mod_revision();
    case RangeRequest::VALUE:
      return a.value() < b.value();
    default:
      return a.key() < b.key();
  }
}

void settle(KeyValue* kv, std::int64_t commit_ts) {
  if (kv->mod_revision() == 0) {
    kv->set_mod_revision(commit_ts);
  }
  if (kv->create_revision() == 0) {
    kv->set_create_revision(commit_ts);
  }
}

void settle_header(etcdserverpb::ResponseHeader* h, std::int64_t revision) {
  h->set_revision(revision);
}

}  // namespace

grpc::Status to_grpc(const Status& s) {
  // Not a switch: the server-only codes are values outside the public enumerators.
  const StatusCode code = s.code();
  if (code == StatusCode::kOk) {
    return grpc::Status::OK;
  }
  if (code == StatusCode::kInvalidArgument) {
    return {grpc::StatusCode::INVALID_ARGUMENT, s.message()};
  }
  if (code == ServerCode::kNotFound) {
    return {grpc::StatusCode::NOT_FOUND, s.message()};
  }
  if (code == StatusCode::kUnavailable || code == ServerCode::kBusy) {
    return {grpc::StatusCode::UNAVAILABLE, s.message()};
  }
  if (code == StatusCode::kDeadlineExceeded) {
    return {grpc::StatusCode::DEADLINE_EXCEEDED, s.message()};
  }
  if (code == StatusCode::kAborted) {
    return {grpc::StatusCode::ABORTED, "rdb-etcd: the write kept conflicting with others: " + s.message()};
  }
  if (code == StatusCode::kUndetermined) {
    return {grpc::StatusCode::UNKNOWN,
            "rdb-etcd: the write's outcome is unknown (it may have applied): " + s.message()};
  }
  return {grpc::StatusCode::INTERNAL, s.to_string()};
}

etcdserverpb::KeyValue to_key_value(const Current& cur, bool keys_only) {
  KeyValue kv;
  kv.set_key(cur.key);
  kv.set_mod_revision(cur.mod_revision);
  kv.set_create_revision(cur.record.create_revision() != 0 ? cur.record.create_revision() : cur.mod_revision);
  kv.set_version(cur.record.version());
  kv.set_lease(cur.record.lease());
  if (!keys_only) {
    kv.set_value(cur.record.value());
  }
  return kv;
}

void settle_revisions(RangeResponse* r, std::int64_t commit_ts) {
  settle_header(r->mutable_header(), commit_ts);
  for (auto& kv : *r->mutable_kvs()) {
    settle(&kv, commit_ts);
  }
}

void settle_revisions(PutResponse* r, std::int64_t commit_ts) {
  settle_header(r->mutable_header(), commit_ts);
  if (r->has_prev_kv()) {
    settle(r->mutable_prev_kv(), commit_ts);
  }
}

void settle_revisions(DeleteRangeResponse* r, std::int64_t commit_ts) {
  settle_header(r->mutable_header(), commit_ts);
  for (auto& kv : *r->mutable_prev_kvs()) {
    settle(&kv, commit_ts);
  }
}

void settle_revisions(TxnResponse* r, std::int64_t commit_ts) {
  settle_header(r->mutable_header(), commit_ts);
  for (auto& op : *r->mutable_responses()) {
    if (op.has_response_range()) {
      settle_revisions(op.mutable_response_range(), commit_ts);
    } else if (op.has_response_put()) {
      settle_revisions(op.mutable_response_put(), commit_ts);
    } else if (op.has_response_delete_range()) {
      settle_revisions(op.mutable_response_delete_range(), commit_ts);
    } else if (op.has_response_txn()) {
      settle_revisions(op.mutable_response_txn(), commit_ts);
    }
  }
}

EtcdKv::EtcdKv(RdbClient& client, const KeyLayout& layout, KvOptions options)
    : client_(client), layout_(layout), options_(options) {}

void EtcdKv::fill_header(etcdserverpb::ResponseHeader* h, std::int64_t revision) const {
  h->set_cluster_id(options_.cluster_id);
  h->set_member_id(member_id_);
  h->set_revision(revision);
  h->set_raft_term(1);
}

grpc::Status EtcdKv::check_key(const std::string& key) const {
  if (key.empty()) {
    return err_empty_key();
  }
  if (key.size() > layout_.max_key_size()) {
    return {grpc::StatusCode::INVALID_ARGUMENT,
            fmt::format("rdb-etcd: a key of {} bytes; the gateway takes keys of at most {} bytes", key.size(),
                        layout_.max_key_size())};
  }
  return grpc::Status::OK;
}

Result<std::optional<Current>> EtcdKv::read_key(Transaction& t, const std::string& etcd_key) {
  RDB_ASSIGN_OR_RETURN(auto got, t.get_versioned(layout_.data_key(etcd_key)));
  if (!got) {
    return std::optional<Current>();
  }
  Current cur;
  cur.key = etcd_key;
  if (!cur.record.ParseFromString(got->value)) {
    return ServerStatus::corruption(fmt::format("the record of etcd key '{}' does not parse", etcd_key));
  }
  cur.mod_revision = static_cast<std::int64_t>(got->commit_ts);
  return std::optional<Current>(std::move(cur));
}

Status EtcdKv::read_range(Transaction& t, const EtcdRange& r, const std::function<bool(Current&)>& visit) {
  if (r.single()) {
    RDB_ASSIGN_OR_RETURN(auto cur, read_key(t, r.key));
    if (cur) {
      visit(*cur);
    }
    return Status::ok();
  }
  auto [start, end] = layout_.data_range(r);
  if (!end.empty() && start >= end) {
    return Status::ok();  // an empty range (etcd answers nothing for range_end <= key)
  }
  for (;;) {
    RDB_ASSIGN_OR_RETURN(auto page, t.scan_versioned(start, end, kPage));
    for (auto& v : page) {
      Current cur;
      cur.key = layout_.etcd_key(v.key);
      if (!cur.record.ParseFromString(v.value)) {
        return ServerStatus::corruption(fmt::format("the record of etcd key '{}' does not parse", cur.key));
      }
      cur.mod_revision = static_cast<std::int64_t>(v.commit_ts);
      if (!visit(cur)) {
        return Status::ok();
      }
    }
    if (page.size() < kPage) {
      return Status::ok();
    }
    start = page.back().key + '\0';
  }
}

grpc::Status EtcdKv::range_in(Transaction& t, const RangeRequest& req, RangeResponse* resp) {
  if (grpc::Status s = check_key(req.key()); !s.ok()) {
    return s;
  }
  const bool filtered = req.min_mod_revision() != 0 || req.max_mod_revision() != 0 || req.min_create_revision() != 0 ||
                        req.max_create_revision() != 0;
  // As etcd: with a sort or a filter every key is fetched; otherwise limit + 1 (for `more`).
  std::int64_t fetch = 0;
  if (req.sort_order() == RangeRequest::NONE && !filtered && req.limit() > 0) {
    fetch = req.limit() + 1;
  }
  std::vector<KeyValue> kvs;
  std::int64_t count = 0;
  std::size_t bytes = 0;
  bool too_large = false;
  Status read = read_range(t, {req.key(), req.range_end()}, [&](Current& cur) {
    ++count;
    if (req.count_only() || (fetch > 0 && static_cast<std::int64_t>(kvs.size()) >= fetch)) {
      return true;  // counted only
    }
    KeyValue kv = to_key_value(cur, req.keys_only());
    if ((req.min_mod_revision() != 0 && kv.mod_revision() < req.min_mod_revision()) ||
        (req.max_mod_revision() != 0 && kv.mod_revision() > req.max_mod_revision()) ||
        (req.min_create_revision() != 0 && kv.create_revision() < req.min_create_revision()) ||
        (req.max_create_revision() != 0 && kv.create_revision() > req.max_create_revision())) {
      return true;
    }
    bytes += kv.key().size() + kv.value().size();
    if (bytes > options_.max_range_bytes) {
      too_large = true;
      return false;
    }
    kvs.push_back(std::move(kv));
    return true;
  });
  if (!read.is_ok()) {
    return to_grpc(read);
  }
  if (too_large) {
    return {grpc::StatusCode::RESOURCE_EXHAUSTED,
            fmt::format("rdb-etcd: the range's answer exceeds {} bytes (--max-range-bytes); ask for less with a "
                        "limit or a narrower range",
                        options_.max_range_bytes)};
  }
  auto order = req.sort_order();
  if (req.sort_target() != RangeRequest::KEY && order == RangeRequest::NONE) {
    order = RangeRequest::ASCEND;
  }
  if (order == RangeRequest::ASCEND) {
    std::stable_sort(kvs.begin(), kvs.end(),
                     [&](const KeyValue& a, const KeyValue& b) { return less_by(req.sort_target(), a, b); });
  } else if (order == RangeRequest::DESCEND) {
    std::stable_sort(kvs.begin(), kvs.end(),
                     [&](const KeyValue& a, const KeyValue& b) { return less_by(req.sort_target(), b, a); });
  }
  if (req.limit() > 0 && static_cast<std::int64_t>(kvs.size()) > req.limit()) {
    kvs.resize(static_cast<std::size_t>(req.limit()));
    resp->set_more(true);
  }
  for (auto& kv : kvs) {
    *resp->add_kvs() = std::move(kv);
  }
  resp->set_count(count);
  return grpc::Status::OK;
}

grpc::Status EtcdKv::erase_in(Transaction& t, const Current& cur) {
  if (Status s = t.erase(layout_.data_key(cur.key)); !s.is_ok()) {
    return to_grpc(s);
  }
  if (cur.record.lease() != 0) {
    if (Status s = t.erase(layout_.attached_key(cur.record.lease(), cur.key)); !s.is_ok()) {
      return to_grpc(s);
    }
  }
  return grpc::Status::OK;
}

grpc::Status EtcdKv::put_in(Transaction& t, const PutRequest& req, PutResponse* resp) {
  if (grpc::Status s = check_key(req.key()); !s.ok()) {
    return s;
  }
  if (req.ignore_value() && !req.value().empty()) {
    return err_value_provided();
  }
  if (req.ignore_lease() && req.lease() != 0) {
    return err_lease_provided();
  }
  auto cur = read_key(t, req.key());
  if (!cur.is_ok()) {
    return to_grpc(cur.status());
  }
  if ((req.ignore_value() || req.ignore_lease()) && !*cur) {
    return err_key_not_found();
  }
  etcdgw::KeyRecord rec;
  rec.set_value(req.ignore_value() ? (*cur)->record.value() : req.value());
  rec.set_lease(req.ignore_lease() ? (*cur)->record.lease() : req.lease());
  if (*cur) {
    const Current& c = **cur;
    rec.set_version(c.record.version() + 1);
    // A key created by this very transaction keeps 0: its commit timestamp, settled later.
    rec.set_create_revision(c.record.create_revision() != 0 ? c.record.create_revision() : c.mod_revision);
  } else {
    rec.set_version(1);
  }
  const std::int64_t old_lease = *cur ? (*cur)->record.lease() : 0;
  if (rec.lease() != 0 && rec.lease() != old_lease) {
    // The lease must exist when this commits: reading and locking its record makes a
    // concurrent revoke (which deletes it) and this attach conflict.
    auto lease = t.get(layout_.lease_key(rec.lease()));
    if (!lease.is_ok()) {
      return to_grpc(lease.status());
    }
    etcdgw::LeaseRecord lease_rec;
    if (!*lease || !lease_rec.ParseFromString(**lease) || lease_rec.expires_ms() <= tso_physical_ms(t.start_ts())) {
      return err_lease_not_found();  // never granted, revoked, or expired (its revoke may be pending)
    }
    if (Status s = t.lock(layout_.lease_key(rec.lease())); !s.is_ok()) {
      return to_grpc(s);
    }
  }
  if (old_lease != 0 && old_lease != rec.lease()) {
    if (Status s = t.erase(layout_.attached_key(old_lease, req.key())); !s.is_ok()) {
      return to_grpc(s);
    }
  }
  if (rec.lease() != 0 && rec.lease() != old_lease) {
    if (Status s = t.put(layout_.attached_key(rec.lease(), req.key()), ""); !s.is_ok()) {
      return to_grpc(s);
    }
  }
  std::string bytes = rec.SerializeAsString();
  if (bytes.size() > kMaxValueSize) {
    return err_request_too_large();
  }
  if (Status s = t.put(layout_.data_key(req.key()), bytes); !s.is_ok()) {
    return to_grpc(s);
  }
  if (req.prev_kv() && *cur) {
    *resp->mutable_prev_kv() = to_key_value(**cur);
  }
  return grpc::Status::OK;
}

grpc::Status EtcdKv::delete_in(Transaction& t, const DeleteRangeRequest& req, DeleteRangeResponse* resp) {
  if (grpc::Status s = check_key(req.key()); !s.ok()) {
    return s;
  }
  // One revision: every key in one transaction, so the range is held here. Bounded by
  // the transaction's key limit and, for what is kept of each key, --max-range-bytes.
  std::vector<Current> doomed;
  std::size_t bytes = 0;
  Status read = read_range(t, {req.key(), req.range_end()}, [&](Current& cur) {
    bytes += cur.key.size() + (req.prev_kv() ? cur.record.value().size() : 0);
    if (!req.prev_kv()) {
      cur.record.clear_value();  // only the key and its lease are needed to delete it
    }
    doomed.push_back(std::move(cur));
    return doomed.size() <= kMaxTxnKeys && bytes <= options_.max_range_bytes;
  });
  if (!read.is_ok()) {
    return to_grpc(read);
  }
  if (doomed.size() > kMaxTxnKeys || bytes > options_.max_range_bytes) {
    return {
        grpc::StatusCode::INVALID_ARGUMENT,
        fmt::format("rdb-etcd: a delete of more than {} keys (or, with what it returns, more than --max-range-bytes "
                    "{}) in one revision is not supported; delete the range in parts",
                    kMaxTxnKeys, options_.max_range_bytes)};
  }
  for (const auto& cur : doomed) {
    if (grpc::Status s = erase_in(t, cur); !s.ok()) {
      return s;
    }
    if (req.prev_kv()) {
      *resp->add_prev_kvs() = to_key_value(cur);
    }
  }
  resp->set_deleted(static_cast<std::int64_t>(doomed.size()));
  return grpc::Status::OK;
}

Result<bool> EtcdKv::compare(Transaction& t, const Compare& c) {
  std::vector<KeyValue> kvs;
  EtcdRange r{c.key(), c.range_end()};
  RDB_RETURN_IF_ERROR(read_range(t, r, [&](Current& cur) {
    kvs.push_back(to_key_value(cur));
    return kvs.size() <= kMaxBatchKeys;
  }));
  if (kvs.size() > kMaxBatchKeys) {
    return Status::invalid_argument(
        fmt::format("rdb-etcd: a compare over more than {} keys is not supported", kMaxBatchKeys));
  }
  // What the compare read must still hold when the transaction commits: lock it.
  if (r.single()) {
    RDB_RETURN_IF_ERROR(t.lock(layout_.data_key(c.key())));
  }
  for (const auto& kv : kvs) {
    RDB_RETURN_IF_ERROR(t.lock(layout_.data_key(kv.key())));
  }
  if (kvs.empty()) {
    // As etcd: a missing key has version, revisions and lease 0, and no value to compare.
    return c.target() != Compare::VALUE && compare_kv(c, KeyValue());
  }
  for (const auto& kv : kvs) {
    if (!compare_kv(c, kv)) {
      return false;
    }
  }
  return true;
}

grpc::Status EtcdKv::check_txn(const TxnRequest& req, std::size_t depth) const {
  if (static_cast<std::size_t>(req.compare_size()) > options_.max_txn_ops ||
      static_cast<std::size_t>(req.success_size()) > options_.max_txn_ops ||
      static_cast<std::size_t>(req.failure_size()) > options_.max_txn_ops) {
    return err_too_many_ops();
  }
  if (depth > 16) {
    return {grpc::StatusCode::INVALID_ARGUMENT, "rdb-etcd: transactions nest at most 16 deep"};
  }
  // As etcd: within one branch a key is put at most once, and never both put and deleted.
  for (const auto* ops : {&req.success(), &req.failure()}) {
    std::set<std::string> puts;
    std::vector<EtcdRange> deletes;
    for (const auto& op : *ops) {
      if (op.has_request_put()) {
        if (!puts.insert(op.request_put().key()).second) {
          return err_duplicate_key();
        }
      } else if (op.has_request_delete_range()) {
        deletes.push_back({op.request_delete_range().key(), op.request_delete_range().range_end()});
      } else if (op.has_request_txn()) {
        if (grpc::Status s = check_txn(op.request_txn(), depth + 1); !s.ok()) {
          return s;
        }
      }
    }
    for (const auto& key : puts) {
      for (const auto& d : deletes) {
        if (KeyLayout::contains(d, key)) {
          return err_duplicate_key();
        }
      }
    }
  }
  return grpc::Status::OK;
}

grpc::Status EtcdKv::txn_in(Transaction& t, const TxnRequest& req, TxnResponse* resp) {
  bool succeeded = true;
  for (const auto& c : req.compare()) {
    if (grpc::Status s = check_key(c.key()); !s.ok()) {
      return s;
    }
    auto held = compare(t, c);
    if (!held.is_ok()) {
      return to_grpc(held.status());
    }
    succeeded = succeeded && *held;
  }
  resp->set_succeeded(succeeded);
  for (const auto& op : succeeded ? req.success() : req.failure()) {
    auto* out = resp->add_responses();
    grpc::Status s;
    if (op.has_request_range() && op.request_range().revision() > 0) {
      // As etcd: a Range at a past revision inside a Txn reads that revision.
      s = range_at(op.request_range(), t.start_ts(), out->mutable_response_range());
    } else if (op.has_request_range()) {
      s = range_in(t, op.request_range(), out->mutable_response_range());
    } else if (op.has_request_put()) {
      s = put_in(t, op.request_put(), out->mutable_response_put());
    } else if (op.has_request_delete_range()) {
      s = delete_in(t, op.request_delete_range(), out->mutable_response_delete_range());
    } else if (op.has_request_txn()) {
      s = txn_in(t, op.request_txn(), out->mutable_response_txn());
    } else {
      s = {grpc::StatusCode::INVALID_ARGUMENT, "rdb-etcd: a transaction operation with no request"};
    }
    if (!s.ok()) {
      return s;
    }
  }
  return grpc::Status::OK;
}

grpc::Status EtcdKv::range_at(const RangeRequest& req, std::uint64_t now, RangeResponse* resp) {
  if (static_cast<std::uint64_t>(req.revision()) > now) {
    return err_future_rev();
  }
  // PD's word, not the stores' (they learn a new safe point at their next heartbeat).
  auto compacted = client_.update_gc_safe_point(0);
  if (!compacted.is_ok()) {
    return to_grpc(compacted.status());
  }
  if (static_cast<std::uint64_t>(req.revision()) < compacted->current) {
    return err_compacted();
  }
  auto snap = client_.snapshot_at(static_cast<std::uint64_t>(req.revision()));
  if (!snap.is_ok()) {
    return to_grpc(snap.status());
  }
  grpc::Status s = range_in(**snap, req, resp);
  (void)(*snap)->rollback();
  if (!s.ok() && s.error_code() == grpc::StatusCode::INVALID_ARGUMENT &&
      s.error_message().find("GC safe point") != std::string::npos) {
    return err_compacted();
  }
  return s;
}

grpc::Status EtcdKv::range(const RangeRequest& req, RangeResponse* resp) {
  if (req.revision() > 0) {
    auto now = client_.get_tso(1);
    if (!now.is_ok()) {
      return to_grpc(now.status());
    }
    if (grpc::Status s = range_at(req, *now, resp); !s.ok()) {
      return s;
    }
    fill_header(resp->mutable_header(), static_cast<std::int64_t>(*now));
    return grpc::Status::OK;
  }
  auto begun = client_.begin();
  if (!begun.is_ok()) {
    return to_grpc(begun.status());
  }
  Transaction& t = **begun;
  grpc::Status s = range_in(t, req, resp);
  (void)t.rollback();
  if (!s.ok()) {
    return s;
  }
  fill_header(resp->mutable_header(), static_cast<std::int64_t>(t.start_ts()));
  return grpc::Status::OK;
}

grpc::Status EtcdKv::compact(const etcdserverpb::CompactionRequest& req, etcdserverpb::CompactionResponse* resp) {
  auto now = client_.get_tso(1);
  if (!now.is_ok()) {
    return to_grpc(now.status());
  }
  if (req.revision() > 0 && static_cast<std::uint64_t>(req.revision()) > *now) {
    return err_future_rev();
  }
  auto moved = client_.update_gc_safe_point(static_cast<std::uint64_t>(std::max<std::int64_t>(req.revision(), 0)));
  if (!moved.is_ok()) {
    return to_grpc(moved.status());
  }
  if (req.revision() <= 0 || moved->previous >= static_cast<std::uint64_t>(req.revision())) {
    return err_compacted();  // as etcd: compacting to or below the compacted revision
  }
  fill_header(resp->mutable_header(), static_cast<std::int64_t>(*now));
  return grpc::Status::OK;
}

// One write call: `body` (a building block) in a fresh transaction, then the answer's
// header and its own writes' revisions once it committed.
template <typename Response, typename Body>
grpc::Status EtcdKv::write_call(Response* resp, Body&& body) {
  std::int64_t revision = 0;
  grpc::Status s = run(
      [&](Transaction& t) {
        resp->Clear();  // a retry starts from nothing
        return body(t);
      },
      &revision);
  if (!s.ok()) {
    return s;
  }
  // As etcd: nested answers' headers carry the revision only (settle_revisions sets it).
  fill_header(resp->mutable_header(), revision);
  settle_revisions(resp, revision);
  return grpc::Status::OK;
}

grpc::Status EtcdKv::put(const PutRequest& req, PutResponse* resp) {
  return write_call(resp, [&](Transaction& t) { return put_in(t, req, resp); });
}

grpc::Status EtcdKv::delete_range(const DeleteRangeRequest& req, DeleteRangeResponse* resp) {
  return write_call(resp, [&](Transaction& t) { return delete_in(t, req, resp); });
}

grpc::Status EtcdKv::txn(const TxnRequest& req, TxnResponse* resp) {
  if (grpc::Status s = check_txn(req, 0); !s.ok()) {
    return s;
  }
  return write_call(resp, [&](Transaction& t) { return txn_in(t, req, resp); });
}

}  // namespace rdb::etcd
