#include <cstdlib>

#include "driver.h"
#include "rdb/client.h"

namespace rdb::bench {
namespace {

// The balances after a transfer between `keys` (as found; missing: 0).
std::vector<std::int64_t> transfer_balances(const std::vector<std::string>& keys, const std::vector<KeyValue>& found) {
  std::vector<std::int64_t> out(keys.size(), 0);
  for (std::size_t i = 0; i < keys.size(); ++i) {
    for (const auto& kv : found) {
      if (kv.key == keys[i]) {
        out[i] = std::strtoll(kv.value.c_str(), nullptr, 10);
      }
    }
  }
  apply_transfer(out);
  return out;
}

class RdbDriver final : public BenchDriver {
 public:
  explicit RdbDriver(RdbClient& client) : client_(client) {}
  Status put(const std::string& key, const std::string& value) override { return client_.raw_put(key, value); }
  Status get(const std::string& key) override { return client_.raw_get(key).status(); }
  Result<std::uint64_t> read_version(const std::string& key) override {
    RDB_ASSIGN_OR_RETURN(auto r, client_.get(key));
    return r.version;
  }
  Result<bool> cas(const std::string& key, std::uint64_t version, const std::string& value) override {
    RDB_ASSIGN_OR_RETURN(auto r, client_.cas(key, version, value));
    return r.succeeded;
  }
  Status load_versioned(const std::string& key, const std::string& value) override {
    return client_.cas(key, 0, value).status();  // a conflict means it is loaded already
  }
  Status tso(std::uint32_t count) override { return client_.get_tso(count).status(); }
  Result<bool> transfer(const std::vector<std::string>& keys) override {
    RDB_ASSIGN_OR_RETURN(auto txn, client_.begin());
    RDB_ASSIGN_OR_RETURN(auto found, txn->batch_get(keys));
    auto balances = transfer_balances(keys, found);
    for (std::size_t i = 0; i < keys.size(); ++i) {
      RDB_RETURN_IF_ERROR(txn->put(keys[i], std::to_string(balances[i])));
    }
    Status s = txn->commit();
    if (s.code() == StatusCode::kAborted) {
      return false;
    }
    RDB_RETURN_IF_ERROR(s);
    return true;
  }
  void tso_async(std::uint32_t count, std::function<void(Status)> done) override {
    client_.get_tso_async(count, [done = std::move(done)](const Result<std::uint64_t>& r) { done(r.status()); });
  }
  bool has_async() const override { return true; }
  void put_async(const std::string& key, const std::string& value, std::function<void(Status)> done) override {
    client_.raw_put_async(key, value, std::move(done));
  }
  void get_async(const std::string& key, std::function<void(Status)> done) override {
    client_.raw_get_async(key,
                          [done = std::move(done)](const Result<std::optional<std::string>>& r) { done(r.status()); });
  }
  void read_version_async(const std::string& key, std::function<void(Status)> done) override {
    client_.get_async(key, [done = std::move(done)](const Result<VersionedValue>& r) { done(r.status()); });
  }

 private:
  RdbClient& client_;
};

}  // namespace

std::unique_ptr<BenchDriver> make_rdb_driver(RdbClient& client) {
  return std::make_unique<RdbDriver>(client);
}

}  // namespace rdb::bench
