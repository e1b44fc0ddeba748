#include "etcd/keys.h"

#include "common/limits.h"

namespace rdb::etcd {
namespace {

std::string big_endian(std::uint64_t v) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i) {
    out[static_cast<std::size_t>(i)] = static_cast<char>(v & 0xFF);
    v >>= 8;
  }
  return out;
}

std::uint64_t from_big_endian(std::string_view s) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < 8 && i < s.size(); ++i) {
    v = (v << 8) | static_cast<unsigned char>(s[i]);
  }
  return v;
}

// The first key after every key starting with `p` ("" if none: p is all 0xFF).
std::string prefix_end(std::string p) {
  while (!p.empty() && static_cast<unsigned char>(p.back()) == 0xFF) {
    p.pop_back();
  }
  if (!p.empty()) {
    p.back() = static_cast<char>(static_cast<unsigned char>(p.back()) + 1);
  }
  return p;
}

}  // namespace

KeyLayout::KeyLayout(std::string_view ns) {
  base_.push_back('\xFF');
  base_.append(ns);
  base_.push_back('\0');
}

std::string KeyLayout::prefix(char kind) const {
  return base_ + kind;
}

std::size_t KeyLayout::max_key_size() const {
  return kMaxKeySize - base_.size() - 1;
}

std::string KeyLayout::data_key(std::string_view etcd_key) const {
  std::string out = prefix('k');
  out.append(etcd_key);
  return out;
}

std::string KeyLayout::etcd_key(std::string_view data_key) const {
  return std::string(data_key.substr(base_.size() + 1));
}

std::pair<std::string, std::string> KeyLayout::data_range(const EtcdRange& r) const {
  const std::string p = prefix('k');
  if (r.range_end == std::string(1, '\0')) {
    return {data_key(r.key == std::string(1, '\0') ? std::string() : r.key), prefix_end(p)};
  }
  return {data_key(r.key), data_key(r.range_end)};
}

bool KeyLayout::contains(const EtcdRange& r, std::string_view etcd_key) {
  if (r.single()) {
    return etcd_key == r.key;
  }
  bool from_start = r.key == std::string(1, '\0') && r.range_end == std::string(1, '\0');
  if (!from_start && etcd_key < std::string_view(r.key)) {
    return false;
  }
  return r.range_end == std::string(1, '\0') || etcd_key < std::string_view(r.range_end);
}

std::string KeyLayout::lease_key(std::int64_t id) const {
  return prefix('l') + big_endian(static_cast<std::uint64_t>(id));
}

std::pair<std::string, std::string> KeyLayout::lease_range() const {
  return {prefix('l'), prefix_end(prefix('l'))};
}

std::int64_t KeyLayout::lease_id(std::string_view lease_key) const {
  return static_cast<std::int64_t>(from_big_endian(lease_key.substr(base_.size() + 1)));
}

std::string KeyLayout::attached_key(std::int64_t id, std::string_view etcd_key) const {
  std::string out = prefix('a') + big_endian(static_cast<std::uint64_t>(id));
  out.append(etcd_key);
  return out;
}

std::pair<std::string, std::string> KeyLayout::attached_range(std::int64_t id) const {
  std::string p = prefix('a') + big_endian(static_cast<std::uint64_t>(id));
  return {p, prefix_end(p)};
}

std::string KeyLayout::attached_etcd_key(std::string_view attached_key) const {
  return std::string(attached_key.substr(base_.size() + 1 + 8));
}

std::string KeyLayout::member_key(std::uint64_t id) const {
  return prefix('m') + big_endian(id);
}

std::pair<std::string, std::string> KeyLayout::member_range() const {
  return {prefix('m'), prefix_end(prefix('m'))};
}

}  // namespace rdb::etcd
