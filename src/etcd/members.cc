#include "etcd/members.h"

#include <spdlog/spdlog.h>

#include "etcdgw.pb.h"

namespace rdb::etcd {

std::uint64_t member_id_of(const std::string& client_url) {
  std::uint64_t h = 14695981039346656037ULL;  // FNV-1a
  for (unsigned char c : client_url) {
    h = (h ^ c) * 1099511628211ULL;
  }
  return h == 0 ? 1 : h;
}

MemberRegistry::MemberRegistry(RdbClient& client, const KeyLayout& layout, std::chrono::milliseconds renew,
                               std::chrono::milliseconds ttl)
    : client_(client), layout_(layout), renew_(renew), ttl_(ttl) {}

MemberRegistry::~MemberRegistry() {
  stop();
}

Status MemberRegistry::renew_once() {
  RDB_ASSIGN_OR_RETURN(auto t, client_.begin());
  etcdgw::MemberRecord rec;
  rec.set_name(name_);
  rec.set_client_url(client_url_);
  rec.set_expires_ms(tso_physical_ms(t->start_ts()) + static_cast<std::uint64_t>(ttl_.count()));
  RDB_RETURN_IF_ERROR(t->put(layout_.member_key(self_id_.load()), rec.SerializeAsString()));
  return t->commit();
}

void MemberRegistry::start(std::string name, std::string client_url) {
  name_ = std::move(name);
  client_url_ = std::move(client_url);
  self_id_ = member_id_of(client_url_);
  if (Status s = renew_once(); !s.is_ok()) {
    spdlog::warn("gateway registry: cannot record this gateway yet: {}", s.to_string());
  }
  thread_ = std::thread([this] {
    std::unique_lock lock(mu_);
    while (!cv_.wait_for(lock, renew_, [this] { return stopping_; })) {
      lock.unlock();
      if (Status s = renew_once(); !s.is_ok()) {
        spdlog::warn("gateway registry: renewal failed: {}", s.to_string());
      }
      lock.lock();
    }
  });
}

void MemberRegistry::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) {
      return;
    }
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
    auto t = client_.begin();
    if (t.is_ok() && (*t)->erase(layout_.member_key(self_id_.load())).is_ok()) {
      (void)(*t)->commit();
    }
  }
}

Result<bool> MemberRegistry::is_keeper() {
  const std::uint64_t self = self_id_.load();
  if (self == 0) {
    return false;
  }
  RDB_ASSIGN_OR_RETURN(auto live, list());
  for (const auto& m : live) {
    if (m.id() < self) {
      return false;
    }
  }
  return true;
}

Result<std::vector<etcdserverpb::Member>> MemberRegistry::list() {
  RDB_ASSIGN_OR_RETURN(auto t, client_.begin());
  const std::uint64_t now_ms = tso_physical_ms(t->start_ts());
  auto [start, end] = layout_.member_range();
  RDB_ASSIGN_OR_RETURN(auto records, t->scan(start, end, 1024));
  std::vector<etcdserverpb::Member> out;
  bool self_listed = false;
  for (const auto& kv : records) {
    etcdgw::MemberRecord rec;
    if (!rec.ParseFromString(kv.value) || rec.expires_ms() < now_ms) {
      continue;
    }
    etcdserverpb::Member m;
    m.set_id(member_id_of(rec.client_url()));
    m.set_name(rec.name());
    m.add_clienturls(rec.client_url());
    self_listed = self_listed || m.id() == self_id_.load();
    out.push_back(std::move(m));
  }
  if (!self_listed && self_id_ != 0) {  // not recorded yet (or its renewal is late): a member all the same
    etcdserverpb::Member m;
    m.set_id(self_id_.load());
    m.set_name(name_);
    m.add_clienturls(client_url_);
    out.push_back(std::move(m));
  }
  (void)t->rollback();
  return out;
}

}  // namespace rdb::etcd
