// etcd's KV service (Range, Put, DeleteRange, Txn) on rdb's transactions.
//
// Each call is one rdb transaction: a read takes its snapshot at a fresh timestamp (the
// answer's header revision), a write commits at its commit timestamp (the revision it
// creates). Revisions therefore grow in commit order across every gateway and region
// with nothing to coordinate. A key's value is an etcdgw.KeyRecord (value, version,
// create revision, lease); its mod_revision is the commit timestamp of the version read.
// Conflicting writes are retried within the call's time; a Txn locks the keys its
// compares read, so "compare, then write" is atomic as in etcd (a compare over a range
// guards the keys that exist, not keys inserted into it meanwhile).
// Thread safety: every method may be called from any number of threads at once.
// Ownership: borrows the client and layout; both must outlive it.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <thread>

#include "etcd/errors.h"
#include "etcd/keys.h"
#include "etcd_rpc.pb.h"
#include "etcdgw.pb.h"
#include "rdb/client.h"

namespace rdb::etcd {

struct KvOptions {
  std::uint64_t cluster_id = 0;
  std::size_t max_txn_ops = 128;                                // etcd's default --max-txn-ops
  std::size_t max_range_bytes = std::size_t{64} << 20;          // a Range answer larger than this is refused
  std::chrono::milliseconds timeout{std::chrono::seconds(10)};  // conflicts are retried this long
};

// A key as read: its record and the commit timestamp of that version (0: written by
// the transaction reading it, not committed yet).
struct Current {
  std::string key;  // the etcd key
  etcdgw::KeyRecord record;
  std::int64_t mod_revision = 0;
};

class EtcdKv {
 public:
  EtcdKv(RdbClient& client, const KeyLayout& layout, KvOptions options);

  grpc::Status range(const etcdserverpb::RangeRequest& req, etcdserverpb::RangeResponse* resp);
  grpc::Status put(const etcdserverpb::PutRequest& req, etcdserverpb::PutResponse* resp);
  grpc::Status delete_range(const etcdserverpb::DeleteRangeRequest& req, etcdserverpb::DeleteRangeResponse* resp);
  grpc::Status txn(const etcdserverpb::TxnRequest& req, etcdserverpb::TxnResponse* resp);
  // Compact(rev) raises rdb's GC safe point to rev: reads below it answer "compacted"
  // from then on (the stores remove the versions in the background; `physical` is not
  // waited for).
  grpc::Status compact(const etcdserverpb::CompactionRequest& req, etcdserverpb::CompactionResponse* resp);

  void fill_header(etcdserverpb::ResponseHeader* h, std::int64_t revision) const;
  const KvOptions& options() const { return options_; }
  // The gateway's member id, known once it has bound its port (headers carry 0 before).
  void set_member_id(std::uint64_t id) { member_id_ = id; }
  std::uint64_t member_id() const { return member_id_; }

  // Runs `body` in a fresh transaction and commits it, retrying conflicts until the
  // timeout; on success *revision is the commit timestamp (the start timestamp when
  // nothing was written). The body must be repeatable: it starts again on a conflict.
  template <typename Body>
  grpc::Status run(Body&& body, std::int64_t* revision);

  // Building blocks, inside a transaction (also used by the lease service).
  grpc::Status range_in(Transaction& t, const etcdserverpb::RangeRequest& req, etcdserverpb::RangeResponse* resp);
  // A Range at req.revision (> 0) in a snapshot of its own: refused as etcd does when the
  // revision is above `now` (future) or below the GC safe point (compacted). No header.
  grpc::Status range_at(const etcdserverpb::RangeRequest& req, std::uint64_t now, etcdserverpb::RangeResponse* resp);
  grpc::Status put_in(Transaction& t, const etcdserverpb::PutRequest& req, etcdserverpb::PutResponse* resp);
  grpc::Status delete_in(Transaction& t, const etcdserverpb::DeleteRangeRequest& req,
                         etcdserverpb::DeleteRangeResponse* resp);
  grpc::Status txn_in(Transaction& t, const etcdserverpb::TxnRequest& req, etcdserverpb::TxnResponse* resp);
  // Deletes one existing key (and its lease attachment).
  grpc::Status erase_in(Transaction& t, const Current& cur);
  Result<std::optional<Current>> read_key(Transaction& t, const std::string& etcd_key);
  // Every key in an etcd range, in key order, page by page: `visit` returns false to stop.
  Status read_range(Transaction& t, const EtcdRange& r, const std::function<bool(Current&)>& visit);

 private:
  template <typename Response, typename Body>
  grpc::Status write_call(Response* resp, Body&& body);
  grpc::Status check_key(const std::string& key) const;
  grpc::Status check_txn(const etcdserverpb::TxnRequest& req, std::size_t depth) const;
  Result<bool> compare(Transaction& t, const etcdserverpb::Compare& c);

  RdbClient& client_;
  const KeyLayout& layout_;
  KvOptions options_;
  std::atomic<std::uint64_t> member_id_{0};
};

// The etcd view of a key as read.
etcdserverpb::KeyValue to_key_value(const Current& cur, bool keys_only = false);
// Revisions a transaction's own writes left at 0 (unknown before it committed) become
// its commit timestamp, in every key-value and header of the answer.
void settle_revisions(etcdserverpb::RangeResponse* r, std::int64_t commit_ts);
void settle_revisions(etcdserverpb::PutResponse* r, std::int64_t commit_ts);
void settle_revisions(etcdserverpb::DeleteRangeResponse* r, std::int64_t commit_ts);
void settle_revisions(etcdserverpb::TxnResponse* r, std::int64_t commit_ts);

template <typename Body>
grpc::Status EtcdKv::run(Body&& body, std::int64_t* revision) {
  const auto deadline = std::chrono::steady_clock::now() + options_.timeout;
  std::chrono::milliseconds backoff(1);
  for (;;) {
    auto txn = client_.begin();
    if (!txn.is_ok()) {
      return to_grpc(txn.status());
    }
    Transaction& t = **txn;
    if (grpc::Status s = body(t); !s.ok()) {
      (void)t.rollback();
      return s;
    }
    Status committed = t.commit();
    if (committed.is_ok()) {
      *revision = static_cast<std::int64_t>(t.commit_ts());
      return grpc::Status::OK;
    }
    if (committed.code() != StatusCode::kAborted || std::chrono::steady_clock::now() + backoff >= deadline) {
      return to_grpc(committed);
    }
    // Another write to the same keys committed first: do it again on a newer snapshot.
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(50));
  }
}

}  // namespace rdb::etcd
