// How the transactional key space lays out its keys, and which column families hold
// a region's data.
//
// "txn_lock" is keyed by the user key itself. "txn_write" holds one record per
// version: memcomparable(user key) followed by the commit timestamp inverted and
// big-endian, so a key's versions sit together, newest first, and the encoded keys
// sort exactly as the user keys do (a user key that is a prefix of another still
// sorts, with all its versions, before it). A region's part of "txn_write" is
// therefore [encode_key(start), encode_key(end)).
//
// memcomparable: the key in groups of 8 bytes, the last group padded with zeros; each
// group is followed by a marker byte, 0xFF for a full group that more follow, and
// 0xFF - padding for the last one (a key whose length is a multiple of 8 ends with an
// all-padding group). The last marker is therefore in [0xF7, 0xFE].
// Thread safety: pure functions.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "common/result.h"
#include "storage/write_batch.h"

namespace rdb::mvcc {

std::string encode_key(std::string_view user_key);
// Decodes the encode_key() output at the start of `encoded`; `rest` gets what follows it.
Result<std::string> decode_key(std::string_view encoded, std::string_view* rest);

// The "txn_write" key of `user_key`'s version committed at `commit_ts`.
std::string write_key(std::string_view user_key, std::uint64_t commit_ts);
struct WriteKey {
  std::string user_key;
  std::uint64_t commit_ts = 0;
};
Result<WriteKey> parse_write_key(std::string_view key);
// [first, end) of every "txn_write" key of `user_key`, newest version first.
std::pair<std::string, std::string> versions_of(std::string_view user_key);

// The column families that hold a region's data (split, snapshot, destroy walk them).
inline constexpr std::array<ColumnFamily, 4> kDataFamilies = {ColumnFamily::kRaw, ColumnFamily::kCas,
                                                              ColumnFamily::kTxnLock, ColumnFamily::kTxnWrite};
// The keys of family `cf` that belong to the user range [start, end) ("" = unbounded:
// then `end` is a bound above every key the family can hold).
std::pair<std::string, std::string> family_range(ColumnFamily cf, std::string_view start, std::string_view end);
// The user key a family's stored key stands for (itself, except in "txn_write").
Result<std::string> user_key_of(ColumnFamily cf, std::string_view stored_key);

}  // namespace rdb::mvcc
