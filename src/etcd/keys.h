// Where the etcd gateway keeps etcd's data in rdb's transactional key space.
//
// Every gateway of one namespace (--namespace, default "etcd") uses the same layout,
// so any number of them serve one etcd key space; two namespaces never overlap:
//   0xFF ns 0x00 'k' KEY            an etcd key: an etcdgw.KeyRecord
//   0xFF ns 0x00 'l' ID(8, BE)      a lease: an etcdgw.LeaseRecord
//   0xFF ns 0x00 'a' ID(8, BE) KEY  a key attached to that lease (empty value)
//   0xFF ns 0x00 'm' ID(8, BE)      a gateway listed by MemberList: an etcdgw.MemberRecord
// 0xFF first keeps them after the keys people usually give the transactional API.
// Thread safety: immutable after construction.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "common/result.h"

namespace rdb::etcd {

// An etcd range as etcd's API gives it: [key, range_end), with range_end "" = only key and
// range_end "\0" = every key from `key` on (key "\0" too: the whole key space).
struct EtcdRange {
  std::string key;
  std::string range_end;
  bool single() const { return range_end.empty(); }
};

class KeyLayout {
 public:
  explicit KeyLayout(std::string_view ns);

  // The longest etcd key the gateway accepts (rdb's key limit less the prefix).
  std::size_t max_key_size() const;

  std::string data_key(std::string_view etcd_key) const;
  // The etcd key of a data key (which must carry this layout's data prefix).
  std::string etcd_key(std::string_view data_key) const;
  // The transactional range [start, end) holding an etcd range's keys (not for single()).
  std::pair<std::string, std::string> data_range(const EtcdRange& r) const;
  // Whether an etcd key falls in an etcd range.
  static bool contains(const EtcdRange& r, std::string_view etcd_key);

  std::string lease_key(std::int64_t id) const;
  std::pair<std::string, std::string> lease_range() const;
  std::int64_t lease_id(std::string_view lease_key) const;
  std::string attached_key(std::int64_t id, std::string_view etcd_key) const;
  std::pair<std::string, std::string> attached_range(std::int64_t id) const;
  std::string attached_etcd_key(std::string_view attached_key) const;

  std::string member_key(std::uint64_t id) const;
  std::pair<std::string, std::string> member_range() const;

 private:
  std::string prefix(char kind) const;
  std::string base_;  // 0xFF ns 0x00
};

}  // namespace rdb::etcd
