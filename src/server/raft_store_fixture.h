// Test fixture: RaftStores replicating through an in-process transport, with
// real RocksDB engines and real Raft loops but no network. The transport keeps
// the most recent messages it carried, so hostile tests can replay and mutate them.
#pragma once

#include <gtest/gtest.h>

#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include "raftdisk/engine_options.h"
#include "server/raft_store.h"
#include "storage/rocks_engine.h"
#include "support/process.h"
#include "support/temp_dir.h"

namespace rdb {

using raft_serverpb::KvCommand;

class LocalTransport final : public RaftTransport {
 public:
  void attach(std::uint64_t store_id, RaftStore* store) {
    std::lock_guard lock(mu_);
    stores_[store_id] = store;
  }
  void detach(std::uint64_t store_id) {
    std::lock_guard lock(mu_);
    stores_.erase(store_id);
  }
  // Loses every message `store_id` sends from now on (false: delivers them again).
  void mute(std::uint64_t store_id, bool on) {
    std::lock_guard lock(mu_);
    if (on) {
      muted_.insert(store_id);
    } else {
      muted_.erase(store_id);
    }
  }
  // Loses every Raft message of this type from now on (false: delivers them again).
  void drop_type(raftpb::MessageType type, bool on) {
    std::lock_guard lock(mu_);
    if (on) {
      dropped_types_.insert(type);
    } else {
      dropped_types_.erase(type);
    }
  }
  // Called with every message sent from now on, on the sender's thread (null: none).
  void on_send(std::function<void(const raftsvc::RaftMessage&)> fn) {
    std::lock_guard lock(mu_);
    on_send_ = std::move(fn);
  }
  void send(std::vector<raftsvc::RaftMessage> messages) override {
    std::lock_guard lock(mu_);
    for (auto& m : messages) {
      if (on_send_) {
        on_send_(m);
      }
      if (muted_.count(m.from_peer().store_id()) != 0 ||
          (m.has_message() && dropped_types_.count(m.message().type()) != 0)) {
        continue;
      }
      if (m.has_message()) {
        ++raft_messages_;
      }
      if (recent_.size() >= 512) {
        recent_.pop_front();
      }
      recent_.push_back(m);
      auto it = stores_.find(m.to_peer().store_id());
      if (it != stores_.end()) {
        it->second->deliver(std::move(m));
      }
    }
  }

  // Streams the files through the receiving store's checks, as the gRPC transport does.
  void send_snapshot(raftsvc::RaftMessage message, std::vector<std::string> files,
                     std::function<void(bool)> done) override {
    bool delivered = false;
    {
      std::lock_guard lock(mu_);
      auto it = stores_.find(message.to_peer().store_id());
      if (it != stores_.end()) {
        delivered = stream_snapshot(*it->second, message, files).is_ok();
      }
    }
    done(delivered);
  }

  static Status stream_snapshot(RaftStore& to, const raftsvc::RaftMessage& message,
                                const std::vector<std::string>& files) {
    raftsvc::SnapshotDescriptor d;
    std::uint64_t total = 0;
    if (d.ParseFromString(message.message().snapshot().data())) {
      for (const auto& f : d.files()) {
        total += f.size();
      }
    }
    RDB_ASSIGN_OR_RETURN(auto receiver, to.receive_snapshot(message, total));
    Status written = Status::ok();
    RDB_RETURN_IF_ERROR(stream_snapshot_files(files, 64 << 10, nullptr, [&](std::string_view bytes) {
      written = receiver->write(bytes);
      return written.is_ok();
    }));
    RDB_RETURN_IF_ERROR(written);
    RDB_ASSIGN_OR_RETURN(auto msg, receiver->finish());
    to.deliver(std::move(msg));
    return Status::ok();
  }

  // Messages with Raft content carried so far (signals and store heartbeats not counted).
  std::uint64_t raft_messages() {
    std::lock_guard lock(mu_);
    return raft_messages_;
  }

  std::vector<raftsvc::RaftMessage> recent() {
    std::lock_guard lock(mu_);
    return {recent_.begin(), recent_.end()};
  }

 private:
  std::mutex mu_;
  std::map<std::uint64_t, RaftStore*> stores_;
  std::set<std::uint64_t> muted_;
  std::set<raftpb::MessageType> dropped_types_;
  std::function<void(const raftsvc::RaftMessage&)> on_send_;
  std::deque<raftsvc::RaftMessage> recent_;
  std::uint64_t raft_messages_ = 0;
};

struct Node {
  std::unique_ptr<RocksEngine> engine;
  std::unique_ptr<RaftStore> store;
};

class RaftStoreTest : public ::testing::Test {
 protected:
  void TearDown() override {
    // Detach everyone first: a running store must never send to one being destroyed.
    for (auto& [id, n] : nodes_) {
      transport_.detach(id);
    }
    nodes_.clear();
  }

  metapb::Region region_with(const std::vector<std::uint64_t>& stores) {
    metapb::Region r;
    r.set_id(100);
    r.mutable_region_epoch()->set_conf_ver(1);
    r.mutable_region_epoch()->set_version(1);
    for (auto s : stores) {
      auto* p = r.add_peers();
      p->set_id(1000 + s);
      p->set_store_id(s);
    }
    return r;
  }

  void start(std::uint64_t id, const std::optional<metapb::Region>& bootstrap) {
    Node& n = nodes_[id];
    if (!n.engine) {
      n.engine =
          std::move(RocksEngine::open(dir_.sub("store" + std::to_string(id)), raft_disk_engine_options())).value();
    }
    RaftStoreConfig c;
    c.store_id = id;
    c.tick_interval = std::chrono::milliseconds(10);
    c.log_gc_threshold = 50;  // compact often, so new members need snapshots
    c.seed = id;
    c.snap_dir = dir_.sub("snap" + std::to_string(id));
    c.clock = clock_;
    if (configure_) {
      configure_(c);
    }
    n.store = std::make_unique<RaftStore>(*n.engine, c, transport_);
    transport_.attach(id, n.store.get());
    ASSERT_TRUE(n.store->start(bootstrap).is_ok());
  }

