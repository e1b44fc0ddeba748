#include "server/mvcc_reader.h"

#include <fmt/format.h>

#include <algorithm>

#include "storage/mvcc_codec.h"

namespace rdb {
namespace {

constexpr std::size_t kVersionChunk = 16;
constexpr std::size_t kLockChunk = 256;
constexpr std::uint64_t kMaxTs = ~std::uint64_t{0};

Result<txnpb::WriteRecord> parse_write(const KvPair& kv) {
  txnpb::WriteRecord w;
  if (!w.ParseFromString(kv.value)) {
    return ServerStatus::corruption("a transactional write record does not parse");
  }
  return w;
}

Result<txnpb::LockRecord> parse_lock(std::string_view bytes) {
  txnpb::LockRecord l;
  if (!l.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return ServerStatus::corruption("a transactional lock record does not parse");
  }
  return l;
}

}  // namespace

void BatchOverlaySource::put(ColumnFamily cf, std::string key, std::string value, WriteBatch& wb) {
  wb.put(cf, key, value);
  pending_[{cf, std::move(key)}] = std::move(value);
}

void BatchOverlaySource::del(ColumnFamily cf, std::string key, WriteBatch& wb) {
  wb.del(cf, key);
  pending_[{cf, std::move(key)}] = std::nullopt;
}

Result<std::optional<std::string>> BatchOverlaySource::get(ColumnFamily cf, std::string_view key) {
  if (auto it = pending_.find({cf, std::string(key)}); it != pending_.end()) {
    return it->second;
  }
  return engine_.get_cf(cf, key);
}

Result<std::vector<KvPair>> BatchOverlaySource::scan(ColumnFamily cf, std::string_view start, std::string_view end,
                                                     std::size_t limit) {
  RDB_ASSIGN_OR_RETURN(auto stored, engine_.scan_cf(cf, start, end, limit));
  std::map<std::string, std::optional<std::string>> merged;
  for (auto& kv : stored) {
    merged[std::move(kv.key)] = std::move(kv.value);
  }
  for (auto it = pending_.lower_bound({cf, std::string(start)}); it != pending_.end() && it->first.first == cf; ++it) {
    if (!end.empty() && it->first.second >= end) {
      break;
    }
    merged[it->first.second] = it->second;
  }
  std::vector<KvPair> out;
  for (auto& [k, v] : merged) {
    if (out.size() == limit) {
      break;
    }
    if (v) {
      out.push_back({k, std::move(*v)});
    }
  }
  return out;
}

txnpb::LockInfo MvccReader::lock_info(const std::string& key, const txnpb::LockRecord& lock) {
  txnpb::LockInfo info;
  info.set_primary_lock(lock.primary());
  info.set_lock_version(lock.start_ts());
  info.set_key(key);
  info.set_lock_ttl(lock.ttl_ms());
  info.set_txn_size(lock.txn_size());
  info.set_lock_type(lock.op());
  return info;
}

Result<std::optional<txnpb::LockRecord>> MvccReader::lock(const std::string& key) {
  RDB_ASSIGN_OR_RETURN(auto bytes, source_.get(ColumnFamily::kTxnLock, key));
  if (!bytes) {
    return std::optional<txnpb::LockRecord>();
  }
  RDB_ASSIGN_OR_RETURN(auto l, parse_lock(*bytes));
  return std::optional<txnpb::LockRecord>(std::move(l));
}

Result<std::optional<MvccVersion>> MvccReader::newest_version(const std::string& key, std::uint64_t max_ts,
                                                              bool data_only) {
  std::string from = mvcc::write_key(key, max_ts);
  const std::string end = mvcc::versions_of(key).second;
  for (;;) {
    RDB_ASSIGN_OR_RETURN(auto chunk, source_.scan(ColumnFamily::kTxnWrite, from, end, kVersionChunk));
    for (const auto& kv : chunk) {
      RDB_ASSIGN_OR_RETURN(auto wk, mvcc::parse_write_key(kv.key));
      RDB_ASSIGN_OR_RETURN(auto w, parse_write(kv));
      if (!data_only || w.op() == txnpb::PUT || w.op() == txnpb::DEL) {
        return std::optional<MvccVersion>(MvccVersion{wk.commit_ts, std::move(w)});
      }
    }
    if (chunk.size() < kVersionChunk) {
      return std::optional<MvccVersion>();
    }
    from = chunk.back().key + '\0';
  }
}

Result<std::optional<MvccVersion>> MvccReader::version_of_txn(const std::string& key, std::uint64_t start_ts) {
  // Its commit (or rollback, at start_ts itself) is at or after start_ts: newest first, down to start_ts.
  std::string from = mvcc::write_key(key, kMaxTs);
  const std::string end = mvcc::write_key(key, start_ts) + '\0';
  for (;;) {
    RDB_ASSIGN_OR_RETURN(auto chunk, source_.scan(ColumnFamily::kTxnWrite, from, end, kVersionChunk));
    for (const auto& kv : chunk) {
      RDB_ASSIGN_OR_RETURN(auto wk, mvcc::parse_write_key(kv.key));
      RDB_ASSIGN_OR_RETURN(auto w, parse_write(kv));
      if (w.start_ts() == start_ts) {
        return std::optional<MvccVersion>(MvccVersion{wk.commit_ts, std::move(w)});
      }
    }
    if (chunk.size() < kVersionChunk) {
      return std::optional<MvccVersion>();
    }
    from = chunk.back().key + '\0';
  }
}

Result<MvccRead> MvccReader::get(const std::string& key, std::uint64_t ts) {
  MvccRead out;
  // The lock first: a transaction that commits before `ts` held its lock when `ts`
  // was handed out, so either the lock or the commit is seen.
  RDB_ASSIGN_OR_RETURN(auto l, lock(key));
  if (l && l->start_ts() <= ts && l->op() != txnpb::LOCK && !ignore_locks_) {
    out.locked = lock_info(key, *l);
    return out;
  }
  RDB_ASSIGN_OR_RETURN(auto v, newest_version(key, ts, true));
  if (v && v->record.op() == txnpb::PUT) {
    out.found = true;
    out.value = std::move(*v->record.mutable_value());
    out.commit_ts = v->commit_ts;
  }
  return out;
}

Result<std::vector<txnpb::LockInfo>> MvccReader::scan_locks(const std::string& start, const std::string& end,
                                                            std::uint64_t max_ts, std::uint32_t limit) {
  std::vector<txnpb::LockInfo> out;
  std::string from = start;
  for (;;) {
    RDB_ASSIGN_OR_RETURN(auto chunk, source_.scan(ColumnFamily::kTxnLock, from, end, kLockChunk));
    for (const auto& kv : chunk) {
      RDB_ASSIGN_OR_RETURN(auto l, parse_lock(kv.value));
      if (l.start_ts() <= max_ts) {
        out.push_back(lock_info(kv.key, l));
        if (out.size() == limit) {
          return out;
        }
      }
    }
    if (chunk.size() < kLockChunk) {
      return out;
    }
    from = chunk.back().key + '\0';
  }
}

Result<std::optional<txnpb::LockInfo>> MvccReader::blocking_lock(const std::string& start, const std::string& end,
                                                                 std::uint64_t ts) {
  std::string from = start;
  for (;;) {
    RDB_ASSIGN_OR_RETURN(auto chunk, source_.scan(ColumnFamily::kTxnLock, from, end, kLockChunk));
    for (const auto& kv : chunk) {
      RDB_ASSIGN_OR_RETURN(auto l, parse_lock(kv.value));
      if (l.start_ts() <= ts && l.op() != txnpb::LOCK) {
        return std::optional<txnpb::LockInfo>(lock_info(kv.key, l));
      }
    }
    if (chunk.size() < kLockChunk) {
      return std::optional<txnpb::LockInfo>();
    }
    from = chunk.back().key + '\0';
  }
}

Result<MvccReader::ScanResult> MvccReader::scan(const std::string& start, const std::string& end, std::uint64_t ts,
                                                std::uint32_t limit, bool keys_only, std::size_t max_bytes) {
  ScanResult out;
  if (!ignore_locks_) {
    RDB_ASSIGN_OR_RETURN(out.locked, blocking_lock(start, end, ts));
    if (out.locked) {
      return out;
    }
  }
  auto [from, stop] = mvcc::family_range(ColumnFamily::kTxnWrite, start, end);
  std::size_t bytes = 0;
  while (out.pairs.size() < limit) {
    RDB_ASSIGN_OR_RETURN(auto chunk, source_.scan(ColumnFamily::kTxnWrite, from, stop, kVersionChunk));
    if (chunk.empty()) {
      return out;
    }
    std::string next_from = chunk.back().key + '\0';
    for (const auto& kv : chunk) {
      RDB_ASSIGN_OR_RETURN(auto wk, mvcc::parse_write_key(kv.key));
      if (wk.commit_ts > ts) {
        continue;  // committed after the snapshot: an older version decides
      }
      RDB_ASSIGN_OR_RETURN(auto w, parse_write(kv));
      if (w.op() != txnpb::PUT && w.op() != txnpb::DEL) {
        continue;
      }
      // This version decides the key: skip its older ones.
      next_from = mvcc::versions_of(wk.user_key).second;
      if (w.op() == txnpb::PUT) {
        bytes += wk.user_key.size() + (keys_only ? 0 : w.value().size());
        out.pairs.push_back(
            {std::move(wk.user_key), keys_only ? std::string() : std::move(*w.mutable_value()), wk.commit_ts});
        if (out.pairs.size() == limit) {
          return out;
        }
        if (max_bytes > 0 && bytes >= max_bytes) {
          out.truncated = true;
          return out;
        }
      }
      break;
    }
    from = std::move(next_from);
  }
  return out;
}

Result<MvccReader::ChangesResult> MvccReader::scan_changes(const std::string& start, const std::string& end,
                                                           std::uint64_t from_ts, std::uint64_t to_ts,
                                                           std::uint32_t limit, bool with_prev, std::size_t max_bytes) {
  ChangesResult out;
  if (!ignore_locks_) {
    RDB_ASSIGN_OR_RETURN(out.locked, blocking_lock(start, end, to_ts));
    if (out.locked) {
      return out;
    }
  }
  auto [from, stop] = mvcc::family_range(ColumnFamily::kTxnWrite, start, end);
  std::size_t bytes = 0;
  // One key at a time: its versions come newest first.
  std::string key;
  std::vector<Change> window;     // this key's changes in (from_ts, to_ts], newest first
  std::optional<MvccPair> below;  // its newest data version at or below from_ts
  bool key_done = false;
  auto finish_key = [&] {
    // Oldest first, each replacing the one before it (the first, what was below the window).
    std::optional<MvccPair> prev = below;
    for (auto it = window.rbegin(); it != window.rend(); ++it) {
      if (with_prev) {
        it->prev = prev;
      }
      prev = it->deleted ? std::nullopt : std::optional<MvccPair>(MvccPair{it->key, it->value, it->commit_ts});
      bytes += it->key.size() + it->value.size() + (it->prev ? it->prev->value.size() : 0);
      out.changes.push_back(std::move(*it));
    }
    window.clear();
    below.reset();
  };
  for (;;) {
    RDB_ASSIGN_OR_RETURN(auto chunk, source_.scan(ColumnFamily::kTxnWrite, from, stop, kVersionChunk));
    if (chunk.empty()) {
      break;
    }
    std::string next_from = chunk.back().key + '\0';
    bool jumped = false;
    for (const auto& kv : chunk) {
      RDB_ASSIGN_OR_RETURN(auto wk, mvcc::parse_write_key(kv.key));
      if (wk.user_key != key) {
        if (!key.empty()) {
          finish_key();
          if (out.changes.size() >= limit || (max_bytes > 0 && bytes >= max_bytes)) {
            out.truncated = true;
            out.next_key = key + '\0';
            return out;
          }
        }
        key = wk.user_key;
        key_done = false;
      }
      if (key_done || wk.commit_ts > to_ts) {
        continue;
      }
      RDB_ASSIGN_OR_RETURN(auto w, parse_write(kv));
      if (w.op() != txnpb::PUT && w.op() != txnpb::DEL) {
        continue;  // a lock-only commit or a rollback: no change
      }
      if (wk.commit_ts > from_ts) {
        Change c;
        c.key = key;
        c.commit_ts = wk.commit_ts;
        c.deleted = w.op() == txnpb::DEL;
        if (!c.deleted) {
          c.value = std::move(*w.mutable_value());
        }
        window.push_back(std::move(c));
        continue;
      }
      // The first data version at or below from_ts: what the oldest change replaced.
      if (w.op() == txnpb::PUT) {
        below = MvccPair{key, std::move(*w.mutable_value()), wk.commit_ts};
      }
      key_done = true;
      // Nothing older matters: go on at the next key.
      next_from = mvcc::versions_of(key).second;
      jumped = true;
      break;
    }
    if (!jumped && chunk.size() < kVersionChunk) {
      break;
    }
    from = std::move(next_from);
  }
  if (!key.empty()) {
    finish_key();
  }
  return out;
}

}  // namespace rdb
