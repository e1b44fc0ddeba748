#include "storage/rocks_engine.h"

#include <fmt/format.h>
#include <rocksdb/db.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/sst_file_reader.h>
#include <rocksdb/sst_file_writer.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/options_util.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <filesystem>
#include <functional>

#include "common/limits.h"
#include "storage/cas_rule.h"
#include "storage/versioned_codec.h"

namespace rdb {
namespace {

constexpr const char* kCfDefault = "default";
constexpr const char* kCfCas = "cas";
constexpr const char* kCfMeta = "meta";
constexpr const char* kCfRaft = "raft";
constexpr const char* kCfTxnLock = "txn_lock";
constexpr const char* kCfTxnWrite = "txn_write";

rocksdb::Slice slice(std::string_view s) {
  return {s.data(), s.size()};
}

Status from_rocks(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) {
    return Status::ok();
  }
  if (s.IsCorruption()) {
    return ServerStatus::corruption(fmt::format("{}: {}", what, s.ToString()));
  }
  if (s.IsBusy() || s.IsTryAgain() || s.IsTimedOut()) {
    return ServerStatus::busy(fmt::format("{}: {}", what, s.ToString()));
  }
  if (s.IsInvalidArgument()) {
    return Status::invalid_argument(fmt::format("{}: {}", what, s.ToString()));
  }
  return ServerStatus::io_error(fmt::format("{}: {}", what, s.ToString()));
}

// RocksDB's view of RocksEngineOptions::raft_insert_hint_group.
class KeyGroupTransform final : public rocksdb::SliceTransform {
 public:
  explicit KeyGroupTransform(std::function<std::size_t(std::string_view)> group) : group_(std::move(group)) {}
  const char* Name() const override { return "rdb.KeyGroupTransform"; }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
    return {key.data(), group_(std::string_view(key.data(), key.size()))};
  }
  bool InDomain(const rocksdb::Slice& key) const override {
    return group_(std::string_view(key.data(), key.size())) > 0;
  }

 private:
  std::function<std::size_t(std::string_view)> group_;
};

}  // namespace

struct RocksEngine::Handles {
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> all;
  rocksdb::ColumnFamilyHandle* raw = nullptr;
  rocksdb::ColumnFamilyHandle* cas = nullptr;
  rocksdb::ColumnFamilyHandle* meta = nullptr;
  rocksdb::ColumnFamilyHandle* raft = nullptr;
  rocksdb::ColumnFamilyHandle* txn_lock = nullptr;
  rocksdb::ColumnFamilyHandle* txn_write = nullptr;
  rocksdb::WriteOptions write_options;
  // What the families were opened with: table files written for ingestion use it too.
  rocksdb::Options options;

  ~Handles() {
    for (auto* cf : all) {
      if (db) {
        db->DestroyColumnFamilyHandle(cf).PermitUncheckedError();
      }
    }
    if (db) {
      db->Close().PermitUncheckedError();
    }
  }
};

