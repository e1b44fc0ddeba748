// TxnHandler: the store's side of the transactional RPCs (kvrpc Kv* methods), which
// KvService forwards here.
//
// Reads (KvGet, KvBatchGet, KvScan, KvScanLock) raise the store's max_ts to their
// timestamp and wait out 1PC commits in flight on their keys (ConcurrencyManager), wait
// for a linearizable read point (ReadIndex), then read the engine through MvccReader: a
// lock at or before the read's timestamp is answered as KeyError.locked for the client
// to resolve. Writes (KvPrewrite, KvCommit, KvBatchRollback, KvCheckTxnStatus,
// KvResolveLock, KvTxnHeartBeat) latch their keys, then become one TXN KvCommand each,
// replicated through the region's Raft log; the region's state machine (TxnApplier)
// decides conflicts when it applies them, and the answer is what it decided. A prewrite
// that meets another transaction's lock is answered at once, without a Raft round.
// A prewrite with try_one_pc commits in the same entry when the store can choose a
// commit timestamp above every read it served (needs a timestamp source, i.e. PD);
// otherwise it is an ordinary prewrite (one_pc_commit_ts 0). Input is validated before anything is proposed
// (INVALID_ARGUMENT naming it); misrouted requests get a RegionError. A write whose outcome the store cannot know
// (deadline, shutdown) is answered DEADLINE_EXCEEDED / UNAVAILABLE: the caller treats it
// as undetermined.
// Thread safety: handlers run concurrently on gRPC threads; the store and engine are
// thread-safe. Borrows the engine, store and metrics.
#pragma once

#include <grpcpp/grpcpp.h>

#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <optional>

#include "common/metrics.h"
#include "kvrpc.pb.h"
#include "server/concurrency_manager.h"
#include "server/raft_store.h"
#include "storage/storage_engine.h"

namespace rdb {

class TxnHandler {
 public:
  using Deadline = std::chrono::system_clock::time_point;
  TxnHandler(StorageEngine& engine, RaftStore& store, MetricsRegistry& metrics);
  // Test-only: reads skip the lock check, breaking snapshot isolation (the chaos bank must notice).
  void set_reads_ignore_locks(bool on) { reads_ignore_locks_ = on; }
  // Where fresh timestamps come from (PD's TSO); without one, 1PC is never used.
  using TimestampSource = std::function<Result<std::uint64_t>()>;
  void set_timestamp_source(TimestampSource source) {
    std::lock_guard lock(timestamp_mu_);
    timestamp_source_ = std::move(source);
  }
  ConcurrencyManager& concurrency() { return concurrency_; }

  grpc::Status get(const kvrpc::KvGetRequest& req, kvrpc::KvGetResponse* resp, Deadline deadline);
  grpc::Status batch_get(const kvrpc::KvBatchGetRequest& req, kvrpc::KvBatchGetResponse* resp, Deadline deadline);
  grpc::Status scan(const kvrpc::KvScanRequest& req, kvrpc::KvScanResponse* resp, Deadline deadline);
  grpc::Status scan_lock(const kvrpc::KvScanLockRequest& req, kvrpc::KvScanLockResponse* resp, Deadline deadline);
  grpc::Status scan_changes(const kvrpc::KvScanChangesRequest& req, kvrpc::KvScanChangesResponse* resp,
                            Deadline deadline);
  // Live change feeds (see ChangeFeedHub): a poll reads like a range read at its version.
  grpc::Status register_feed(const kvrpc::KvChangeFeedRegisterRequest& req, kvrpc::KvChangeFeedRegisterResponse* resp,
                             Deadline deadline);
  grpc::Status poll_feed(const kvrpc::KvChangeFeedPollRequest& req, kvrpc::KvChangeFeedPollResponse* resp,
                         Deadline deadline);
  grpc::Status cancel_feed(const kvrpc::KvChangeFeedCancelRequest& req, kvrpc::KvChangeFeedCancelResponse* resp);
  grpc::Status prewrite(const kvrpc::KvPrewriteRequest& req, kvrpc::KvPrewriteResponse* resp, Deadline deadline);
  grpc::Status commit(const kvrpc::KvCommitRequest& req, kvrpc::KvCommitResponse* resp, Deadline deadline);
  grpc::Status batch_rollback(const kvrpc::KvBatchRollbackRequest& req, kvrpc::KvBatchRollbackResponse* resp,
                              Deadline deadline);
  grpc::Status check_txn_status(const kvrpc::KvCheckTxnStatusRequest& req, kvrpc::KvCheckTxnStatusResponse* resp,
                                Deadline deadline);
  grpc::Status resolve_lock(const kvrpc::KvResolveLockRequest& req, kvrpc::KvResolveLockResponse* resp,
                            Deadline deadline);
  grpc::Status heart_beat(const kvrpc::KvTxnHeartBeatRequest& req, kvrpc::KvTxnHeartBeatResponse* resp,
                          Deadline deadline);

 private:
  enum Method {
    kGet,
    kBatchGet,
    kScan,
    kScanLock,
    kPrewrite,
    kCommit,
    kRollback,
    kCheck,
    kResolve,
    kHeartBeat,
    kScanChanges,
    kRegisterFeed,
    kPollFeed,
    kCancelFeed,
    kCount
  };
  struct RpcMetrics {
    Counter* requests = nullptr;
    Counter* errors = nullptr;
    Histogram* latency = nullptr;
  };

  // What a read at a timestamp must wait out first (see ConcurrencyManager): 1PC
  // commits in flight on `keys`, or on [start, end) when `range`.
  struct ReadFence {
    std::uint64_t ts = 0;  // 0: none (lock scans)
    bool range = false;
    std::vector<std::string> keys;
    std::string start, end;
  };
  // Raises max_ts and waits on the fence, then for a read point of the request's region,
  // then runs `read`.
  template <typename Req, typename Resp, typename Read>
  grpc::Status read(Method m, const Req& req, Resp* resp, std::vector<std::string> keys, const Status& input,
                    const ReadFence& fence, Deadline deadline, Read&& read,
                    const std::shared_ptr<metapb::Region>& region = nullptr);
  // Latches the command's keys, lets `prepare` (latches held) answer at once (returning a
  // status) or adjust the command and context, replicates it and hands the applied
  // result to `answer`. The latches are held until the command applied or failed here.
  using Prepare =
      std::function<std::optional<grpc::Status>(kvrpc::Context&, txnpb::TxnCommand&, ConcurrencyManager::Guard&)>;
  template <typename Req, typename Resp, typename Answer>
  grpc::Status write(Method m, const Req& req, Resp* resp, txnpb::TxnCommand cmd, const Status& input,
                     Deadline deadline, Answer&& answer, const Prepare& prepare = nullptr);
  // For a 1PC prewrite: the commit timestamp to use (memory locks marked on `guard`), or
  // nullopt when the store cannot choose one safely now (then it is a plain prewrite).
  std::optional<std::uint64_t> one_pc_commit_ts(const kvrpc::Context& ctx, std::uint64_t start_ts,
                                                std::uint64_t max_commit_ts, ConcurrencyManager::Guard& guard,
                                                std::uint64_t* term);

  StorageEngine& engine_;
  RaftStore& store_;
  std::array<RpcMetrics, kCount> metrics_{};
  std::atomic<bool> reads_ignore_locks_{false};
  std::mutex timestamp_mu_;
  TimestampSource timestamp_source_;  // guarded by timestamp_mu_
  ConcurrencyManager concurrency_;
};

}  // namespace rdb
