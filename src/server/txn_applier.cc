#include "server/txn_applier.h"

#include <fmt/format.h>

#include <set>

#include "common/limits.h"
#include "storage/mvcc_codec.h"

namespace rdb {
namespace {

constexpr int kLogicalBits = 18;  // PD's timestamps: physical_ms << 18 | logical

txnpb::KeyError abort_error(std::string why) {
  txnpb::KeyError e;
  e.set_abort(std::move(why));
  return e;
}

Status validate_keys(const google::protobuf::RepeatedPtrField<std::string>& keys) {
  RDB_RETURN_IF_ERROR(validate_batch_size(static_cast<std::size_t>(keys.size())));
  if (keys.empty()) {
    return Status::invalid_argument("a transactional command needs at least one key");
  }
  std::set<std::string_view> seen;
  for (const auto& k : keys) {
    RDB_RETURN_IF_ERROR(validate_key(k));
    if (!seen.insert(k).second) {
      return Status::invalid_argument("a transactional command names a key twice");
    }
  }
  return Status::ok();
}

}  // namespace

bool TxnApplier::expired(const txnpb::LockRecord& lock, std::uint64_t current_ts) {
  return (current_ts >> kLogicalBits) >= (lock.start_ts() >> kLogicalBits) + lock.ttl_ms();
}

std::vector<std::string> TxnApplier::keys_of(const txnpb::TxnCommand& cmd) {
  std::vector<std::string> keys;
  switch (cmd.cmd_case()) {
    case txnpb::TxnCommand::kPrewrite:
      for (const auto& m : cmd.prewrite().mutations()) {
        keys.push_back(m.key());
      }
      break;
    case txnpb::TxnCommand::kCommit:
      keys.assign(cmd.commit().keys().begin(), cmd.commit().keys().end());
      break;
    case txnpb::TxnCommand::kRollback:
      keys.assign(cmd.rollback().keys().begin(), cmd.rollback().keys().end());
      break;
    case txnpb::TxnCommand::kCheckStatus:
      keys.push_back(cmd.check_status().primary());
      break;
    case txnpb::TxnCommand::kResolve:
      keys.assign(cmd.resolve().keys().begin(), cmd.resolve().keys().end());
      break;
    case txnpb::TxnCommand::kHeartBeat:
      keys.push_back(cmd.heart_beat().primary());
      break;
    case txnpb::TxnCommand::kGc:
      for (const auto& wk : cmd.gc().write_keys()) {
        auto parsed = mvcc::parse_write_key(wk);
        keys.push_back(parsed.is_ok() ? std::move(parsed->user_key) : std::string());  // refused at apply
      }
      break;
    case txnpb::TxnCommand::CMD_NOT_SET:
      break;
  }
  return keys;
}

Result<txnpb::TxnResult> TxnApplier::apply(const txnpb::TxnCommand& cmd, WriteBatch& wb) {
  switch (cmd.cmd_case()) {
    case txnpb::TxnCommand::kPrewrite:
      return prewrite(cmd.prewrite(), wb);
    case txnpb::TxnCommand::kCommit:
      return commit(cmd.commit(), wb);
    case txnpb::TxnCommand::kRollback:
      return rollback(cmd.rollback(), wb);
    case txnpb::TxnCommand::kCheckStatus:
      return check_status(cmd.check_status(), wb);
    case txnpb::TxnCommand::kResolve:
      return resolve(cmd.resolve(), wb);
    case txnpb::TxnCommand::kHeartBeat:
      return heart_beat(cmd.heart_beat(), wb);
    case txnpb::TxnCommand::kGc:
      return gc(cmd.gc(), wb);
    case txnpb::TxnCommand::CMD_NOT_SET:
      break;
  }
  return Status::invalid_argument("a transactional command names no operation");
}

void TxnApplier::commit_lock(const std::string& key, const txnpb::LockRecord& lock, std::uint64_t commit_ts,
                             WriteBatch& wb) {
  txnpb::WriteRecord w;
  w.set_op(lock.op());
  w.set_start_ts(lock.start_ts());
  if (lock.op() == txnpb::PUT) {
    w.set_value(lock.value());
  }
  source_.put(ColumnFamily::kTxnWrite, mvcc::write_key(key, commit_ts), w.SerializeAsString(), wb);
  source_.del(ColumnFamily::kTxnLock, key, wb);
  record(key, lock.op(), lock.value(), commit_ts);
}

void TxnApplier::record(const std::string& key, txnpb::MutationOp op, const std::string& value,
                        std::uint64_t commit_ts) {
  if (!collect_ || (op != txnpb::PUT && op != txnpb::DEL)) {
    return;
  }
  changes_.push_back({key, commit_ts, op == txnpb::DEL, op == txnpb::PUT ? value : std::string()});
}

Status TxnApplier::roll_back(const std::string& key, std::uint64_t start_ts, bool had_lock, WriteBatch& wb) {
  // A 1PC commit's timestamp is chosen by a leader, not handed out by TSO, so another
  // transaction may have committed at exactly this start_ts: its record stays (a late
  // prewrite of ours still meets it as a conflict, commit_ts >= start_ts).
  RDB_ASSIGN_OR_RETURN(auto there, source_.get(ColumnFamily::kTxnWrite, mvcc::write_key(key, start_ts)));
  bool keep_theirs = false;
  if (there) {
    txnpb::WriteRecord theirs;
    keep_theirs = theirs.ParseFromString(*there) && theirs.start_ts() != start_ts;
  }
  if (!keep_theirs) {
    txnpb::WriteRecord w;
    w.set_op(txnpb::ROLLBACK);
    w.set_start_ts(start_ts);
    source_.put(ColumnFamily::kTxnWrite, mvcc::write_key(key, start_ts), w.SerializeAsString(), wb);
  }
  if (had_lock) {
    source_.del(ColumnFamily::kTxnLock, key, wb);
  }
  return Status::ok();
}

Result<txnpb::TxnResult> TxnApplier::prewrite(const txnpb::TxnCommand::Prewrite& p, WriteBatch& wb) {
  if (p.start_ts() == 0) {
    return Status::invalid_argument("prewrite needs a start timestamp");
  }
  RDB_RETURN_IF_ERROR(validate_key(p.primary(), "primary key"));
  RDB_RETURN_IF_ERROR(validate_batch_size(static_cast<std::size_t>(p.mutations_size())));
  if (p.mutations().empty()) {
    return Status::invalid_argument("prewrite needs at least one mutation");
  }
  std::set<std::string_view> seen;
  std::size_t bytes = 0;
  for (const auto& m : p.mutations()) {
    RDB_RETURN_IF_ERROR(validate_key(m.key()));
    if (m.op() != txnpb::PUT && m.op() != txnpb::DEL && m.op() != txnpb::LOCK) {
      return Status::invalid_argument(
          fmt::format("prewrite: mutation kind {} cannot be written", static_cast<int>(m.op())));
    }
    if (m.op() != txnpb::PUT && !m.value().empty()) {
      return Status::invalid_argument("prewrite: only a put carries a value");
    }
    RDB_RETURN_IF_ERROR(validate_value(m.value()));
    if (!seen.insert(m.key()).second) {
      return Status::invalid_argument("prewrite names a key twice");
    }
    bytes += m.key().size() + m.value().size();
  }
  RDB_RETURN_IF_ERROR(validate_write_bytes(bytes));

  const std::uint64_t one_pc = p.one_pc_commit_ts();
  if (one_pc != 0 && one_pc <= p.start_ts()) {
    return Status::invalid_argument(
        fmt::format("1PC commit timestamp {} must be above the start timestamp {}", one_pc, p.start_ts()));
  }

  MvccReader reader(source_);
  txnpb::TxnResult result;
  std::vector<const txnpb::Mutation*> to_lock;
  std::vector<std::pair<const std::string*, txnpb::LockRecord>> own_locks;  // 1PC: committed with the rest
  for (const auto& m : p.mutations()) {
    RDB_ASSIGN_OR_RETURN(auto lock, reader.lock(m.key()));
    if (lock && lock->start_ts() == p.start_ts()) {
      if (one_pc != 0) {
        own_locks.emplace_back(&m.key(), std::move(*lock));  // an earlier attempt's plain prewrite
      }
      continue;  // our own lock: a retried prewrite
    }
    // Our own record before another's lock: a retried 1PC that committed must say so even
    // when a later transaction has locked the key since (not "locked", then "aborted").
    RDB_ASSIGN_OR_RETURN(auto mine, reader.version_of_txn(m.key(), p.start_ts()));
    if (mine) {
      if (mine->record.op() == txnpb::ROLLBACK) {
        *result.add_errors() = abort_error(fmt::format("transaction {} was rolled back", p.start_ts()));
      } else {
        result.set_commit_ts(mine->commit_ts);  // a retry: it committed then, not now
      }
      continue;  // committed already: a prewrite retried after its commit
    }
    if (lock) {
      *result.add_errors()->mutable_locked() = MvccReader::lock_info(m.key(), *lock);
      continue;
    }
    RDB_ASSIGN_OR_RETURN(auto newest, reader.newest_version(m.key(), ~std::uint64_t{0}, false));
    if (newest && newest->commit_ts >= p.start_ts()) {
      auto* c = result.add_errors()->mutable_conflict();
      c->set_start_ts(p.start_ts());
      c->set_conflict_start_ts(newest->record.start_ts());
      c->set_conflict_commit_ts(newest->commit_ts);
      c->set_key(m.key());
      c->set_primary(p.primary());
      continue;
    }
    to_lock.push_back(&m);
  }
  if (result.errors_size() > 0) {
    return result;  // nothing is written
  }
  if (one_pc != 0) {
    // Every key of the transaction is here: it commits in this entry. The leader chose
    // one_pc above every read it served of these keys (see ConcurrencyManager).
    if (result.commit_ts() != 0 && (!to_lock.empty() || !own_locks.empty())) {  // cannot be: 1PC is one entry
      return Status::invalid_argument("a 1PC prewrite found its transaction committed on some keys only");
    }
    for (const auto& [key, lock] : own_locks) {
      commit_lock(*key, lock, one_pc, wb);
    }
    for (const auto* m : to_lock) {
      txnpb::WriteRecord w;
      w.set_op(m->op());
      w.set_start_ts(p.start_ts());
      if (m->op() == txnpb::PUT) {
        w.set_value(m->value());
      }
      source_.put(ColumnFamily::kTxnWrite, mvcc::write_key(m->key(), one_pc), w.SerializeAsString(), wb);
      record(m->key(), m->op(), m->value(), one_pc);
    }
    return result;
  }
  for (const auto* m : to_lock) {
    txnpb::LockRecord l;
    l.set_primary(p.primary());
    l.set_start_ts(p.start_ts());
    l.set_ttl_ms(p.ttl_ms());
    l.set_txn_size(p.txn_size());
    l.set_op(m->op());
    l.set_value(m->value());
    source_.put(ColumnFamily::kTxnLock, m->key(), l.SerializeAsString(), wb);
  }
  return result;
}

Result<txnpb::TxnResult> TxnApplier::commit(const txnpb::TxnCommand::Commit& c, WriteBatch& wb) {
  RDB_RETURN_IF_ERROR(validate_keys(c.keys()));
  if (c.start_ts() == 0 || c.commit_ts() <= c.start_ts()) {
    return Status::invalid_argument(
        fmt::format("commit timestamp {} must be above the start timestamp {}", c.commit_ts(), c.start_ts()));
  }
  MvccReader reader(source_);
  txnpb::TxnResult result;
  std::vector<std::pair<const std::string*, txnpb::LockRecord>> to_commit;
  for (const auto& key : c.keys()) {
    RDB_ASSIGN_OR_RETURN(auto lock, reader.lock(key));
    if (lock && lock->start_ts() == c.start_ts()) {
      to_commit.emplace_back(&key, std::move(*lock));
      continue;
    }
    RDB_ASSIGN_OR_RETURN(auto mine, reader.version_of_txn(key, c.start_ts()));
    if (mine && mine->record.op() != txnpb::ROLLBACK) {
      continue;  // committed already (a retry)
    }
    if (mine) {
      *result.add_errors() = abort_error(fmt::format("transaction {} was rolled back", c.start_ts()));
    } else {
      result.add_errors()->set_txn_not_found(true);  // its lock is gone and it left nothing
    }
  }
  if (result.errors_size() > 0) {
    return result;
  }
  for (const auto& [key, lock] : to_commit) {
    commit_lock(*key, lock, c.commit_ts(), wb);
  }
  return result;
}

Result<txnpb::TxnResult> TxnApplier::rollback(const txnpb::TxnCommand::Rollback& r, WriteBatch& wb) {
  RDB_RETURN_IF_ERROR(validate_keys(r.keys()));
  if (r.start_ts() == 0) {
    return Status::invalid_argument("rollback needs a start timestamp");
  }
  MvccReader reader(source_);
  txnpb::TxnResult result;
  std::vector<std::pair<const std::string*, bool>> to_roll_back;
  for (const auto& key : r.keys()) {
    RDB_ASSIGN_OR_RETURN(auto lock, reader.lock(key));
    if (lock && lock->start_ts() == r.start_ts()) {
      to_roll_back.emplace_back(&key, true);
      continue;
    }
    RDB_ASSIGN_OR_RETURN(auto mine, reader.version_of_txn(key, r.start_ts()));
    if (mine && mine->record.op() != txnpb::ROLLBACK) {
      auto* e = result.add_errors();
      e->set_already_committed(true);
      e->set_commit_ts(mine->commit_ts);
      continue;
    }
    if (!mine) {
      to_roll_back.emplace_back(&key, false);  // a late prewrite must find the rollback
    }
  }
  if (result.errors_size() > 0) {
    return result;
  }
  for (const auto& [key, had_lock] : to_roll_back) {
    RDB_RETURN_IF_ERROR(roll_back(*key, r.start_ts(), had_lock, wb));
  }
  return result;
}

Result<txnpb::TxnResult> TxnApplier::check_status(const txnpb::TxnCommand::CheckStatus& c, WriteBatch& wb) {
  RDB_RETURN_IF_ERROR(validate_key(c.primary(), "primary key"));
  if (c.lock_ts() == 0) {
    return Status::invalid_argument("checking a transaction's status needs its start timestamp");
  }
  MvccReader reader(source_);
  txnpb::TxnResult result;
  RDB_ASSIGN_OR_RETURN(auto lock, reader.lock(c.primary()));
  if (lock && lock->start_ts() == c.lock_ts()) {
    if (expired(*lock, c.current_ts())) {
      RDB_RETURN_IF_ERROR(roll_back(c.primary(), c.lock_ts(), true, wb));
      result.set_action(txnpb::TTL_EXPIRE_ROLLBACK);
    } else {
      result.set_lock_ttl(std::max<std::uint64_t>(lock->ttl_ms(), 1));
    }
    return result;
  }
  RDB_ASSIGN_OR_RETURN(auto mine, reader.version_of_txn(c.primary(), c.lock_ts()));
  if (mine) {
    if (mine->record.op() != txnpb::ROLLBACK) {
      result.set_commit_ts(mine->commit_ts);
    }
    return result;
  }
  if (!c.rollback_if_not_exist()) {
    result.add_errors()->set_txn_not_found(true);
    return result;
  }
  // Not prewritten here (yet): make sure it never will be, so its fate is settled.
  RDB_RETURN_IF_ERROR(roll_back(c.primary(), c.lock_ts(), false, wb));
  result.set_action(txnpb::LOCK_NOT_EXIST_ROLLBACK);
  return result;
}

Result<txnpb::TxnResult> TxnApplier::resolve(const txnpb::TxnCommand::Resolve& r, WriteBatch& wb) {
  RDB_RETURN_IF_ERROR(validate_keys(r.keys()));
  if (r.start_ts() == 0 || (r.commit_ts() != 0 && r.commit_ts() <= r.start_ts())) {
    return Status::invalid_argument(
        fmt::format("resolving transaction {}: commit timestamp {} is not above it", r.start_ts(), r.commit_ts()));
  }
  MvccReader reader(source_);
  for (const auto& key : r.keys()) {
    RDB_ASSIGN_OR_RETURN(auto lock, reader.lock(key));
    if (!lock || lock->start_ts() != r.start_ts()) {
      continue;  // resolved already
    }
    if (r.commit_ts() != 0) {
      commit_lock(key, *lock, r.commit_ts(), wb);
    } else {
      RDB_RETURN_IF_ERROR(roll_back(key, r.start_ts(), true, wb));
    }
  }
  return txnpb::TxnResult();
}

Result<txnpb::TxnResult> TxnApplier::gc(const txnpb::TxnCommand::Gc& g, WriteBatch& wb) {
  if (g.safe_point() == 0) {
    return Status::invalid_argument("GC needs a safe point");
  }
  RDB_RETURN_IF_ERROR(validate_batch_size(static_cast<std::size_t>(g.write_keys_size())));
  for (const auto& wk : g.write_keys()) {
    auto parsed = mvcc::parse_write_key(wk);
    if (!parsed.is_ok()) {
      // Malformed input, not a broken engine: refused, the log goes on.
      return Status::invalid_argument(fmt::format("GC of a malformed version key: {}", parsed.status().message()));
    }
    if (parsed->commit_ts > g.safe_point()) {
      return Status::invalid_argument(
          fmt::format("GC of a version at {}, above its safe point {}", parsed->commit_ts, g.safe_point()));
    }
  }
  for (const auto& wk : g.write_keys()) {
    source_.del(ColumnFamily::kTxnWrite, wk, wb);
  }
  return txnpb::TxnResult();
}

Result<txnpb::TxnResult> TxnApplier::heart_beat(const txnpb::TxnCommand::HeartBeat& h, WriteBatch& wb) {
  RDB_RETURN_IF_ERROR(validate_key(h.primary(), "primary key"));
  MvccReader reader(source_);
  txnpb::TxnResult result;
  RDB_ASSIGN_OR_RETURN(auto lock, reader.lock(h.primary()));
  if (!lock || lock->start_ts() != h.start_ts()) {
    result.add_errors()->set_txn_not_found(true);
    return result;
  }
  if (h.advise_ttl_ms() > lock->ttl_ms()) {
    lock->set_ttl_ms(h.advise_ttl_ms());
    source_.put(ColumnFamily::kTxnLock, h.primary(), lock->SerializeAsString(), wb);
  }
  result.set_lock_ttl(lock->ttl_ms());
  return result;
}

}  // namespace rdb