Result<std::unique_ptr<RocksEngine>> RocksEngine::open(const std::string& dir, const RocksEngineOptions& options) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_directory(dir, ec)) {
    return ServerStatus::io_error(fmt::format("data dir '{}' exists but is not a directory", dir));
  }
  fs::create_directories(dir, ec);
  if (ec) {
    return ServerStatus::io_error(fmt::format("cannot create data dir '{}': {}", dir, ec.message()));
  }

  rocksdb::Options db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.max_background_jobs = 2;
  db_options.keep_log_file_num = 5;
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(options.block_cache_bytes);
  rocksdb::ColumnFamilyOptions cf_options;
  cf_options.write_buffer_size = options.write_buffer_bytes;
  cf_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));

  std::vector<std::string> names = {kCfDefault, kCfCas, kCfMeta, kCfRaft, kCfTxnLock, kCfTxnWrite};
  std::vector<std::string> existing;
  if (rocksdb::DB::ListColumnFamilies(db_options, dir, &existing).ok()) {
    for (const auto& name : existing) {
      if (std::find(names.begin(), names.end(), name) == names.end()) {
        names.push_back(name);
      }
    }
  }
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  descriptors.reserve(names.size());
  for (const auto& name : names) {
    rocksdb::ColumnFamilyOptions family_options = cf_options;
    if (name == kCfRaft && options.raft_insert_hint_group) {
      family_options.memtable_insert_with_hint_prefix_extractor =
          std::make_shared<KeyGroupTransform>(options.raft_insert_hint_group);
    }
    descriptors.emplace_back(name, family_options);
  }

  auto handles = std::make_unique<Handles>();
  rocksdb::DB* raw_db = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(db_options, dir, descriptors, &handles->all, &raw_db);
  if (!s.ok()) {
    std::string text = s.ToString();
    if (text.find("lock") != std::string::npos || text.find("LOCK") != std::string::npos) {
      return ServerStatus::busy(fmt::format(
          "data dir '{}' is in use by another process (cannot lock {}/LOCK); stop that process or choose another "
          "--data-dir ({})",
          dir, dir, text));
    }
    return from_rocks(s, fmt::format("cannot open data dir '{}'", dir));
  }
  handles->db.reset(raw_db);
  handles->raw = handles->all[0];
  handles->cas = handles->all[1];
  handles->meta = handles->all[2];
  handles->raft = handles->all[3];
  handles->txn_lock = handles->all[4];
  handles->txn_write = handles->all[5];
  handles->write_options.sync = options.sync_writes;
  handles->options = rocksdb::Options(db_options, cf_options);
  return std::unique_ptr<RocksEngine>(new RocksEngine(dir, options, std::move(handles)));
}

RocksEngine::RocksEngine(std::string dir, const RocksEngineOptions& options, std::unique_ptr<Handles> handles)
    : dir_(std::move(dir)), options_(options), h_(std::move(handles)) {}

RocksEngine::~RocksEngine() = default;

std::mutex& RocksEngine::cas_lock_for(std::string_view key) {
  return cas_locks_[std::hash<std::string_view>{}(key) % kCasStripes];
}

Result<std::optional<std::string>> RocksEngine::get_from(rocksdb::ColumnFamilyHandle* cf, std::string_view key) {
  std::string value;
  rocksdb::Status s = h_->db->Get(rocksdb::ReadOptions(), cf, slice(key), &value);
  if (s.IsNotFound()) {
    return std::optional<std::string>();
  }
  RDB_RETURN_IF_ERROR(from_rocks(s, "get"));
  return std::optional<std::string>(std::move(value));
}

Result<std::optional<std::string>> RocksEngine::raw_get(std::string_view key) {
  RDB_RETURN_IF_ERROR(validate_key(key));
  return get_from(h_->raw, key);
}

Status RocksEngine::raw_put(std::string_view key, std::string_view value) {
  RDB_RETURN_IF_ERROR(validate_key(key));
  RDB_RETURN_IF_ERROR(validate_value(value));
  return from_rocks(h_->db->Put(h_->write_options, h_->raw, slice(key), slice(value)), "raw put");
}

Status RocksEngine::raw_delete(std::string_view key) {
  RDB_RETURN_IF_ERROR(validate_key(key));
  return from_rocks(h_->db->Delete(h_->write_options, h_->raw, slice(key)), "raw delete");
}

Result<std::vector<KvPair>> RocksEngine::raw_scan(const ScanOptions& o) {
  RDB_RETURN_IF_ERROR(validate_scan_limit(o.limit));
  RDB_RETURN_IF_ERROR(validate_range(o.start_key, o.end_key, /*end_required=*/false));
  rocksdb::ReadOptions read_options;
  // Bound the iterator so RocksDB can skip work outside the range.
  rocksdb::Slice lower = slice(o.start_key);
  rocksdb::Slice upper = slice(o.end_key);
  read_options.iterate_lower_bound = &lower;
  if (!o.end_key.empty()) {
    read_options.iterate_upper_bound = &upper;
  }
  std::unique_ptr<rocksdb::Iterator> it(h_->db->NewIterator(read_options, h_->raw));
  std::vector<KvPair> out;
  std::size_t bytes = 0;
  auto take = [&] {
    KvPair p;
    p.key = it->key().ToString();
    if (!o.keys_only) {
      p.value = it->value().ToString();
    }
    bytes += p.key.size() + p.value.size();
    out.push_back(std::move(p));
  };
  auto more = [&] { return it->Valid() && out.size() < o.limit && (o.max_bytes == 0 || bytes < o.max_bytes); };
  if (!o.reverse) {
    for (it->Seek(lower); more(); it->Next()) {
      take();
    }
  } else {
    for (it->SeekToLast(); more(); it->Prev()) {
      take();
    }
  }
  RDB_RETURN_IF_ERROR(from_rocks(it->status(), "raw scan"));
  return out;
}

