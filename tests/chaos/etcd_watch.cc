#include "etcd_watch.h"

#include <fmt/format.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "etcd_rpc.grpc.pb.h"
#include "support/process.h"

namespace rdb::chaos {
namespace {

using Clock = std::chrono::steady_clock;

std::string prefix_end() {
  std::string end = kEtcdWatchPrefix;
  end.back() = static_cast<char>(end.back() + 1);
  return end;
}

// The gateways: started and killed by the controller; anyone picks a live one.
class Gateways {
 public:
  explicit Gateways(const EtcdWatchOptions& o) : o_(o) {}

  bool start_one(std::string* error) {
    std::string name = "etcd-gw" + std::to_string(++started_);
    std::string ready = o_.scratch_dir + "/" + name + ".ready";
    auto p = std::make_unique<testing::Subprocess>(
        std::vector<std::string>{testing::bin_dir() + "/rdb-etcd", "--pd", o_.pd, "--addr", "127.0.0.1:0",
                                 "--ready-file", ready, "--watch-poll-interval-ms", "20", "--log-level", "warn"},
        o_.scratch_dir + "/" + name);
    std::string text;
    bool up = testing::poll_until(
        [&] {
          text = testing::read_file(ready);
          return !text.empty() || !p->running();
        },
        std::chrono::seconds(30));
    auto at = text.find("\"addr\":\"");
    if (!up || at == std::string::npos) {
      *error = name + " did not start: " + p->stderr_text();
      return false;
    }
    at += 8;
    std::string addr = text.substr(at, text.find('"', at) - at);
    std::lock_guard lock(mu_);
    live_.push_back({std::move(p), addr});
    return true;
  }
  void kill_oldest() {
    std::unique_ptr<testing::Subprocess> victim;
    {
      std::lock_guard lock(mu_);
      if (live_.size() < 2) {
        return;
      }
      victim = std::move(live_.front().process);
      live_.pop_front();
    }
    victim->kill_now();
  }
  std::string pick(std::mt19937_64& rng) {
    std::lock_guard lock(mu_);
    return live_.empty() ? std::string() : live_[rng() % live_.size()].addr;
  }

