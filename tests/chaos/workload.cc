#include "workload.h"

#include <fmt/format.h>

#include <fstream>
#include <map>
#include <random>
#include <thread>

namespace rdb::chaos {
namespace {

Outcome classify_write(const Status& s) {
  switch (s.code()) {
    case StatusCode::kOk:
      return Outcome::kOk;
    case StatusCode::kUndetermined:
    case StatusCode::kDeadlineExceeded:
    case StatusCode::kInternal:
      return Outcome::kUnknown;
    default:
      return Outcome::kFailed;  // refused or never sent
  }
}

std::string key_name(int k) {
  return fmt::format("{}{}", kKeyPrefix, k);
}

}  // namespace

std::uint64_t Recorder::now_ns() const {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start_).count());
}

void Recorder::record(Operation op) {
  std::lock_guard lock(mu_);
  ops_.push_back(std::move(op));
}

std::vector<Operation> Recorder::operations() const {
  std::lock_guard lock(mu_);
  return ops_;
}

std::size_t Recorder::fault_started(const std::string& kind, const std::string& target) {
  FaultEvent f{kind, target, now_ns(), 0};
  std::lock_guard lock(mu_);
  faults_.push_back(std::move(f));
  return faults_.size() - 1;
}

void Recorder::fault_healed(std::size_t handle) {
  std::uint64_t now = now_ns();
  std::lock_guard lock(mu_);
  faults_.at(handle).end_ns = now;
}

std::vector<FaultEvent> Recorder::faults() const {
  std::lock_guard lock(mu_);
  std::vector<FaultEvent> out = faults_;
  for (auto& f : out) {
    if (f.end_ns == 0) {
      f.end_ns = now_ns();  // still open: shown as lasting until now
    }
  }
  return out;
}

Status Recorder::write(const std::string& path) const {
  std::ofstream out(path, std::ios::trunc);
  for (const auto& f : faults()) {
    out << to_json_line(f) << "\n";
  }
  for (const auto& op : operations()) {
    out << to_json_line(op) << "\n";
  }
  return out ? Status::ok() : ServerStatus::io_error(fmt::format("cannot write history '{}'", path));
}

static Operation one_op(RdbClient& client, Recorder& rec, std::uint64_t client_id, const std::string& key, int kind,
                        std::uint64_t expected, const std::string& value) {
  Operation op;
  op.id = rec.next_id();
  op.client = client_id;
  op.key = key;
  switch (kind) {
    case 0: {
      op.kind = OpKind::kGet;
      op.invoke_ns = rec.now_ns();
      auto r = client.get(op.key);
      op.complete_ns = rec.now_ns();
      op.outcome = r.is_ok() ? Outcome::kOk : Outcome::kFailed;
      if (r.is_ok()) {
        op.found = r->found;
        op.result_value = r->value;
        op.version = r->version;
      }
      break;
    }
    case 1:
    case 2: {
      op.kind = kind == 1 ? OpKind::kCas : OpKind::kCasDelete;
      op.expected_version = expected;
      op.value = kind == 1 ? value : "";
      op.invoke_ns = rec.now_ns();
      auto r = client.cas(op.key, expected, kind == 1 ? std::optional<std::string>(value) : std::nullopt);
      op.complete_ns = rec.now_ns();
      op.outcome = r.is_ok() ? Outcome::kOk : classify_write(r.status());
      if (r.is_ok()) {
        op.succeeded = r->succeeded;
        op.version = r->version;
        op.found = r->current_found;
        op.result_value = r->current_value;
      }
      break;
    }
    case 3: {
      op.kind = OpKind::kRawPut;
      op.value = value;
      op.invoke_ns = rec.now_ns();
      Status s = client.raw_put(op.key, value);
      op.complete_ns = rec.now_ns();
      op.outcome = classify_write(s);
      break;
    }
    default: {
      op.kind = OpKind::kRawGet;
      op.invoke_ns = rec.now_ns();
      auto r = client.raw_get(op.key);
      op.complete_ns = rec.now_ns();
      op.outcome = r.is_ok() ? Outcome::kOk : Outcome::kFailed;
      if (r.is_ok()) {
        op.found = r->has_value();
        op.result_value = r->value_or("");
      }
      break;
    }
  }
  rec.record(op);
  return op;
}

