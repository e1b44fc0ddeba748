#include "server/kv_applier.h"

#include <fmt/format.h>

#include <set>

#include "common/limits.h"
#include "storage/cas_rule.h"

namespace rdb {

using raft_serverpb::KvCommand;
using raft_serverpb::KvCommandResult;

Result<std::optional<std::string>> KvApplier::read_cas_record(const std::string& key) {
  if (auto it = overlay_.find(key); it != overlay_.end()) {
    return std::optional<std::string>(it->second);
  }
  return engine_.get_cf(ColumnFamily::kCas, key);
}

Result<KvCommandResult> KvApplier::apply(const KvCommand& cmd, WriteBatch& wb) {
  KvCommandResult result;
  auto refuse = [&](const Status& s) {
    result.set_error(s.message());
    return result;
  };
  for (const auto& k : cmd.keys()) {
    if (cmd.type() != KvCommand::RAW_DELETE_RANGE) {
      if (Status s = validate_key(k); !s.is_ok()) {
        return refuse(s);
      }
    }
  }
  for (const auto& v : cmd.values()) {
    if (Status s = validate_value(v); !s.is_ok()) {
      return refuse(s);
    }
  }
  switch (cmd.type()) {
    case KvCommand::RAW_PUT:
      if (cmd.keys_size() != 1 || cmd.values_size() != 1) {
        return refuse(Status::invalid_argument("raw put needs one key and one value"));
      }
      wb.put(ColumnFamily::kRaw, cmd.keys(0), cmd.values(0));
      return result;
    case KvCommand::RAW_DELETE:
      if (cmd.keys_size() != 1) {
        return refuse(Status::invalid_argument("raw delete needs one key"));
      }
      wb.del(ColumnFamily::kRaw, cmd.keys(0));
      return result;
    case KvCommand::RAW_BATCH_PUT:
      if (Status s = validate_batch_size(static_cast<std::size_t>(cmd.keys_size())); !s.is_ok()) {
        return refuse(s);
      }
      if (cmd.keys_size() != cmd.values_size()) {
        return refuse(Status::invalid_argument("raw batch put needs one value per key"));
      }
      for (int i = 0; i < cmd.keys_size(); ++i) {
        wb.put(ColumnFamily::kRaw, cmd.keys(i), cmd.values(i));
      }
      return result;
    case KvCommand::RAW_BATCH_DELETE:
      if (Status s = validate_batch_size(static_cast<std::size_t>(cmd.keys_size())); !s.is_ok()) {
        return refuse(s);
      }
      for (const auto& k : cmd.keys()) {
        wb.del(ColumnFamily::kRaw, k);
      }
      return result;
    case KvCommand::RAW_DELETE_RANGE:
      if (cmd.keys_size() != 2) {
        return refuse(Status::invalid_argument("raw delete range needs a start and an end key"));
      }
      if (Status s = validate_key(cmd.keys(0), "start key"); !s.is_ok()) {
        return refuse(s);
      }
      if (Status s = validate_range(cmd.keys(0), cmd.keys(1), true); !s.is_ok()) {
        return refuse(s);
      }
      wb.delete_range(ColumnFamily::kRaw, cmd.keys(0), cmd.keys(1));
      return result;
    case KvCommand::CAS: {
      if (cmd.keys_size() != 1 || (!cmd.cas_delete() && cmd.values_size() != 1)) {
        return refuse(Status::invalid_argument("cas needs one key and a value (or delete)"));
      }
      const std::string& key = cmd.keys(0);
      RDB_ASSIGN_OR_RETURN(auto stored, read_cas_record(key));
      std::optional<std::string> new_value;
      if (!cmd.cas_delete()) {
        new_value = cmd.values(0);
      }
      RDB_ASSIGN_OR_RETURN(CasDecision d, decide_cas(stored, cmd.expected_version(), new_value));
      result.set_cas_succeeded(d.outcome.succeeded);
      result.set_cas_version(d.outcome.version);
      result.set_cas_current_found(d.outcome.current_found);
      result.set_cas_current_value(std::move(d.outcome.current_value));
      if (d.record_to_write) {
        wb.put(ColumnFamily::kCas, key, *d.record_to_write);
        overlay_[key] = std::move(*d.record_to_write);
      }
      return result;
    }
    case KvCommand::TXN: {
      // The region check (region_apply) looked at `keys`: they must cover the command.
      std::set<std::string_view> listed(cmd.keys().begin(), cmd.keys().end());
      for (const auto& k : TxnApplier::keys_of(cmd.txn())) {
        if (listed.count(k) == 0) {
          return refuse(Status::invalid_argument("a transactional command touches a key it does not list"));
        }
      }
      auto r = txn_.apply(cmd.txn(), wb);
      if (!r.is_ok()) {
        if (r.status().code() == StatusCode::kInvalidArgument) {
          return refuse(r.status());
        }
        return r.status();
      }
      *result.mutable_txn() = std::move(r).value();
      return result;
    }
    default:
      return refuse(Status::invalid_argument(fmt::format("unknown command type {}", static_cast<int>(cmd.type()))));
  }
}

}  // namespace rdb
