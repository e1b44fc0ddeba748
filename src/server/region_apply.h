// Applying a region's committed log entries: what each one does to the region's
// metadata and to the engine, with its outcome made explicit so the store acts on
// it — a KV command's result (or the region error that kept it from applying), or
// an exec result that changes the region itself: a membership change (the region's
// peers and conf_ver are already updated; the store applies it to the Raft node and
// persists it) or a batch split (the region is already cut; the store creates the
// new regions' peers), or a merge step (prepare, commit, rollback).
//
// Deterministic, like KvApplier: every replica applying the same entries to the same
// region and engine state produces the same writes, region and outcomes.
// Thread safety: none; run by the thread that applies the region's log.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <variant>
#include <vector>

#include "metapb.pb.h"
#include "raft/raw_node.h"
#include "server/kv_applier.h"
#include "server/region_peer.h"

namespace rdb {

// A membership change took effect (the store applies `cc` to the Raft node), or
// could not (`error`; every replica refuses it alike and the Raft node is left as is).
struct ChangePeerResult {
  raftpb::ConfChangeV2 cc;
  std::string error;
};

// A batch split took effect: the region (already shrunk to its first part, its
// version bumped by the number of new regions) and the new regions, in key order.
// The store records them, creates this store's peers of the new regions, and answers
// the proposer with `answer` (its split_regions list every region, the original first).
struct SplitResult {
  std::vector<metapb::Region> new_regions;
  ProposeResult answer;
};

// PREPARE_MERGE took effect on the merge's source: the region (its version and conf_ver
// bumped) takes no more requests; the store persists `state` and answers the proposer.
struct PrepareMergeResult {
  raft_serverpb::MergeState state;
  ProposeResult answer;
};

// COMMIT_MERGE took effect on the target: the region already spans `source`'s range
// too (version = max of both + 1). The store destroys its replica of the source,
// keeping the data, which the target now owns.
struct CommitMergeResult {
  metapb::Region source;
  ProposeResult answer;
};

// ROLLBACK_MERGE took effect on the source (version bumped): it takes requests again.
struct RollbackMergeResult {
  ProposeResult answer;
};

// Brings this store's replica of a merge's source up to its PREPARE_MERGE (applying
// what it lacks into `wb` on its behalf), so that the target may apply COMMIT_MERGE
// (`merge` is the command's MergeRequest): false when it cannot yet; an error is an
// engine failure.
using MergeSourceReady = std::function<Result<bool>(const raft_serverpb::MergeRequest& merge, WriteBatch& wb)>;

struct AppliedEntry {
  std::uint64_t index = 0;
  std::uint64_t term = 0;
  // What a KV command wrote (keys and values as given), for split checks.
  std::uint64_t written_bytes = 0;
  std::uint64_t written_keys = 0;
  // A KV command that deleted (the region may have shrunk: worth measuring again).
  bool deleted = false;
  // monostate: nothing to answer (a new leader's empty entry).
  std::variant<std::monostate, ProposeResult, ChangePeerResult, SplitResult, PrepareMergeResult, CommitMergeResult,
               RollbackMergeResult>
      outcome;
};

// KeyNotInRegion when a command writes outside `region`: a key outside its range, or a
// delete-range that reaches past its end. Checked when proposed and again when applied
// (the range may have changed in between).
std::optional<kvrpc::RegionError> check_command_range(const raft_serverpb::KvCommand& cmd,
                                                      const metapb::Region& region);

// The most split keys one BATCH_SPLIT may carry.
constexpr int kMaxSplitKeys = 64;

// Why a batch split cannot cut `region` (split keys not ascending, not strictly inside
// the range, ids missing or repeated, a peer id count that differs from the region's
// peers), or nothing when it can. Checked when proposed and again when applied.
std::optional<std::string> check_split(const raft_serverpb::KvCommand& cmd, const metapb::Region& region);

// Why `source` cannot merge into `target` (not adjacent, peers not on the same stores,
// learners in either), or nothing when it can. Checked when proposed and when applied.
std::optional<std::string> check_merge(const metapb::Region& source, const metapb::Region& target);

// Applies `entries` in order into `wb`; `region` follows membership changes, splits
// and merges. It stops before a COMMIT_MERGE whose source `ready` says is not yet
// prepared on this store: the result then covers a prefix of `entries` (one
// AppliedEntry per entry), and the rest waits. An error is an engine read failure:
// nothing of the batch may be written.
Result<std::vector<AppliedEntry>> apply_entries(KvApplier& applier, metapb::Region& region,
                                                const std::vector<raft::Entry>& entries, WriteBatch& wb,
                                                const MergeSourceReady& ready = nullptr);

}  // namespace rdb