void run_workload(RdbClient& client, const WorkloadOptions& o, Recorder& rec) {
  auto deadline = std::chrono::steady_clock::now() + o.duration;
  std::vector<std::thread> threads;
  for (int c = 0; c < o.clients; ++c) {
    threads.emplace_back([&, c] {
      std::mt19937_64 rng(o.seed * 1000 + static_cast<std::uint64_t>(c));
      std::vector<std::uint64_t> last_version(static_cast<std::size_t>(o.keys), 0);
      for (std::uint64_t n = 0; std::chrono::steady_clock::now() < deadline; ++n) {
        int key = static_cast<int>(rng() % static_cast<std::uint64_t>(o.keys));
        int roll = static_cast<int>(rng() % 100);
        // 0 get, 1 cas, 2 cas_delete, 3 raw_put, 4 raw_get, 5 log write
        int kind = o.write_heavy ? (roll < 5    ? 0
                                    : roll < 50 ? 3
                                    : roll < 95 ? 5
                                                : 4)
                                 : (roll < 25   ? 0
                                    : roll < 47 ? 1
                                    : roll < 55 ? 2
                                    : roll < 72 ? 3
                                    : roll < 80 ? 5
                                                : 4);
        std::string value = fmt::format("c{}-{}", c, n);
        if (kind == 5) {  // a log write: a key of its own, never overwritten
          (void)one_op(client, rec, static_cast<std::uint64_t>(c), kLogPrefix + value, 3, 0, value);
          continue;
        }
        // CAS mostly against the version this client last saw, sometimes a guess.
        std::uint64_t expected = rng() % 5 == 0 ? rng() % 4 : last_version[static_cast<std::size_t>(key)];
        RdbClient* target = &client;
        if ((kind == 0 || kind == 4) && !o.read_clients.empty()) {
          target = o.read_clients[rng() % o.read_clients.size()];
        }
        Operation mine = one_op(*target, rec, static_cast<std::uint64_t>(c), key_name(key), kind, expected, value);
        if (mine.outcome == Outcome::kOk &&
            (mine.kind == OpKind::kGet || mine.kind == OpKind::kCas || mine.kind == OpKind::kCasDelete)) {
          last_version[static_cast<std::size_t>(key)] = mine.version;
        }
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
}

void final_reads(RdbClient& client, const WorkloadOptions& o, Recorder& rec) {
  // A cluster that did not recover fails the first read: stop there rather than
  // wait out every read's deadline.
  for (int k = 0; k < o.keys; ++k) {
    if (one_op(client, rec, kFinalReader, key_name(k), 0, 0, "").outcome != Outcome::kOk ||
        one_op(client, rec, kFinalReader, key_name(k), 4, 0, "").outcome != Outcome::kOk) {
      return;
    }
  }
  std::vector<std::string> logs;
  for (const auto& op : rec.operations()) {
    if (op.kind == OpKind::kRawPut && op.key.rfind(kLogPrefix, 0) == 0) {
      logs.push_back(op.key);
    }
  }
  // Batched: a long run writes thousands of log keys.
  constexpr std::size_t kBatch = 256;
  for (std::size_t i = 0; i < logs.size(); i += kBatch) {
    std::vector<std::string> keys(logs.begin() + static_cast<std::ptrdiff_t>(i),
                                  logs.begin() + static_cast<std::ptrdiff_t>(std::min(logs.size(), i + kBatch)));
    std::uint64_t invoke = rec.now_ns();
    auto r = client.raw_batch_get(keys);
    std::uint64_t complete = rec.now_ns();
    std::map<std::string, std::string> found;
    if (r.is_ok()) {
      for (auto& kv : *r) {
        found[kv.key] = kv.value;
      }
    }
    for (const auto& key : keys) {
      Operation op;
      op.id = rec.next_id();
      op.client = kFinalReader;
      op.key = key;
      op.kind = OpKind::kRawGet;
      op.invoke_ns = invoke;
      op.complete_ns = complete;
      op.outcome = r.is_ok() ? Outcome::kOk : Outcome::kFailed;
      if (auto it = found.find(key); it != found.end()) {
        op.found = true;
        op.result_value = it->second;
      }
      rec.record(std::move(op));
    }
    if (!r.is_ok()) {
      return;
    }
  }
}

}  // namespace rdb::chaos
