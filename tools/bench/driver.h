// The system under test, seen by rdb-bench: one interface, one implementation
// per system (rdb through its native client; etcd through its v3 gRPC KV API),
// so both are measured by the same load generator.
//
//   rdb                        etcd
//   put      raw_put           Put
//   get      raw_get           Range (linearizable, or serializable if asked)
//   read_version get (version) Range -> mod_revision
//   cas      cas(version)      Txn(compare mod_revision == version, then Put)
//   tso      get_tso           (not available)
//   transfer Transaction:      Txn(no compare; Range each key), then
//            get, put, commit  Txn(compare every key's mod_revision, then Put each)
// Thread safety: every method may be called from many threads at once.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"

namespace rdb {
class RdbClient;
}

namespace rdb::bench {

class BenchDriver {
 public:
  virtual ~BenchDriver() = default;
  virtual Status put(const std::string& key, const std::string& value) = 0;
  virtual Status get(const std::string& key) = 0;
  // The version a CAS compares against (0 when the key does not exist).
  virtual Result<std::uint64_t> read_version(const std::string& key) = 0;
  // true: written; false: the version had moved on (a conflict, not an error).
  virtual Result<bool> cas(const std::string& key, std::uint64_t version, const std::string& value) = 0;
  // Stores a key that read_version/cas will see (preloading the versioned workloads).
  virtual Status load_versioned(const std::string& key, const std::string& value) = 0;
  virtual Status tso(std::uint32_t count) = 0;
  // A transfer: reads every key (1 or 2; a missing key holds 0), then writes them back
  // atomically, the first one less, the second one more (one key: plus one). false: a
  // conflict (another transfer got there first; retryable), not an error.
  virtual Result<bool> transfer(const std::vector<std::string>& keys) = 0;
  // Without a thread per request: `done` runs on the client's TSO thread.
  virtual void tso_async(std::uint32_t count, std::function<void(Status)> done) = 0;
  // put / get / read_version without a thread per request (--async): `done` runs on one of
  // the client's threads. Drivers without an asynchronous API do not override them
  // (rdb-bench refuses --async for them).
  virtual bool has_async() const { return false; }
  // NOLINTBEGIN(performance-unnecessary-value-param): overrides take ownership of `done`.
  virtual void put_async(const std::string& key, const std::string& value, std::function<void(Status)> done) {
    done(put(key, value));
  }
  virtual void get_async(const std::string& key, std::function<void(Status)> done) { done(get(key)); }
  virtual void read_version_async(const std::string& key, std::function<void(Status)> done) {
    done(read_version(key).status());
  }
  // NOLINTEND(performance-unnecessary-value-param)
};

// A transfer's new balances (in key order, as read): one key +1; two keys, the first
// −1 and the second +1. The same rule for every driver.
inline void apply_transfer(std::vector<std::int64_t>& balances) {
  if (balances.size() == 1) {
    balances[0] += 1;
  } else if (balances.size() == 2) {
    balances[0] -= 1;
    balances[1] += 1;
  }
}

std::unique_ptr<BenchDriver> make_rdb_driver(RdbClient& client);
// `endpoints` HOST:PORT of etcd members; requests are spread over them by caller
// (worker index) the way etcd's client balances; `serializable` reads skip ReadIndex.
Result<std::unique_ptr<BenchDriver>> make_etcd_driver(const std::vector<std::string>& endpoints, bool serializable);

}  // namespace rdb::bench