Status RocksEngine::resume() {
  // RocksDB stops writing after an I/O error such as ENOSPC; Resume() retries once space returns.
  return from_rocks(h_->db->Resume(), "resume after a write error");
}

Result<std::vector<KvPair>> RocksEngine::raw_batch_get(const std::vector<std::string>& keys, std::size_t max_bytes) {
  RDB_RETURN_IF_ERROR(validate_batch_size(keys.size()));
  for (const auto& k : keys) {
    RDB_RETURN_IF_ERROR(validate_key(k));
  }
  constexpr std::size_t kGroup = 64;  // values read per MultiGet: bounds what is held beyond max_bytes
  std::vector<KvPair> out;
  std::size_t bytes = 0;
  for (std::size_t first = 0; first < keys.size(); first += kGroup) {
    std::size_t n = std::min(kGroup, keys.size() - first);
    std::vector<rocksdb::Slice> slices(keys.begin() + static_cast<std::ptrdiff_t>(first),
                                       keys.begin() + static_cast<std::ptrdiff_t>(first + n));
    std::vector<rocksdb::ColumnFamilyHandle*> cfs(n, h_->raw);
    std::vector<std::string> values;
    std::vector<rocksdb::Status> statuses = h_->db->MultiGet(rocksdb::ReadOptions(), cfs, slices, &values);
    for (std::size_t i = 0; i < n; ++i) {
      if (statuses[i].IsNotFound()) {
        continue;
      }
      RDB_RETURN_IF_ERROR(from_rocks(statuses[i], "raw batch get"));
      bytes += keys[first + i].size() + values[i].size();
      if (max_bytes > 0 && bytes > max_bytes) {
        return Status::invalid_argument(
            fmt::format("the requested keys hold more than {} MiB, the bound of one response: ask for fewer keys",
                        max_bytes >> 20));
      }
      out.push_back({keys[first + i], std::move(values[i])});
    }
  }
  return out;
}

Status RocksEngine::raw_batch_put(const std::vector<KvPair>& pairs) {
  RDB_RETURN_IF_ERROR(validate_batch_size(pairs.size()));
  rocksdb::WriteBatch batch;
  for (const auto& p : pairs) {
    RDB_RETURN_IF_ERROR(validate_key(p.key));
    RDB_RETURN_IF_ERROR(validate_value(p.value));
    RDB_RETURN_IF_ERROR(from_rocks(batch.Put(h_->raw, p.key, p.value), "raw batch put"));
  }
  return from_rocks(h_->db->Write(h_->write_options, &batch), "raw batch put");
}

Status RocksEngine::raw_batch_delete(const std::vector<std::string>& keys) {
  RDB_RETURN_IF_ERROR(validate_batch_size(keys.size()));
  rocksdb::WriteBatch batch;
  for (const auto& k : keys) {
    RDB_RETURN_IF_ERROR(validate_key(k));
    RDB_RETURN_IF_ERROR(from_rocks(batch.Delete(h_->raw, k), "raw batch delete"));
  }
  return from_rocks(h_->db->Write(h_->write_options, &batch), "raw batch delete");
}

Status RocksEngine::raw_delete_range(std::string_view start_key, std::string_view end_key) {
  RDB_RETURN_IF_ERROR(validate_key(start_key, "start key"));
  RDB_RETURN_IF_ERROR(validate_range(start_key, end_key, /*end_required=*/true));
  return from_rocks(h_->db->DeleteRange(h_->write_options, h_->raw, slice(start_key), slice(end_key)),
                    "raw delete range");
}