 private:
  struct Gateway {
    std::unique_ptr<testing::Subprocess> process;
    std::string addr;
  };
  const EtcdWatchOptions& o_;
  int started_ = 0;
  std::mutex mu_;
  std::deque<Gateway> live_;
};

std::shared_ptr<grpc::Channel> channel_to(const std::string& addr) {
  return grpc::CreateChannel(addr, grpc::InsecureChannelCredentials());
}

void write_loop(Gateways& gw, const EtcdWatchOptions& o, int id, Clock::time_point until, std::mutex& mu,
                EtcdWatchResult& result) {
  std::mt19937_64 rng(o.seed * 1000 + static_cast<std::uint64_t>(id));
  for (int n = 0; Clock::now() < until; ++n) {
    std::string addr = gw.pick(rng);
    auto kv = etcdserverpb::KV::NewStub(channel_to(addr));
    EtcdWrite w;
    w.key = std::string(kEtcdWatchPrefix) + std::to_string(rng() % static_cast<std::uint64_t>(o.keys));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    grpc::Status s;
    std::int64_t deleted = 1;
    if (rng() % 8 == 0) {
      etcdserverpb::DeleteRangeRequest req;
      req.set_key(w.key);
      etcdserverpb::DeleteRangeResponse resp;
      s = kv->DeleteRange(&ctx, req, &resp);
      w.revision = resp.header().revision();
      deleted = resp.deleted();
    } else {
      w.value = fmt::format("w{}-{}", id, n);  // unique: an event names the write it came from
      etcdserverpb::PutRequest req;
      req.set_key(w.key);
      req.set_value(w.value);
      etcdserverpb::PutResponse resp;
      s = kv->Put(&ctx, req, &resp);
      w.revision = resp.header().revision();
    }
    std::lock_guard lock(mu);
    if (s.ok()) {
      w.acknowledged = true;
      if (deleted > 0) {  // a delete of a missing key writes nothing: no event
        result.writes.push_back(std::move(w));
      }
    } else if (s.error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
      ++result.writes_failed;
    } else {
      w.revision = 0;  // it may or may not have been applied
      result.writes.push_back(std::move(w));
    }
  }
}

void watch_loop(Gateways& gw, const EtcdWatchOptions& o, int id, std::int64_t start, Clock::time_point hard_deadline,
                const std::atomic<std::int64_t>& target, std::mutex& mu, EtcdWatchResult& result) {
  std::mt19937_64 rng(o.seed * 7919 + static_cast<std::uint64_t>(id));
  std::int64_t next = start;
  std::vector<EtcdEvent> seen;
  std::uint64_t resumes = 0;
  std::string error;
  auto done = [&] { return target.load() > 0 && next > target.load(); };
  while (!done()) {
    if (Clock::now() > hard_deadline) {
      error =
          fmt::format("watcher {} stuck at revision {} (the newest acknowledged write is {})", id, next, target.load());
      break;
    }
    std::string addr = gw.pick(rng);
    auto stub = etcdserverpb::Watch::NewStub(channel_to(addr));
    grpc::ClientContext ctx;
    // Streams end every few seconds on purpose: each resume is a chance to lose or repeat.
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(1000 + rng() % 3000));
    auto stream = stub->Watch(&ctx);
    etcdserverpb::WatchRequest req;
    auto* c = req.mutable_create_request();
    c->set_key(kEtcdWatchPrefix);
    c->set_range_end(prefix_end());
    c->set_start_revision(next);
    if (stream->Write(req)) {
      etcdserverpb::WatchResponse resp;
      while (stream->Read(&resp)) {
        if (resp.canceled()) {
          error = fmt::format("watcher {} canceled by the gateway at {}: {}", id, next, resp.cancel_reason());
          break;
        }
        for (const auto& e : resp.events()) {
          seen.push_back(
              {e.kv().key(), e.kv().value(), e.type() == etcdserverpb::Event::DELETE, e.kv().mod_revision()});
          next = e.kv().mod_revision() + 1;
        }
        if (done()) {
          ctx.TryCancel();
        }
      }
    }
    (void)stream->Finish();
    if (!error.empty()) {
      break;
    }
    ++resumes;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // pace reconnects to a dead gateway
  }
  std::lock_guard lock(mu);
  result.seen[static_cast<std::size_t>(id)] = std::move(seen);
  result.resumes += resumes;
  if (!error.empty() && result.error.empty()) {
    result.error = error;
  }
}

}  // namespace

EtcdWatchResult run_etcd_watch(const EtcdWatchOptions& o) {
  EtcdWatchResult result;
  Gateways gw(o);
  std::string error;
  if (!gw.start_one(&error) || !gw.start_one(&error)) {
    result.error = error;
    return result;
  }
  // Where the watchers start: the revision of a read before any write.
  std::mt19937_64 rng(o.seed);
  std::int64_t start = 0;
  auto setup_deadline = Clock::now() + std::chrono::seconds(30);
  while (start == 0 && Clock::now() < setup_deadline) {
    auto kv = etcdserverpb::KV::NewStub(channel_to(gw.pick(rng)));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    etcdserverpb::RangeRequest req;
    req.set_key(kEtcdWatchPrefix);
    req.set_range_end(prefix_end());
    req.set_count_only(true);
    etcdserverpb::RangeResponse resp;
    if (kv->Range(&ctx, req, &resp).ok()) {
      start = resp.header().revision() + 1;
    }
  }
  if (start == 0) {
    result.error = "no revision to start watching from in 30 s";
    return result;
  }
  result.set_up = true;
  result.seen.resize(static_cast<std::size_t>(o.watchers));
  const auto until = Clock::now() + o.duration;
  const auto hard_deadline = until + o.catch_up;
  std::mutex mu;
  std::atomic<std::int64_t> target{0};
  std::vector<std::thread> watchers;
  for (int i = 0; i < o.watchers; ++i) {
    watchers.emplace_back([&, i] { watch_loop(gw, o, i, start, hard_deadline, target, mu, result); });
  }
  std::vector<std::thread> writers;
  for (int i = 0; i < o.writers; ++i) {
    writers.emplace_back([&, i] { write_loop(gw, o, i, until, mu, result); });
  }
  // Gateway restarts, on this thread (the gateways die with the thread that started them).
  auto next_restart = Clock::now() + o.gateway_life;
  while (Clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (Clock::now() >= next_restart) {
      if (!gw.start_one(&error)) {
        break;
      }
      gw.kill_oldest();
      ++result.gateway_restarts;
      next_restart = Clock::now() + o.gateway_life;
    }
  }
  for (auto& t : writers) {
    t.join();
  }
  std::int64_t newest = 0;
  {
    std::lock_guard lock(mu);
    for (const auto& w : result.writes) {
      if (w.acknowledged) {
        newest = std::max(newest, w.revision);
      }
    }
  }
  target = std::max<std::int64_t>(newest, start);
  for (auto& t : watchers) {
    t.join();
  }
  return result;
}

