#include "history.h"

#include <fmt/format.h>

#include <fstream>
#include <nlohmann/json.hpp>

namespace rdb::chaos {

const char* op_kind_name(OpKind k) {
  switch (k) {
    case OpKind::kGet:
      return "get";
    case OpKind::kCas:
      return "cas";
    case OpKind::kCasDelete:
      return "cas_delete";
    case OpKind::kRawPut:
      return "raw_put";
    case OpKind::kRawGet:
      return "raw_get";
  }
  return "?";
}

const char* outcome_name(Outcome o) {
  switch (o) {
    case Outcome::kOk:
      return "ok";
    case Outcome::kFailed:
      return "failed";
    case Outcome::kUnknown:
      return "unknown";
  }
  return "?";
}

std::string to_json_line(const Operation& op) {
  nlohmann::json j = {{"id", op.id},
                      {"client", op.client},
                      {"key", op.key},
                      {"op", op_kind_name(op.kind)},
                      {"invoke_ns", op.invoke_ns},
                      {"complete_ns", op.complete_ns},
                      {"outcome", outcome_name(op.outcome)}};
  if (op.kind == OpKind::kCas || op.kind == OpKind::kCasDelete) {
    j["expected_version"] = op.expected_version;
  }
  if (op.kind == OpKind::kCas || op.kind == OpKind::kRawPut) {
    j["value"] = op.value;
  }
  if (op.outcome == Outcome::kOk) {
    nlohmann::json r;
    if (op.kind == OpKind::kGet || op.kind == OpKind::kRawGet) {
      r = {{"found", op.found}, {"value", op.result_value}, {"version", op.version}};
    } else if (op.kind != OpKind::kRawPut) {
      r = {{"succeeded", op.succeeded}, {"version", op.version}, {"found", op.found}, {"value", op.result_value}};
    }
    if (!r.is_null()) {
      j["result"] = r;  // a raw_put has no result
    }
  }
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Result<Operation> parse_json_line(const std::string& line) {
  try {
    auto j = nlohmann::json::parse(line);
    Operation op;
    op.id = j.at("id");
    // Numeric defaults are uint64_t: value() returns the default's type, and an int
    // would truncate nanosecond times past 2^31 (2.1 s into a run).
    op.client = j.value("client", std::uint64_t{0});
    op.key = j.at("key");
    std::string kind = j.at("op");
    if (kind == "get") {
      op.kind = OpKind::kGet;
    } else if (kind == "cas") {
      op.kind = OpKind::kCas;
    } else if (kind == "cas_delete") {
      op.kind = OpKind::kCasDelete;
    } else if (kind == "raw_put") {
      op.kind = OpKind::kRawPut;
    } else if (kind == "raw_get") {
      op.kind = OpKind::kRawGet;
    } else {
      return Status::invalid_argument(fmt::format("unknown op '{}'", kind));
    }
    op.expected_version = j.value("expected_version", std::uint64_t{0});
    op.value = j.value("value", "");
    op.invoke_ns = j.at("invoke_ns");
    op.complete_ns = j.value("complete_ns", std::uint64_t{0});
    std::string outcome = j.at("outcome");
    if (outcome == "ok") {
      op.outcome = Outcome::kOk;
    } else if (outcome == "failed") {
      op.outcome = Outcome::kFailed;
    } else if (outcome == "unknown") {
      op.outcome = Outcome::kUnknown;
    } else {
      return Status::invalid_argument(fmt::format("unknown outcome '{}'", outcome));
    }
    if (op.outcome == Outcome::kOk && j.contains("result") && j["result"].is_object()) {
      const auto& r = j["result"];
      op.found = r.value("found", false);
      op.result_value = r.value("value", "");
      op.version = r.value("version", std::uint64_t{0});
      op.succeeded = r.value("succeeded", false);
    }
    if (op.outcome == Outcome::kOk && op.complete_ns < op.invoke_ns) {
      return Status::invalid_argument(fmt::format("operation {} completes before it is invoked", op.id));
    }
    return op;
  } catch (const std::exception& e) {
    return Status::invalid_argument(fmt::format("bad history line: {}", e.what()));
  }
}

std::string to_json_line(const FaultEvent& fault) {
  nlohmann::json j = {
      {"fault", fault.kind}, {"target", fault.target}, {"start_ns", fault.start_ns}, {"end_ns", fault.end_ns}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Result<FaultEvent> parse_fault_line(const std::string& line) {
  try {
    auto j = nlohmann::json::parse(line);
    FaultEvent f;
    f.kind = j.at("fault");
    f.target = j.value("target", "");
    f.start_ns = j.at("start_ns");
    f.end_ns = j.value("end_ns", f.start_ns);
    if (f.end_ns < f.start_ns) {
      return Status::invalid_argument(fmt::format("fault '{}' ends before it starts", f.kind));
    }
    return f;
  } catch (const std::exception& e) {
    return Status::invalid_argument(fmt::format("bad fault line: {}", e.what()));
  }
}

Result<History> read_history_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return ServerStatus::io_error(fmt::format("cannot read history '{}'", path));
  }
  History h;
  std::string line;
  std::size_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.empty() || line[0] != '{') {
      continue;  // comments
    }
    if (line.find("\"fault\"") != std::string::npos) {
      auto f = parse_fault_line(line);
      if (!f.is_ok()) {
        return f.status().with_context(fmt::format("{}:{}", path, n));
      }
      h.faults.push_back(std::move(f).value());
      continue;
    }
    auto op = parse_json_line(line);
    if (!op.is_ok()) {
      return op.status().with_context(fmt::format("{}:{}", path, n));
    }
    h.operations.push_back(std::move(op).value());
  }
  return h;
}

Result<std::vector<Operation>> read_history(const std::string& path) {
  RDB_ASSIGN_OR_RETURN(History h, read_history_file(path));
  return std::move(h.operations);
}

std::string describe(const Operation& op) {
  std::string what;
  switch (op.kind) {
    case OpKind::kGet:
      what = "get";
      break;
    case OpKind::kRawGet:
      what = "raw_get";
      break;
    case OpKind::kRawPut:
      what = fmt::format("raw_put({:?})", op.value);
      break;
    case OpKind::kCas:
      what = fmt::format("cas(expect v{}, {:?})", op.expected_version, op.value);
      break;
    case OpKind::kCasDelete:
      what = fmt::format("cas_delete(expect v{})", op.expected_version);
      break;
  }
  std::string result;
  if (op.outcome == Outcome::kOk) {
    if (op.kind == OpKind::kGet || op.kind == OpKind::kRawGet) {
      result = op.found ? fmt::format(" -> {:?} v{}", op.result_value, op.version) : " -> not found";
    } else if (op.kind != OpKind::kRawPut) {
      result = op.succeeded ? fmt::format(" -> ok v{}", op.version)
                            : fmt::format(" -> conflict (now v{}{})", op.version,
                                          op.found ? fmt::format(" {:?}", op.result_value) : " absent");
    } else {
      result = " -> ok";
    }
  } else {
    result = fmt::format(" -> {}", outcome_name(op.outcome));
  }
  return fmt::format("#{} client {} [{}..{}] {}{}", op.id, op.client, op.invoke_ns,
                     op.outcome == Outcome::kUnknown ? std::string("?") : std::to_string(op.complete_ns), what, result);
}

}  // namespace rdb::chaos
