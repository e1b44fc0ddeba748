#include "txn_shell.h"

#include <fmt/format.h>

#include <charconv>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace rdb::cli {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitConflict = 3;
constexpr int kExitError = 4;

// Splits a line into tokens; nullopt (with `why`) when a quote is not closed.
std::optional<std::vector<std::string>> tokenize(const std::string& line, std::string* why) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < line.size()) {
    if (line[i] == ' ' || line[i] == '\t' || line[i] == '\r') {
      ++i;
      continue;
    }
    std::string token;
    if (line[i] == '"') {
      ++i;
      bool closed = false;
      while (i < line.size()) {
        char c = line[i++];
        if (c == '"') {
          closed = true;
          break;
        }
        if (c == '\\' && i < line.size()) {
          c = line[i++];
        }
        token.push_back(c);
      }
      if (!closed) {
        *why = "a quoted token is not closed";
        return std::nullopt;
      }
    } else {
      while (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != '\r') {
        token.push_back(line[i++]);
      }
    }
    out.push_back(std::move(token));
  }
  return out;
}

class Shell {
 public:
  Shell(RdbClient& client, std::ostream& out, bool json) : client_(client), out_(out), json_(json) {}

  int run(std::istream& in) {
    auto begun = client_.begin();
    if (!begun.is_ok()) {
      return error(begun.status());
    }
    txn_ = std::move(begun).value();
    std::string line;
    while (std::getline(in, line)) {
      std::string why;
      auto tokens = tokenize(line, &why);
      if (!tokens) {
        return error(Status::invalid_argument(why));
      }
      if (tokens->empty()) {
        continue;
      }
      if (auto done = step(*tokens)) {
        return *done;
      }
    }
    (void)txn_->rollback();
    return error(Status::invalid_argument("input ended without commit or rollback; the transaction was rolled back"));
  }

 private:
  // nullopt: go on reading; else the exit code (the transaction has ended).
  std::optional<int> step(const std::vector<std::string>& t) {
    const std::string& op = t[0];
    auto arity = [&](std::size_t lo, std::size_t hi) { return t.size() >= lo + 1 && t.size() <= hi + 1; };
    if (op == "get" && arity(1, 1)) {
      auto r = txn_->get(t[1]);
      if (!r.is_ok()) {
        return error(r.status());
      }
      if (json_) {
        nlohmann::json j = {{"key", t[1]}, {"found", r->has_value()}};
        if (r->has_value()) {
          j["value"] = **r;
        }
        print(j);
      } else {
        line(r->has_value() ? **r : std::string("(not found)"));
      }
      return std::nullopt;
    }
    if (op == "scan" && arity(2, 3)) {
      std::uint32_t limit = 100;
      if (t.size() == 4) {
        auto [p, ec] = std::from_chars(t[3].data(), t[3].data() + t[3].size(), limit);
        if (ec != std::errc() || p != t[3].data() + t[3].size()) {
          return error(Status::invalid_argument(fmt::format("scan LIMIT '{}' is not a number", t[3])));
        }
      }
      auto r = txn_->scan(t[1], t[2], limit);
      if (!r.is_ok()) {
        return error(r.status());
      }
      if (json_) {
        nlohmann::json kvs = nlohmann::json::array();
        for (const auto& kv : *r) {
          kvs.push_back({{"key", kv.key}, {"value", kv.value}});
        }
        print({{"op", "scan"}, {"kvs", kvs}});
      } else {
        for (const auto& kv : *r) {
          out_ << kv.key << "\t" << kv.value << "\n";
        }
        line(fmt::format("({} pairs)", r->size()));
      }
      return std::nullopt;
    }
    if ((op == "put" && arity(2, 2)) || (op == "delete" && arity(1, 1))) {
      Status s = op == "put" ? txn_->put(t[1], t[2]) : txn_->erase(t[1]);
      if (!s.is_ok()) {
        return error(s);
      }
      json_ ? print({{"op", op}, {"key", t[1]}, {"ok", true}}) : line("OK");
      return std::nullopt;
    }
    if (op == "commit" && arity(0, 0)) {
      Status s = txn_->commit();
      if (!s.is_ok()) {
        return error(s);
      }
      if (json_) {
        print({{"op", "commit"}, {"ok", true}, {"start_ts", txn_->start_ts()}, {"commit_ts", txn_->commit_ts()}});
      } else {
        line(fmt::format("COMMITTED start_ts {} commit_ts {}", txn_->start_ts(), txn_->commit_ts()));
      }
      return kExitOk;
    }
    if (op == "rollback" && arity(0, 0)) {
      (void)txn_->rollback();
      json_ ? print({{"op", "rollback"}, {"ok", true}, {"start_ts", txn_->start_ts()}}) : line("ROLLED BACK");
      return kExitOk;
    }
    return error(Status::invalid_argument(fmt::format(
        "unknown command or wrong arguments: '{}' (get K | scan START END [LIMIT] | put K V | delete K | commit | "
        "rollback)",
        op)));
  }

  int error(const Status& s) {
    if (txn_) {
      (void)txn_->rollback();
    }
    json_ ? print({{"error", s.to_string()}}) : line("error: " + s.to_string());
    return s.code() == StatusCode::kAborted ? kExitConflict : kExitError;
  }

  void print(const nlohmann::json& j) {
    out_ << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << std::endl;  // answered at once
  }
  void line(const std::string& text) { out_ << text << std::endl; }

  RdbClient& client_;
  std::ostream& out_;
  bool json_;
  std::unique_ptr<Transaction> txn_;
};

}  // namespace

int run_txn_shell(RdbClient& client, std::istream& in, std::ostream& out, bool json) {
  return Shell(client, out, json).run(in);
}

}  // namespace rdb::cli