Result<VersionedValue> RocksEngine::get(std::string_view key) {
  RDB_RETURN_IF_ERROR(validate_key(key));
  RDB_ASSIGN_OR_RETURN(auto bytes, get_from(h_->cas, key));
  VersionedValue out;
  if (!bytes) {
    return out;
  }
  RDB_ASSIGN_OR_RETURN(VersionedRecord rec, decode_versioned(*bytes));
  if (!rec.tombstone) {
    out.found = true;
    out.version = rec.version;
    out.value = std::move(rec.value);
  }
  return out;
}

Result<CasOutcome> RocksEngine::compare_and_swap(std::string_view key, std::uint64_t expected_version,
                                                 const std::optional<std::string>& new_value) {
  RDB_RETURN_IF_ERROR(validate_key(key));
  if (new_value) {
    RDB_RETURN_IF_ERROR(validate_value(*new_value));
  }
  std::lock_guard lock(cas_lock_for(key));
  RDB_ASSIGN_OR_RETURN(auto stored, get_from(h_->cas, key));
  RDB_ASSIGN_OR_RETURN(CasDecision d, decide_cas(stored, expected_version, new_value));
  if (d.record_to_write) {
    RDB_RETURN_IF_ERROR(
        from_rocks(h_->db->Put(h_->write_options, h_->cas, slice(key), slice(*d.record_to_write)), "compare and swap"));
  }
  return std::move(d.outcome);
}

Result<std::optional<std::string>> RocksEngine::meta_get(std::string_view key) {
  return get_from(h_->meta, key);
}

Status RocksEngine::meta_put(std::string_view key, std::string_view value) {
  rocksdb::WriteOptions sync_always;
  sync_always.sync = true;  // bookkeeping (id and TSO bounds) must never be lost
  return from_rocks(h_->db->Put(sync_always, h_->meta, slice(key), slice(value)), "meta put");
}

Result<std::vector<KvPair>> RocksEngine::meta_scan_prefix(std::string_view prefix) {
  std::unique_ptr<rocksdb::Iterator> it(h_->db->NewIterator(rocksdb::ReadOptions(), h_->meta));
  std::vector<KvPair> out;
  for (it->Seek(slice(prefix)); it->Valid() && it->key().starts_with(slice(prefix)); it->Next()) {
    out.push_back({it->key().ToString(), it->value().ToString()});
  }
  RDB_RETURN_IF_ERROR(from_rocks(it->status(), "meta scan"));
  return out;
}

rocksdb::ColumnFamilyHandle* RocksEngine::handle(ColumnFamily cf) const {
  switch (cf) {
    case ColumnFamily::kRaw:
      return h_->raw;
    case ColumnFamily::kCas:
      return h_->cas;
    case ColumnFamily::kMeta:
      return h_->meta;
    case ColumnFamily::kRaft:
      return h_->raft;
    case ColumnFamily::kTxnLock:
      return h_->txn_lock;
    case ColumnFamily::kTxnWrite:
      return h_->txn_write;
  }
  return h_->raw;
}

Status RocksEngine::write(const WriteBatch& batch, bool sync) {
  rocksdb::WriteBatch wb;
  for (const auto& w : batch.writes()) {
    rocksdb::ColumnFamilyHandle* cf = handle(w.cf);
    rocksdb::Status s;
    switch (w.op) {
      case WriteBatch::Op::kPut:
        s = wb.Put(cf, w.key, w.value);
        break;
      case WriteBatch::Op::kDelete:
        s = wb.Delete(cf, w.key);
        break;
      case WriteBatch::Op::kDeleteRange:
        if (w.cf == ColumnFamily::kRaft && options_.raft_insert_hint_group && options_.raft_insert_hint_group(w.key)) {
          return Status::invalid_argument(
              "write batch: a range deletion in the raft family starts inside an insert-hint group (it would "
              "corrupt RocksDB's hints); start it at a key in no group");
        }
        s = wb.DeleteRange(cf, w.key, w.value);
        break;
    }
    RDB_RETURN_IF_ERROR(from_rocks(s, "write batch"));
  }
  rocksdb::WriteOptions options;
  options.sync = sync;
  return from_rocks(h_->db->Write(options, &wb), "write batch");
}

