// TxnSender: what a Transaction needs from the client — timestamps, and the
// transactional RPCs routed to the regions holding their keys with the client's
// retry rules. Transactional commands are idempotent (a retried prewrite finds its
// own lock, a retried commit its own commit), so they are retried like reads.
// Multi-key calls are split per region: `part` builds and sends the request for one
// region's keys (through `send`), and a part whose region split meanwhile is cut
// again. Internal to the client library.
// Thread safety: as RdbClient.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "kvrpc.pb.h"
#include "rdb/client.h"

namespace rdb {

class TxnSender {
 public:
  virtual ~TxnSender() = default;
  virtual Result<std::uint64_t> timestamp() = 0;
  // The client's timeout for one call.
  virtual std::chrono::milliseconds timeout() const = 0;
  // Runs `task` on the client's worker pool (asynchronous transaction and feed calls).
  virtual void post(std::function<void()> task) = 0;

  virtual Result<kvrpc::KvGetResponse> kv_get(const kvrpc::KvGetRequest& req) = 0;
  // Routed by start_key.
  virtual Result<kvrpc::KvScanResponse> kv_scan(const kvrpc::KvScanRequest& req) = 0;
  virtual Result<kvrpc::KvScanChangesResponse> kv_scan_changes(const kvrpc::KvScanChangesRequest& req) = 0;
  // Change feeds, routed by start_key.
  virtual Result<kvrpc::KvChangeFeedRegisterResponse> kv_change_feed_register(
      const kvrpc::KvChangeFeedRegisterRequest& req) = 0;
  virtual Result<kvrpc::KvChangeFeedPollResponse> kv_change_feed_poll(const kvrpc::KvChangeFeedPollRequest& req,
                                                                      const std::string& start_key) = 0;
  virtual void kv_change_feed_cancel(const kvrpc::KvChangeFeedCancelRequest& req) = 0;
  // Routed by primary_key / primary_lock.
  virtual Result<kvrpc::KvCheckTxnStatusResponse> kv_check_txn_status(const kvrpc::KvCheckTxnStatusRequest& req) = 0;
  virtual Result<kvrpc::KvTxnHeartBeatResponse> kv_heart_beat(const kvrpc::KvTxnHeartBeatRequest& req) = 0;

  // Per region: `req` is a template whose keys (or mutations) are replaced by each
  // region's part; `on_part` reads each region's answer.
  virtual Status kv_batch_get(const kvrpc::KvBatchGetRequest& req,
                              const std::function<Status(kvrpc::KvBatchGetResponse&)>& on_part) = 0;
  virtual Status kv_prewrite(const kvrpc::KvPrewriteRequest& req,
                             const std::function<Status(kvrpc::KvPrewriteResponse&)>& on_part) = 0;
  virtual Status kv_commit(const kvrpc::KvCommitRequest& req,
                           const std::function<Status(kvrpc::KvCommitResponse&)>& on_part) = 0;
  virtual Status kv_batch_rollback(const kvrpc::KvBatchRollbackRequest& req,
                                   const std::function<Status(kvrpc::KvBatchRollbackResponse&)>& on_part) = 0;
  virtual Status kv_resolve_lock(const kvrpc::KvResolveLockRequest& req,
                                 const std::function<Status(kvrpc::KvResolveLockResponse&)>& on_part) = 0;
};

// A transaction started at `start_ts` that sends through `sender` (which must outlive it).
// With `try_one_pc`, a commit whose keys are all in one region is one prewrite (1PC).
std::unique_ptr<Transaction> make_transaction(TxnSender& sender, std::uint64_t start_ts, bool try_one_pc);
// The same, read-only: writes and commit are refused.
std::unique_ptr<Transaction> make_read_only_transaction(TxnSender& sender, std::uint64_t ts);
// A change feed of [start, end) through `sender` (which must outlive it): registers it
// with every region's leader (change_feed.cc).
Result<std::unique_ptr<ChangeFeed>> open_change_feed(TxnSender& sender, const std::string& start,
                                                     const std::string& end, bool with_prev);

}  // namespace rdb