  void stop(std::uint64_t id) {
    transport_.detach(id);
    nodes_[id].store.reset();
  }

  std::optional<RegionStatus> leader_status() {
    for (auto& [id, n] : nodes_) {
      if (!n.store) {
        continue;
      }
      for (const auto& s : n.store->regions()) {
        if (s.is_leader) {
          return s;
        }
      }
    }
    return std::nullopt;
  }

  std::uint64_t wait_for_leader() {
    std::uint64_t leader = 0;
    bool ok = testing::poll_until(
        [&] {
          auto s = leader_status();
          leader = s ? s->self.store_id() : 0;
          return leader != 0;
        },
        std::chrono::seconds(20));
    EXPECT_TRUE(ok) << "no leader elected";
    return leader;
  }

  kvrpc::Context context() {
    auto s = leader_status();
    kvrpc::Context ctx;
    ctx.set_region_id(100);
    if (s) {
      *ctx.mutable_region_epoch() = s->region.region_epoch();
    }
    return ctx;
  }

  ProposeResult propose_on(std::uint64_t store, const KvCommand& cmd) {
    auto p = std::make_shared<std::promise<ProposeResult>>();
    auto f = p->get_future();
    std::vector<std::string> keys(cmd.keys().begin(), cmd.keys().end());
    nodes_[store].store->propose(context(), keys, cmd, [p](ProposeResult r) { p->set_value(std::move(r)); });
    EXPECT_EQ(f.wait_for(std::chrono::seconds(20)), std::future_status::ready);
    return f.get();
  }

  // Proposes on whoever leads, retrying on region errors (leader changes).
  ProposeResult write(const KvCommand& cmd) {
    for (int attempt = 0; attempt < 200; ++attempt) {
      std::uint64_t leader = wait_for_leader();
      ProposeResult r = propose_on(leader, cmd);
      if (!r.region_error) {
        return r;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // back off while leadership settles
    }
    ADD_FAILURE() << "write never succeeded";
    return {};
  }

  static KvCommand put(const std::string& k, const std::string& v) {
    KvCommand c;
    c.set_type(KvCommand::RAW_PUT);
    c.add_keys(k);
    c.add_values(v);
    return c;
  }

  bool has_value(std::uint64_t store, const std::string& k, const std::string& v) {
    auto got = nodes_[store].engine->raw_get(k);
    return got.is_ok() && got->has_value() && **got == v;
  }

  testing::TempDir dir_;
  std::shared_ptr<Clock> clock_;                     // the stores' clock; a monotonic one when unset
  std::function<void(RaftStoreConfig&)> configure_;  // changes to every store's config
  LocalTransport transport_;
  std::map<std::uint64_t, Node> nodes_;
};

// Time is a manual clock stepped tick by tick, each step followed by a round of every
// store's loop, so "nothing happened for N ticks" is exact.
class SteppedRaftStoreTest : public RaftStoreTest {
 protected:
  void SetUp() override { clock_ = clock; }

  void start_all(const std::vector<std::uint64_t>& stores) {
    auto region = region_with(stores);
    for (auto s : stores) {
      start(s, region);
    }
  }

  static constexpr std::uint64_t kTickMs = 10;  // the fixture's tick; elections after 10 silent ticks

  // One tick of time, then two rounds of every running store's loop (the second one
  // ends after the first round's tick handling).
  void step() {
    clock->advance(kTickMs);
    for (auto& [id, n] : nodes_) {
      if (n.store) {
        ASSERT_TRUE(n.store->sync());
        ASSERT_TRUE(n.store->sync());
      }
    }
  }
  void step(int ticks) {
    for (int i = 0; i < ticks; ++i) {
      step();
    }
  }
  // Read rounds (heartbeats carrying a read request) among the transport's recent messages.
  std::size_t read_rounds() {
    std::set<std::string> rounds;
    for (const auto& m : transport_.recent()) {
      if (m.message().type() == raftpb::MSG_HEARTBEAT && !m.message().context().empty()) {
        rounds.insert(m.message().context());
      }
    }
    return rounds.size();
  }

  // Steps time until `done`, at most `max_ticks` ticks; returns whether it became true.
  bool step_until(const std::function<bool()>& done, int max_ticks = 2000) {
    for (int i = 0; i < max_ticks; ++i) {
      if (done()) {
        return true;
      }
      step();
    }
    return done();
  }

  std::uint64_t step_until_leader() {
    std::uint64_t leader = 0;
    EXPECT_TRUE(step_until([&] {
      auto s = leader_status();
      leader = s ? s->self.store_id() : 0;
      return leader != 0;
    })) << "no leader elected";
    return leader;
  }

  // A write proposed on `store`, time stepping until it is answered.
  ProposeResult write_on(std::uint64_t store, const KvCommand& cmd) {
    auto p = std::make_shared<std::promise<ProposeResult>>();
    auto f = p->get_future();
    std::vector<std::string> keys(cmd.keys().begin(), cmd.keys().end());
    nodes_[store].store->propose(context(), keys, cmd, [p](ProposeResult r) { p->set_value(std::move(r)); });
    EXPECT_TRUE(step_until([&] { return f.wait_for(std::chrono::seconds(0)) == std::future_status::ready; }));
    return f.get();
  }

  std::shared_ptr<ManualClock> clock = std::make_shared<ManualClock>(1'000);
};

}  // namespace rdb