void check_etcd_watch(EtcdWatchResult& r) {
  std::map<std::pair<std::string, std::int64_t>, const EtcdWrite*> acknowledged;
  std::map<std::string, const EtcdWrite*> put_by_value;
  std::set<std::string> unknown_deletes;  // keys
  std::int64_t target = 0;
  for (const auto& w : r.writes) {
    if (w.acknowledged) {
      acknowledged[{w.key, w.revision}] = &w;
      target = std::max(target, w.revision);
    } else if (w.value.empty()) {
      unknown_deletes.insert(w.key);
    }
    if (!w.value.empty()) {
      put_by_value[w.value] = &w;
    }
  }
  auto fail = [&](std::string why) {
    if (r.violation.empty()) {
      r.violation = std::move(why);
    }
  };
  for (std::size_t i = 0; i < r.seen.size(); ++i) {
    std::map<std::pair<std::string, std::int64_t>, const EtcdEvent*> got;
    std::int64_t previous = 0;
    for (const auto& e : r.seen[i]) {
      if (e.revision < previous) {
        fail(fmt::format("watcher {}: {} at revision {} after revision {} (out of order)", i, e.key, e.revision,
                         previous));
      }
      previous = e.revision;
      if (!got.emplace(std::make_pair(e.key, e.revision), &e).second) {
        fail(fmt::format("watcher {}: {} at revision {} seen twice", i, e.key, e.revision));
      }
      if (e.deleted) {
        auto it = acknowledged.find({e.key, e.revision});
        if ((it == acknowledged.end() || !it->second->value.empty()) && unknown_deletes.count(e.key) == 0) {
          fail(fmt::format("watcher {}: a delete of {} at revision {} that no one asked for", i, e.key, e.revision));
        }
      } else {
        auto it = put_by_value.find(e.value);
        if (it == put_by_value.end() || it->second->key != e.key) {
          fail(fmt::format("watcher {}: {}={} at revision {} was never written", i, e.key, e.value, e.revision));
        } else if (it->second->acknowledged && it->second->revision != e.revision) {
          fail(fmt::format("watcher {}: {}={} at revision {}, acknowledged at {}", i, e.key, e.value, e.revision,
                           it->second->revision));
        }
      }
    }
    for (const auto& [key_rev, w] : acknowledged) {
      auto it = got.find(key_rev);
      if (it == got.end()) {
        fail(fmt::format("watcher {}: missed {} {} at revision {}", i,
                         w->value.empty() ? "the delete of" : "the put of", key_rev.first, key_rev.second));
      } else if (it->second->deleted != w->value.empty() || it->second->value != w->value) {
        fail(fmt::format("watcher {}: {} at revision {} has the wrong value", i, key_rev.first, key_rev.second));
      }
    }
  }
  // Every watcher saw the same history (up to the newest acknowledged write).
  auto upto = [&](const std::vector<EtcdEvent>& events) {
    std::vector<std::tuple<std::int64_t, std::string, std::string, bool>> out;
    for (const auto& e : events) {
      if (e.revision <= target) {
        out.emplace_back(e.revision, e.key, e.value, e.deleted);
      }
    }
    return out;
  };
  for (std::size_t i = 1; i < r.seen.size(); ++i) {
    if (upto(r.seen[i]) != upto(r.seen[0])) {
      fail(fmt::format("watchers 0 and {} saw different histories", i));
    }
  }
}

}  // namespace rdb::chaos