Result<std::optional<std::string>> RocksEngine::get_cf(ColumnFamily cf, std::string_view key) {
  return get_from(handle(cf), key);
}

Result<std::vector<KvPair>> RocksEngine::scan_cf(ColumnFamily cf, std::string_view start, std::string_view end,
                                                 std::size_t limit) {
  rocksdb::ReadOptions read_options;
  rocksdb::Slice upper = slice(end);
  if (!end.empty()) {
    read_options.iterate_upper_bound = &upper;
  }
  std::unique_ptr<rocksdb::Iterator> it(h_->db->NewIterator(read_options, handle(cf)));
  std::vector<KvPair> out;
  for (it->Seek(slice(start)); it->Valid() && (limit == 0 || out.size() < limit); it->Next()) {
    out.push_back({it->key().ToString(), it->value().ToString()});
  }
  RDB_RETURN_IF_ERROR(from_rocks(it->status(), "scan"));
  return out;
}

namespace {

class RocksSnapshot final : public EngineSnapshot {
 public:
  RocksSnapshot(rocksdb::DB* db) : db_(db), snap_(db->GetSnapshot()) {}
  ~RocksSnapshot() override { db_->ReleaseSnapshot(snap_); }
  RocksSnapshot(const RocksSnapshot&) = delete;
  RocksSnapshot& operator=(const RocksSnapshot&) = delete;
  const rocksdb::Snapshot* get() const { return snap_; }

 private:
  rocksdb::DB* db_;
  const rocksdb::Snapshot* snap_;
};

}  // namespace

std::shared_ptr<const EngineSnapshot> RocksEngine::snapshot() {
  return std::make_shared<RocksSnapshot>(h_->db.get());
}

Result<SstInfo> RocksEngine::export_sst(const EngineSnapshot& view, ColumnFamily cf, std::string_view start,
                                        std::string_view end, const std::string& path) {
  rocksdb::ReadOptions read_options;
  read_options.snapshot = dynamic_cast<const RocksSnapshot&>(view).get();
  read_options.fill_cache = false;  // a one-off pass over the whole range
  rocksdb::Slice upper = slice(end);
  read_options.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(h_->db->NewIterator(read_options, handle(cf)));
  it->Seek(slice(start));
  if (!it->Valid()) {
    RDB_RETURN_IF_ERROR(from_rocks(it->status(), "snapshot export"));
    return SstInfo{};
  }
  rocksdb::SstFileWriter writer(rocksdb::EnvOptions(), h_->options, handle(cf));
  RDB_RETURN_IF_ERROR(from_rocks(writer.Open(path), fmt::format("cannot create table file '{}'", path)));
  SstInfo info;
  for (; it->Valid(); it->Next()) {
    RDB_RETURN_IF_ERROR(from_rocks(writer.Put(it->key(), it->value()), fmt::format("writing '{}'", path)));
    ++info.keys;
  }
  RDB_RETURN_IF_ERROR(from_rocks(it->status(), "snapshot export"));
  rocksdb::ExternalSstFileInfo file;
  RDB_RETURN_IF_ERROR(from_rocks(writer.Finish(&file), fmt::format("finishing '{}'", path)));
  info.bytes = file.file_size;
  return info;
}

Status RocksEngine::visit_range(const EngineSnapshot& view, const std::vector<ColumnFamily>& cfs,
                                std::string_view start, std::string_view end, const RangeVisitor& visit) {
  rocksdb::ReadOptions read_options;
  read_options.snapshot = dynamic_cast<const RocksSnapshot&>(view).get();
  read_options.fill_cache = false;  // a one-off pass over the whole range
  rocksdb::Slice upper = slice(end);
  read_options.iterate_upper_bound = end.empty() ? nullptr : &upper;
  std::vector<std::unique_ptr<rocksdb::Iterator>> its;
  for (ColumnFamily cf : cfs) {
    its.emplace_back(h_->db->NewIterator(read_options, handle(cf)));
    its.back()->Seek(slice(start));
  }
  for (;;) {
    // The family whose next key is smallest goes first (a handful of families: a linear pick).
    std::size_t next = its.size();
    for (std::size_t i = 0; i < its.size(); ++i) {
      if (its[i]->Valid() && (next == its.size() || its[i]->key().compare(its[next]->key()) < 0)) {
        next = i;
      }
    }
    if (next == its.size()) {
      break;
    }
    auto& it = its[next];
    if (!visit(cfs[next], std::string_view(it->key().data(), it->key().size()),
               std::string_view(it->value().data(), it->value().size()))) {
      return Status::ok();
    }
    it->Next();
  }
  for (auto& it : its) {
    RDB_RETURN_IF_ERROR(from_rocks(it->status(), "range walk"));
  }
  return Status::ok();
}

