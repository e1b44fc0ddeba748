#include "linearizability.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <map>
#include <unordered_set>

namespace rdb::chaos {
namespace {

struct State {
  bool exists = false;
  std::string value;
  std::uint64_t version = 0;  // high-water mark (versioned space only)
};

// Applies `op` to `s`. Returns false when the op's observed result is impossible from `s`.
bool step(const State& s, const Operation& op, State& next) {
  bool known = op.outcome == Outcome::kOk;
  next = s;
  std::uint64_t visible = s.exists ? s.version : 0;
  switch (op.kind) {
    case OpKind::kGet:
      if (!known) {
        return true;
      }
      if (op.found != s.exists) {
        return false;
      }
      return !op.found || (op.result_value == s.value && op.version == s.version);
    case OpKind::kRawGet:
      if (!known) {
        return true;
      }
      return op.found == s.exists && (!op.found || op.result_value == s.value);
    case OpKind::kRawPut:
      next.exists = true;
      next.value = op.value;
      return true;
    case OpKind::kCas:
    case OpKind::kCasDelete: {
      bool del = op.kind == OpKind::kCasDelete;
      if (op.expected_version != visible) {
        if (!known) {
          return true;
        }
        return !op.succeeded && op.version == visible && op.found == s.exists &&
               (!s.exists || op.result_value == s.value);
      }
      if (del && !s.exists) {
        return !known || (op.succeeded && op.version == 0);
      }
      next.exists = !del;
      next.value = del ? std::string() : op.value;
      next.version = s.version + 1;
      return !known || (op.succeeded && op.version == next.version);
    }
  }
  return false;
}

struct Entry {
  bool is_call;
  std::size_t op;
  std::uint64_t time;
  Entry* prev = nullptr;
  Entry* next = nullptr;
  Entry* match = nullptr;  // call <-> return
};

std::string cache_key(const std::vector<std::uint64_t>& bits, const State& s) {
  std::string k(reinterpret_cast<const char*>(bits.data()), bits.size() * sizeof(std::uint64_t));
  k += s.exists ? '1' : '0';
  k += std::to_string(s.version);
  k += ':';
  k += s.value;
  return k;
}

}  // namespace

KeyVerdict check_key(const std::string& key, std::vector<Operation> ops) {
  KeyVerdict v;
  v.key = key;
  std::erase_if(ops, [](const Operation& op) { return op.outcome == Outcome::kFailed; });
  std::sort(ops.begin(), ops.end(), [](const Operation& a, const Operation& b) { return a.invoke_ns < b.invoke_ns; });
  v.operations = ops.size();
  const std::uint64_t kNever = std::numeric_limits<std::uint64_t>::max();

  // Calls and returns in time order (calls first on ties: touching operations count as concurrent).
  std::vector<Entry> entries;
  entries.reserve(ops.size() * 2);
  std::size_t must_linearize = 0;
  for (std::size_t i = 0; i < ops.size(); ++i) {
    bool known = ops[i].outcome == Outcome::kOk;
    must_linearize += known ? 1 : 0;
    entries.push_back({true, i, ops[i].invoke_ns});
    entries.push_back({false, i, known ? ops[i].complete_ns : kNever});
  }
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.time != b.time ? a.time < b.time : (a.is_call && !b.is_call);
  });
  std::vector<Entry*> call_of(ops.size()), ret_of(ops.size());
  for (auto& e : entries) {
    (e.is_call ? call_of : ret_of)[e.op] = &e;
  }
  Entry head{true, 0, 0};
  Entry* prev = &head;
  for (auto& e : entries) {
    prev->next = &e;
    e.prev = prev;
    prev = &e;
  }
  for (std::size_t i = 0; i < ops.size(); ++i) {
    call_of[i]->match = ret_of[i];
    ret_of[i]->match = call_of[i];
  }
  auto lift = [](Entry* call) {
    call->prev->next = call->next;
    if (call->next) {
      call->next->prev = call->prev;
    }
    Entry* ret = call->match;
    ret->prev->next = ret->next;
    if (ret->next) {
      ret->next->prev = ret->prev;
    }
  };
  auto unlift = [](Entry* call) {
    Entry* ret = call->match;
    ret->prev->next = ret;
    if (ret->next) {
      ret->next->prev = ret;
    }
    call->prev->next = call;
    if (call->next) {
      call->next->prev = call;
    }
  };

  std::vector<std::uint64_t> linearized((ops.size() + 63) / 64, 0);
  std::unordered_set<std::string> seen;
  std::vector<std::pair<Entry*, State>> stack;
  State state;
  std::size_t done_known = 0;
  std::size_t deepest = 0;
  std::size_t stuck_op = 0;
  Entry* entry = head.next;
  while (done_known < must_linearize) {
    if (entry == nullptr) {
      break;  // only unknown operations remain unlinearized: they need not take effect
    }
    if (entry->is_call) {
      std::size_t i = entry->op;
      State next;
      bool ok = step(state, ops[i], next);
      if (ok) {
        linearized[i / 64] |= std::uint64_t{1} << (i % 64);
        bool fresh = seen.insert(cache_key(linearized, next)).second;
        if (fresh) {
          stack.emplace_back(entry, state);
          state = std::move(next);
          done_known += ops[i].outcome == Outcome::kOk ? 1 : 0;
          lift(entry);
          entry = head.next;
          continue;
        }
        linearized[i / 64] &= ~(std::uint64_t{1} << (i % 64));
      }
      entry = entry->next;
      continue;
    }
    // A return whose operation is not linearized yet: this branch is dead, backtrack.
    if (stack.size() >= deepest) {
      deepest = stack.size();
      stuck_op = entry->op;
    }
    if (stack.empty()) {
      v.linearizable = false;
      break;
    }
    auto [call, saved] = std::move(stack.back());
    stack.pop_back();
    std::size_t i = call->op;
    done_known -= ops[i].outcome == Outcome::kOk ? 1 : 0;
    linearized[i / 64] &= ~(std::uint64_t{1} << (i % 64));
    state = std::move(saved);
    unlift(call);
    entry = call->next;
  }
  if (!v.linearizable) {
    std::string text = fmt::format(
        "key {}: no sequential order of its {} operations explains every result. The search could linearize at "
        "most {} operations before operation #{} had to complete without a consistent place:\n  {}\nOperations "
        "(invoke..complete ns):\n",
        key, ops.size(), deepest, ops[stuck_op].id, describe(ops[stuck_op]));
    for (const auto& op : ops) {
      text += "  " + describe(op) + "\n";
    }
    v.explanation = std::move(text);
  }
  return v;
}

Verdict check_history(const std::vector<Operation>& history) {
  auto start = std::chrono::steady_clock::now();
  std::map<std::string, std::vector<Operation>> by_key;
  for (const auto& op : history) {
    bool raw = op.kind == OpKind::kRawPut || op.kind == OpKind::kRawGet;
    by_key[(raw ? "r:" : "v:") + op.key].push_back(op);
  }
  Verdict verdict;
  verdict.operations = history.size();
  verdict.keys = by_key.size();
  for (auto& [key, ops] : by_key) {
    KeyVerdict kv = check_key(key, std::move(ops));
    if (!kv.linearizable) {
      verdict.linearizable = false;
      verdict.failures.push_back(std::move(kv));
    }
  }
  std::sort(verdict.failures.begin(), verdict.failures.end(),
            [](const KeyVerdict& a, const KeyVerdict& b) { return a.operations < b.operations; });
  verdict.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return verdict;
}

}  // namespace rdb::chaos
