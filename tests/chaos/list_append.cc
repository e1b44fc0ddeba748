#include "list_append.h"

#include <fmt/format.h>

#include <algorithm>
#include <deque>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <thread>

namespace rdb::chaos {
namespace {

enum class Dep { kWW, kWR, kRW };

const char* dep_name(Dep d) {
  switch (d) {
    case Dep::kWW:
      return "ww";
    case Dep::kWR:
      return "wr";
    case Dep::kRW:
      return "rw";
  }
  return "?";
}

struct Edge {
  std::uint64_t to;
  Dep dep;
  std::string key;
};

// A list as a report shows it: short ones whole, long ones by their length and tail.
std::string list_text(const std::vector<std::int64_t>& l) {
  constexpr std::size_t kShown = 6;
  if (l.size() <= kShown) {
    return fmt::format("[{}]", fmt::join(l, " "));
  }
  std::vector<std::int64_t> tail(l.end() - kShown, l.end());
  return fmt::format("[{} elements: ... {}]", l.size(), fmt::join(tail, " "));
}

bool is_prefix(const std::vector<std::int64_t>& a, const std::vector<std::int64_t>& b) {
  return a.size() <= b.size() && std::equal(a.begin(), a.end(), b.begin());
}

class Graph {
 public:
  void add(std::uint64_t from, std::uint64_t to, Dep dep, const std::string& key) {
    if (from == to) {
      return;
    }
    for (const auto& e : out_[from]) {
      if (e.to == to && e.dep == dep) {
        return;
      }
    }
    out_[from].push_back({to, dep, key});
    out_[to];  // every node is listed
  }

  // A path from `from` to `to` using only edges whose kind is in `allowed`; empty if none.
  std::vector<std::pair<std::uint64_t, Edge>> path(std::uint64_t from, std::uint64_t to,
                                                   const std::set<Dep>& allowed) const {
    std::map<std::uint64_t, std::pair<std::uint64_t, Edge>> came;  // node -> (previous, edge into it)
    std::deque<std::uint64_t> queue{from};
    std::set<std::uint64_t> seen{from};
    while (!queue.empty()) {
      std::uint64_t n = queue.front();
      queue.pop_front();
      auto it = out_.find(n);
      if (it == out_.end()) {
        continue;
      }
      for (const auto& e : it->second) {
        if (allowed.count(e.dep) == 0 || seen.count(e.to) > 0) {
          continue;
        }
        seen.insert(e.to);
        came.emplace(e.to, std::make_pair(n, e));
        if (e.to == to) {
          std::vector<std::pair<std::uint64_t, Edge>> out;
          for (std::uint64_t at = to; at != from;) {
            auto& [prev, edge] = came.at(at);
            out.push_back({prev, edge});
            at = prev;
          }
          std::reverse(out.begin(), out.end());
          return out;
        }
        queue.push_back(e.to);
      }
    }
    return {};
  }

  // One cycle through edges of kinds `allowed` (empty if none), each step (from, edge).
  std::vector<std::pair<std::uint64_t, Edge>> cycle(const std::set<Dep>& allowed) const {
    for (const auto& [n, edges] : out_) {
      for (const auto& e : edges) {
        if (allowed.count(e.dep) == 0) {
          continue;
        }
        auto back = path(e.to, n, allowed);
        if (!back.empty()) {
          back.insert(back.begin(), {n, e});
          return back;
        }
      }
    }
    return {};
  }

  // A cycle with exactly one rw edge (the rest ww/wr), if any.
  std::vector<std::pair<std::uint64_t, Edge>> single_rw_cycle() const {
    for (const auto& [n, edges] : out_) {
      for (const auto& e : edges) {
        if (e.dep != Dep::kRW) {
          continue;
        }
        auto back = path(e.to, n, {Dep::kWW, Dep::kWR});
        if (!back.empty() || e.to == n) {
          back.insert(back.begin(), {n, e});
          return back;
        }
      }
    }
    return {};
  }

  const std::map<std::uint64_t, std::vector<Edge>>& edges() const { return out_; }