Status RocksEngine::read_sst(const std::string& path, const SstVisitor& visit) {
  rocksdb::SstFileReader reader(h_->options);
  RDB_RETURN_IF_ERROR(from_rocks(reader.Open(path), fmt::format("table file '{}'", path)));
  RDB_RETURN_IF_ERROR(from_rocks(reader.VerifyChecksum(), fmt::format("table file '{}'", path)));
  auto props = reader.GetTableProperties();
  if (props && props->num_range_deletions > 0) {
    return Status::invalid_argument(fmt::format("table file '{}' holds range deletions", path));
  }
  rocksdb::ReadOptions read_options;
  read_options.fill_cache = false;
  read_options.verify_checksums = true;
  std::unique_ptr<rocksdb::Iterator> it(reader.NewIterator(read_options));
  std::uint64_t seen = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    RDB_RETURN_IF_ERROR(visit(std::string_view(it->key().data(), it->key().size()),
                              std::string_view(it->value().data(), it->value().size())));
    ++seen;
  }
  RDB_RETURN_IF_ERROR(from_rocks(it->status(), fmt::format("table file '{}'", path)));
  if (props && seen != props->num_entries) {
    // Deletions or merges: an exported snapshot holds only values.
    return Status::invalid_argument(
        fmt::format("table file '{}' holds {} entries but {} values", path, props->num_entries, seen));
  }
  return Status::ok();
}

Status RocksEngine::ingest_sst(const std::vector<std::pair<ColumnFamily, std::string>>& files) {
  namespace fs = std::filesystem;
  // RocksDB removes what it moves in; ingest hard links, so the caller's files stay
  // until it deletes them (a crash mid-way can then ingest them again).
  std::vector<rocksdb::IngestExternalFileArg> args;
  std::vector<std::string> links;
  auto remove_links = [&links] {
    for (const auto& l : links) {
      std::error_code ec;
      fs::remove(l, ec);
    }
  };
  for (const auto& [cf, path] : files) {
    std::string link = path + ".ingest";
    std::error_code ec;
    fs::remove(link, ec);
    fs::create_hard_link(path, link, ec);
    if (ec) {
      remove_links();
      return ServerStatus::io_error(fmt::format("cannot link '{}' for ingestion: {}", path, ec.message()));
    }
    links.push_back(link);
    rocksdb::IngestExternalFileArg arg;
    arg.column_family = handle(cf);
    arg.external_files = {link};
    arg.options.move_files = true;
    arg.options.snapshot_consistency = true;
    arg.options.allow_global_seqno = true;
    arg.options.allow_blocking_flush = true;
    // Never rewrite the file in place: it is a hard link to the caller's, which must stay intact.
    arg.options.write_global_seqno = false;
    arg.options.verify_checksums_before_ingest = true;
    args.push_back(std::move(arg));
  }
  if (args.empty()) {
    return Status::ok();
  }
  Status s = from_rocks(h_->db->IngestExternalFiles(args), "ingesting snapshot files");
  remove_links();
  return s;
}

std::uint64_t RocksEngine::estimate_num_keys() const {
  return int_property_total("rocksdb.estimate-num-keys");
}

std::uint64_t RocksEngine::int_property_total(const std::string& property) const {
  std::uint64_t total = 0;
  for (auto* cf : h_->all) {
    std::uint64_t n = 0;
    if (h_->db->GetIntProperty(cf, property, &n)) {
      total += n;
    }
  }
  return total;
}

}  // namespace rdb
