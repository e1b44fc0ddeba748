// Google Benchmark: how fast the Raft core commits proposals.
//
// A 3-node group in memory, driven from one thread: the leader gets a batch of
// small proposals, every node's Ready is handled (persisted to MemoryStorage,
// messages delivered directly), until the leader has committed the batch. The
// figure is committed proposals per second for the whole group on one core, so
// it bounds what the core can ever cost a store. Linked with the daemons' allocator
// (jemalloc unless RDB_JEMALLOC=OFF), as the core runs in them.
//   build/bin/rdb-raft-bench --benchmark_min_time=2
#include <benchmark/benchmark.h>

#include <deque>
#include <map>
#include <memory>

#include "raft/raw_node.h"

namespace {

using namespace rdb::raft;

class InMemoryGroup {
 public:
  explicit InMemoryGroup(int n) {
    Snapshot snap;
    snap.mutable_metadata()->set_index(1);
    snap.mutable_metadata()->set_term(1);
    for (int i = 1; i <= n; ++i) {
      snap.mutable_metadata()->mutable_conf_state()->add_voters(static_cast<std::uint64_t>(i));
    }
    for (int i = 1; i <= n; ++i) {
      auto id = static_cast<std::uint64_t>(i);
      auto& m = members_[id];
      m.storage = std::make_unique<MemoryStorage>();
      (void)m.storage->apply_snapshot(snap);
      Config c;
      c.id = id;
      c.applied = 1;
      c.max_inflight_msgs = 4096;
      c.max_size_per_msg = 1 << 20;
      c.pre_vote = false;
      m.node = RawNode::create(c, *m.storage).value();
    }
    (void)members_[1].node->campaign();
    settle();
  }

  RawNode& leader() { return *members_[1].node; }
  std::uint64_t applied(std::uint64_t id) { return members_[id].applied; }

  void settle() {
    for (;;) {
      bool any = false;
      for (auto& [id, m] : members_) {
        if (m.node->has_ready()) {
          any = true;
          handle(m);
        }
      }
      while (!queue_.empty()) {
        Message msg = std::move(queue_.front());
        queue_.pop_front();
        std::uint64_t to = msg.to();
        (void)members_[to].node->step(std::move(msg));
        any = true;
      }
      if (!any) {
        return;
      }
    }
  }

 private:
  struct Member {
    std::unique_ptr<MemoryStorage> storage;
    std::unique_ptr<RawNode> node;
    std::uint64_t applied = 1;
    std::uint64_t compacted = 0;
  };

  void handle(Member& m) {
    Ready rd = m.node->ready();
    (void)m.storage->append(std::move(rd.entries));
    if (rd.hard_state) {
      m.storage->set_hard_state(*rd.hard_state);
    }
    for (auto& msg : rd.messages) {
      queue_.push_back(std::move(msg));
    }
    if (!rd.committed_entries.empty()) {
      m.applied = rd.committed_entries.back().index();
    }
    m.node->advance(rd);
    // Keep memory flat over millions of proposals.
    if (m.applied > m.compacted + 50000) {
      m.compacted = m.applied - 1000;
      (void)m.storage->compact(m.compacted);
    }
  }

  std::map<std::uint64_t, Member> members_;
  std::deque<Message> queue_;
};

void BM_RaftCommit3Nodes(benchmark::State& state) {
  const auto batch = static_cast<int>(state.range(0));
  const std::string payload(static_cast<std::size_t>(state.range(1)), 'p');
  InMemoryGroup group(3);
  std::int64_t committed = 0;
  for (auto _ : state) {
    std::vector<std::string> proposals(static_cast<std::size_t>(batch), payload);
    if (!group.leader().propose_batch(std::move(proposals)).is_ok()) {
      state.SkipWithError("proposal dropped");
      return;
    }
    group.settle();
    committed += batch;
  }
  state.SetItemsProcessed(committed);
  state.counters["proposals/s"] = benchmark::Counter(static_cast<double>(committed), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_RaftCommit3Nodes)->Args({1, 64})->Args({16, 64})->Args({256, 64})->Args({1024, 64})->Args({256, 1024});

}  // namespace

BENCHMARK_MAIN();
