// TxnApplier: the Percolator commands (txnpb.TxnCommand) as a region's state machine
// applies them — prewrite, commit, rollback, check-status, resolve, heart-beat, and
// garbage collection of old versions.
//
// Conflicts are decided here, at apply time, from the state every replica has after
// the same log prefix: the outcome is deterministic, and two commands racing for a
// key are ordered by the log. A command that refuses any key writes nothing and
// answers the reasons (TxnResult.errors); a malformed one is an error string, as
// for every KvCommand. Writes of earlier commands in the same unwritten batch are
// seen (BatchOverlaySource).
// Thread safety: none; owned by the thread that applies a region's log.
#pragma once

#include <utility>
#include <vector>

#include "server/change_feed_hub.h"
#include "server/mvcc_reader.h"
#include "storage/storage_engine.h"
#include "txnpb.pb.h"

namespace rdb {

class TxnApplier {
 public:
  explicit TxnApplier(StorageEngine& engine) : source_(engine) {}

  // Adds the command's writes to `wb`. INVALID_ARGUMENT: malformed (nothing written);
  // another error: the engine failed (the caller stops applying).
  Result<txnpb::TxnResult> apply(const txnpb::TxnCommand& cmd, WriteBatch& wb);
  void batch_written() { source_.clear(); }
  // While on, every put and delete committed is also recorded (for the change feeds)
  // until taken: the caller takes them before it writes the batch.
  void collect_changes(bool on) { collect_ = on; }
  std::vector<FeedChange> take_changes() { return std::exchange(changes_, {}); }

  // Every key a command touches (what its region must hold).
  static std::vector<std::string> keys_of(const txnpb::TxnCommand& cmd);
  // Whether a lock is past its TTL at `current_ts` (PD timestamps: ms in the high bits).
  static bool expired(const txnpb::LockRecord& lock, std::uint64_t current_ts);

 private:
  Result<txnpb::TxnResult> prewrite(const txnpb::TxnCommand::Prewrite& p, WriteBatch& wb);
  Result<txnpb::TxnResult> commit(const txnpb::TxnCommand::Commit& c, WriteBatch& wb);
  Result<txnpb::TxnResult> rollback(const txnpb::TxnCommand::Rollback& r, WriteBatch& wb);
  Result<txnpb::TxnResult> check_status(const txnpb::TxnCommand::CheckStatus& c, WriteBatch& wb);
  Result<txnpb::TxnResult> resolve(const txnpb::TxnCommand::Resolve& r, WriteBatch& wb);
  Result<txnpb::TxnResult> heart_beat(const txnpb::TxnCommand::HeartBeat& h, WriteBatch& wb);
  Result<txnpb::TxnResult> gc(const txnpb::TxnCommand::Gc& g, WriteBatch& wb);

  // Commits `lock` (held by its transaction on `key`) at commit_ts.
  void commit_lock(const std::string& key, const txnpb::LockRecord& lock, std::uint64_t commit_ts, WriteBatch& wb);
  // Removes the transaction's lock on `key` (if `lock`) and records its rollback there
  // (unless another transaction committed at exactly that timestamp, see 1PC).
  [[nodiscard]] Status roll_back(const std::string& key, std::uint64_t start_ts, bool had_lock, WriteBatch& wb);

  // Records a committed change when collecting.
  void record(const std::string& key, txnpb::MutationOp op, const std::string& value, std::uint64_t commit_ts);

  BatchOverlaySource source_;
  bool collect_ = false;
  std::vector<FeedChange> changes_;
};

}  // namespace rdb