 private:
  std::map<std::uint64_t, std::vector<Edge>> out_;
};

std::string cycle_text(const std::vector<std::pair<std::uint64_t, Edge>>& c) {
  std::string out;
  for (const auto& [from, e] : c) {
    out += fmt::format("T{} -{}({})-> ", from, dep_name(e.dep), e.key);
  }
  return out + fmt::format("T{}", c.front().first);
}

}  // namespace

ListAppendVerdict check_list_append(const std::vector<ListTxn>& txns) {
  ListAppendVerdict v;
  auto report = [&](const std::string& anomaly, const std::string& example) {
    if (v.counts[anomaly]++ == 0) {
      v.examples.push_back(anomaly + ": " + example);
    }
  };
  // Who appended what, and where in its own appends to that key.
  struct Writer {
    const ListTxn* txn;
    bool last_of_txn;  // its transaction's last append to the key
  };
  std::map<std::pair<std::string, std::int64_t>, Writer> writer;
  for (const auto& t : txns) {
    std::map<std::string, std::int64_t> last;
    for (const auto& op : t.ops) {
      if (op.append) {
        last[op.key] = op.value;
      }
    }
    for (const auto& op : t.ops) {
      if (op.append) {
        writer[{op.key, op.value}] = Writer{&t, last[op.key] == op.value};
      }
    }
  }
  // The version order of each key: the longest list read by a committed transaction.
  std::map<std::string, std::vector<std::int64_t>> order;
  for (const auto& t : txns) {
    if (t.outcome != ListTxn::Outcome::kOk) {
      continue;
    }
    for (const auto& op : t.ops) {
      auto& longest = order[op.key];
      if (op.read.size() > longest.size()) {
        longest = op.read;
      }
    }
  }
  for (const auto& t : txns) {
    if (t.outcome != ListTxn::Outcome::kOk) {
      continue;
    }
    for (const auto& op : t.ops) {
      if (!is_prefix(op.read, order[op.key])) {
        report("incompatible-order", fmt::format("T{} read {} = {}, another read {}", t.id, op.key, list_text(op.read),
                                                 list_text(order[op.key])));
      }
      std::set<std::int64_t> distinct(op.read.begin(), op.read.end());
      if (distinct.size() != op.read.size()) {
        report("duplicate-elements", fmt::format("T{} read {} = {}", t.id, op.key, list_text(op.read)));
      }
      for (std::int64_t x : op.read) {
        auto w = writer.find({op.key, x});
        if (w == writer.end()) {
          report("phantom-value",
                 fmt::format("T{} read {} holding {}, which no transaction appended", t.id, op.key, x));
        } else if (w->second.txn->outcome == ListTxn::Outcome::kFailed) {
          report("G1a", fmt::format("T{} read {} = {}, holding {} appended by T{}, which aborted", t.id, op.key,
                                    list_text(op.read), x, w->second.txn->id));
        }
      }
      if (!op.read.empty()) {
        auto w = writer.find({op.key, op.read.back()});
        if (w != writer.end() && w->second.txn != &t && !w->second.last_of_txn) {
          report("G1b", fmt::format("T{} read {} = {}, ending at {}, an intermediate append of T{}", t.id, op.key,
                                    list_text(op.read), op.read.back(), w->second.txn->id));
        }
      }
    }
  }
  // The dependency graph among committed transactions (unknown ones whose values were seen count).
  auto committed = [&](const ListTxn* t) { return t->outcome != ListTxn::Outcome::kFailed; };
  Graph g;
  for (const auto& [key, versions] : order) {
    for (std::size_t i = 1; i < versions.size(); ++i) {
      auto a = writer.find({key, versions[i - 1]});
      auto b = writer.find({key, versions[i]});
      if (a != writer.end() && b != writer.end() && committed(a->second.txn) && committed(b->second.txn)) {
        g.add(a->second.txn->id, b->second.txn->id, Dep::kWW, key);
      }
    }
  }
  for (const auto& t : txns) {
    if (t.outcome != ListTxn::Outcome::kOk) {
      continue;
    }
    for (const auto& op : t.ops) {
      const auto& versions = order[op.key];
      if (!op.read.empty()) {
        auto w = writer.find({op.key, op.read.back()});
        if (w != writer.end() && committed(w->second.txn)) {
          g.add(w->second.txn->id, t.id, Dep::kWR, op.key);
        }
      }
      if (op.read.size() < versions.size()) {
        auto next = writer.find({op.key, versions[op.read.size()]});
        if (next != writer.end() && committed(next->second.txn)) {
          g.add(t.id, next->second.txn->id, Dep::kRW, op.key);
        }
      }
    }
  }
  v.transactions = g.edges().size();
  if (auto c = g.cycle({Dep::kWW}); !c.empty()) {
    report("G0", cycle_text(c));
  } else if (auto c1 = g.cycle({Dep::kWW, Dep::kWR}); !c1.empty()) {
    report("G1c", cycle_text(c1));
  }
  if (auto c = g.single_rw_cycle(); !c.empty()) {
    bool lost_update = c.size() == 2 && c[0].second.key == c[1].second.key;
    report(lost_update ? "lost-update" : "G-single", cycle_text(c));
  } else if (!g.cycle({Dep::kWW, Dep::kWR, Dep::kRW}).empty()) {
    v.counts["G2 (allowed under snapshot isolation)"]++;
  }
  return v;
}

namespace {

std::vector<std::int64_t> parse_list(const std::optional<std::string>& text) {
  std::vector<std::int64_t> out;
  if (!text || text->empty()) {
    return out;
  }
  std::size_t pos = 0;
  while (pos <= text->size()) {
    auto end = text->find(',', pos);
    out.push_back(std::stoll(text->substr(pos, end == std::string::npos ? std::string::npos : end - pos)));
    if (end == std::string::npos) {
      break;
    }
    pos = end + 1;
  }
  return out;
}

std::string list_value(const std::vector<std::int64_t>& l) {
  return fmt::format("{}", fmt::join(l, ","));
}

std::string list_key(int i) {
  return fmt::format("{}{}", kListPrefix, i);
}

}  // namespace

std::vector<ListTxn> run_list_append(RdbClient& client, const ListAppendOptions& o) {
  std::mutex mu;
  std::vector<ListTxn> all;
  std::atomic<std::uint64_t> ids{0};
  const auto deadline = std::chrono::steady_clock::now() + o.duration;
  std::vector<std::thread> threads;
  for (int c = 0; c < o.clients; ++c) {
    threads.emplace_back([&, c] {
      std::mt19937_64 rng(o.seed * 104729 + static_cast<std::uint64_t>(c));
      std::int64_t next_value = static_cast<std::int64_t>(c + 1) * 1'000'000'000;
      while (std::chrono::steady_clock::now() < deadline) {
        ListTxn t;
        t.id = ++ids;
        auto txn = client.begin();
        if (!txn.is_ok()) {
          continue;  // nothing was sent: not a transaction
        }
        bool failed = false;
        int n = 1 + static_cast<int>(rng() % 3);
        for (int i = 0; i < n && !failed; ++i) {
          ListOp op;
          op.key = list_key(static_cast<int>(rng() % static_cast<std::uint64_t>(o.keys)));
          op.append = rng() % 2 == 0;
          auto got = (*txn)->get(op.key);
          if (!got.is_ok()) {
            failed = true;
            break;
          }
          op.read = parse_list(*got);
          if (op.append) {
            op.value = ++next_value;
            auto longer = op.read;
            longer.push_back(op.value);
            if (!(*txn)->put(op.key, list_value(longer)).is_ok()) {
              failed = true;
              break;
            }
          }
          t.ops.push_back(std::move(op));
        }
        Status s = failed ? Status::aborted("a read failed") : (*txn)->commit();
        if (failed) {
          (void)(*txn)->rollback();
        }
        t.outcome = s.is_ok()                                   ? ListTxn::Outcome::kOk
                    : s.code() == StatusCode::kUndetermined     ? ListTxn::Outcome::kUnknown
                    : s.code() == StatusCode::kDeadlineExceeded ? ListTxn::Outcome::kUnknown
                                                                : ListTxn::Outcome::kFailed;
        std::lock_guard lock(mu);
        all.push_back(std::move(t));
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  return all;
}

void list_append_final_read(RdbClient& client, const ListAppendOptions& o, std::vector<ListTxn>& txns) {
  for (int attempt = 0; attempt < 5; ++attempt) {
    auto txn = client.begin();
    if (!txn.is_ok()) {
      continue;
    }
    ListTxn t;
    t.id = 1'000'000'000;
    bool ok = true;
    for (int k = 0; k < o.keys && ok; ++k) {
      ListOp op;
      op.key = list_key(k);
      auto got = (*txn)->get(op.key);
      ok = got.is_ok();
      if (ok) {
        op.read = parse_list(*got);
        t.ops.push_back(std::move(op));
      }
    }
    if (ok && (*txn)->commit().is_ok()) {
      t.outcome = ListTxn::Outcome::kOk;
      txns.push_back(std::move(t));
      return;
    }
  }
}

}  // namespace rdb::chaos
