// KvApplier: the region state machine — turns committed KvCommands into writes.
//
// apply() validates a command and adds its effect to a WriteBatch; the caller
// writes the batch together with the region's apply index. Several commands
// may be applied into one batch before it is written: an overlay of the
// versioned records written so far makes later CAS commands in the same batch
// see earlier ones, exactly as if each had been written alone. Deterministic:
// every replica applying the same commands from the same state produces the
// same writes and results.
// Thread safety: none; owned by the thread that applies a region's log.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "raft_serverpb.pb.h"
#include "server/txn_applier.h"
#include "storage/storage_engine.h"

namespace rdb {

class KvApplier {
 public:
  explicit KvApplier(StorageEngine& engine) : engine_(engine), txn_(engine) {}

  // Adds the command's writes to `wb` and returns its result. Invalid commands
  // change nothing and return a result with `error` set; an engine read failure
  // is returned as a Status (the caller must stop applying).
  Result<raft_serverpb::KvCommandResult> apply(const raft_serverpb::KvCommand& cmd, WriteBatch& wb);

  // See TxnApplier: the committed changes of the batch, for the change feeds.
  void collect_changes(bool on) { txn_.collect_changes(on); }
  std::vector<FeedChange> take_changes() { return txn_.take_changes(); }

  // Forget the overlay once the batch has been written.
  void batch_written() {
    overlay_.clear();
    txn_.batch_written();
  }

 private:
  Result<std::optional<std::string>> read_cas_record(const std::string& key);

  StorageEngine& engine_;
  std::map<std::string, std::string> overlay_;  // cas key -> encoded record written in the open batch
  TxnApplier txn_;                              // transactional commands (their own overlay)
};

}  // namespace rdb
