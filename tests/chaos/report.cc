#include "report.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <set>
#include <tuple>

#include "workload.h"

namespace rdb::chaos {
namespace {

double seconds(std::uint64_t ns) {
  return static_cast<double>(ns) / 1e9;
}

std::string escape_html(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

const char* outcome_colour(Outcome o) {
  switch (o) {
    case Outcome::kOk:
      return "#2a9d58";
    case Outcome::kFailed:
      return "#e08a00";
    case Outcome::kUnknown:
      return "#d62828";
  }
  return "#000";
}

const char* fault_colour(const std::string& kind) {
  if (kind.find("partition") != std::string::npos || kind == "one-way") {
    return "#5b7bd5";
  }
  if (kind == "pause") {
    return "#a06cd5";
  }
  if (kind == "pd-restart") {
    return "#3aa6a6";
  }
  if (kind == "split" || kind == "merge" || kind == "move") {
    return "#e0a030";
  }
  return "#d55b5b";  // kill
}

std::uint64_t end_of_run(const History& h) {
  std::uint64_t end = 1;
  for (const auto& op : h.operations) {
    end = std::max({end, op.invoke_ns, op.complete_ns});
  }
  for (const auto& f : h.faults) {
    end = std::max(end, f.end_ns);
  }
  return end;
}

}  // namespace

std::string text_report(const RunSummary& run) {
  const auto& ops = run.history.operations;
  std::map<std::string, std::array<std::size_t, 3>> by_kind;
  std::array<std::size_t, 3> total{};
  for (const auto& op : ops) {
    auto o = static_cast<std::size_t>(op.outcome);
    ++by_kind[op_kind_name(op.kind)][o];
    ++total[o];
  }
  std::string out = fmt::format("scenario: {}  seed: {}  length: {:.1f} s\n", run.scenario, run.seed,
                                seconds(end_of_run(run.history)));
  out += fmt::format("operations: {} (ok {}, failed {}, unknown {})\n", ops.size(), total[0], total[1], total[2]);
  for (const auto& [kind, n] : by_kind) {
    out += fmt::format("  {:<10} ok {:>7}  failed {:>6}  unknown {:>6}\n", kind, n[0], n[1], n[2]);
  }
  out += fmt::format("timestamps: {} obtained, {} calls failed; unique and in real-time order: {}\n", run.tso_obtained,
                     run.tso_failed, run.tso_violation.empty() ? "yes" : "NO — " + run.tso_violation);
  if (run.bank_enabled) {
    const auto& b = run.bank;
    out += fmt::format(
        "bank: transfers committed {}, aborted {}, undetermined {}, failed {}; snapshots {} (failed {}); {}\n",
        b.committed, b.aborted, b.undetermined, b.failed, b.reads.size(), b.reads_failed,
        !b.set_up             ? "the accounts were never created"
        : !b.final_read       ? "no final snapshot (" + b.final_read_error + ")"
        : b.violation.empty() ? "every snapshot balanced"
                              : "VIOLATION: " + b.violation);
  }
  if (run.etcd_watch_enabled) {
    const auto& ew = run.etcd_watch;
    std::size_t acked = 0;
    for (const auto& w : ew.writes) {
      acked += w.acknowledged ? 1 : 0;
    }
    std::string seen;
    for (const auto& s : ew.seen) {
      seen += (seen.empty() ? "" : "/") + std::to_string(s.size());
    }
    out += fmt::format(
        "etcd watch: writes acknowledged {}, unknown {}, failed {}; events seen per watcher {}; {} resumes, {} "
        "gateway restarts; {}\n",
        acked, ew.writes.size() - acked, ew.writes_failed, seen, ew.resumes, ew.gateway_restarts,
        !ew.set_up             ? "never set up (" + ew.error + ")"
        : !ew.error.empty()    ? "ERROR: " + ew.error
        : ew.violation.empty() ? "every acknowledged write seen once, in order, by every watcher"
                               : "VIOLATION: " + ew.violation);
  }
  if (run.list_append_enabled) {
    const auto& la = run.list_append;
    std::string counts;
    for (const auto& [name, n] : la.counts) {
      counts += fmt::format("{}{} {}", counts.empty() ? "" : ", ", name, n);
    }
    out += fmt::format("list-append: transactions ok {}, failed {}, unknown {}; {} in the graph; {}\n",
                       run.list_append_outcomes[0], run.list_append_outcomes[1], run.list_append_outcomes[2],
                       la.transactions, la.ok() ? "no anomaly snapshot isolation forbids" : "ANOMALIES");
    if (!counts.empty()) {
      out += "  found: " + counts + "\n";
    }
    for (const auto& e : la.examples) {
      out += "  " + e + "\n";
    }
  }
  if (run.pd_elections > 0) {
    out += fmt::format("PD group: a member took the leadership {} times\n", run.pd_elections);
  }
  out += fmt::format("faults: {}\n", run.history.faults.size());
  for (const auto& f : run.history.faults) {
    out += fmt::format("  {:7.3f} .. {:7.3f} s  {} {}\n", seconds(f.start_ns), seconds(f.end_ns), f.kind, f.target);
  }
  if (run.confused_messages_sent > 0) {
    out += fmt::format("confused peer: {} messages sent; the stores logged {} refusals (rate-limited)\n",
                       run.confused_messages_sent, run.store_drop_log_lines);
  }
  if (run.joint_change_log_lines > 0) {
    out += fmt::format("replica moves: PD asked for {} joint swaps (a caught-up learner in, a voter out)\n",
                       run.joint_change_log_lines);
  }
  if (run.merge_log_lines > 0) {
    out +=
        fmt::format("merges: stores logged {} completed region merges (one line per replica)\n", run.merge_log_lines);
  }
  for (const auto& line : run.stuck_read_lines) {
    out += "stuck read: " + line + "\n";
  }
  for (const auto& line : run.bank.final_read_diagnosis) {
    out += "final read: " + line + "\n";
  }
  const Verdict& v = run.linearizability;
  out += fmt::format("linearizability: {} ({} operations on {} keys, checked in {:.3f} s)\n",
                     v.linearizable ? "LINEARIZABLE" : "NOT LINEARIZABLE", v.operations, v.keys, v.seconds);
  if (!v.linearizable) {
    out += fmt::format("  {} key(s) fail; the smallest:\n{}", v.failures.size(), v.failures.front().explanation);
  }
  const DurabilityVerdict& d = run.durability;
  out +=
      fmt::format("durability: {} ({} of {} acknowledged log writes read back; unknown outcomes: {} applied, {} not)\n",
                  d.ok ? "OK" : "FAILED", d.read_back, d.acknowledged, d.unknown_applied, d.unknown_lost);
  constexpr std::size_t kShown = 10;
  for (std::size_t i = 0; i < std::min(kShown, d.problems.size()); ++i) {
    out += "  " + d.problems[i] + "\n";
  }
  if (d.problems.size() > kShown) {
    out += fmt::format("  ... and {} more\n", d.problems.size() - kShown);
  }
  out += fmt::format("verdict: {}\n", run.passed() ? "PASS" : "FAIL");
  return out;
}

std::string html_report(const RunSummary& run) {
  constexpr int kLeft = 70, kTop = 20, kWidth = 1100, kLatencyHeight = 360, kGap = 40, kRateHeight = 120;
  constexpr double kMinLatency = 1e-4, kMaxLatency = 30;  // seconds, log scale
  const double run_ns = static_cast<double>(end_of_run(run.history));
  auto x_of = [&](std::uint64_t ns) { return kLeft + static_cast<double>(ns) / run_ns * kWidth; };
  auto y_of_latency = [&](double s) {
    double clamped = std::clamp(s, kMinLatency, kMaxLatency);
    double f = (std::log10(clamped) - std::log10(kMinLatency)) / (std::log10(kMaxLatency) - std::log10(kMinLatency));
    return kTop + (1 - f) * kLatencyHeight;
  };
  const int rate_top = kTop + kLatencyHeight + kGap;
  const int height = rate_top + kRateHeight + 40;

  std::string svg = fmt::format(
      "<svg xmlns='http://www.w3.org/2000/svg' width='{}' height='{}' font-family='sans-serif' font-size='11'>\n",
      kLeft + kWidth + 20, height);
  for (const auto& f : run.history.faults) {  // fault windows across both panels
    double x0 = x_of(f.start_ns);
    double w = std::max(1.0, x_of(f.end_ns) - x0);
    svg += fmt::format(
        "<rect x='{:.1f}' y='{}' width='{:.1f}' height='{}' fill='{}' fill-opacity='0.18'><title>{} {} "
        "{:.3f}..{:.3f} s</title></rect>\n",
        x0, kTop, w, rate_top + kRateHeight - kTop, fault_colour(f.kind), escape_html(f.kind), escape_html(f.target),
        seconds(f.start_ns), seconds(f.end_ns));
    std::string label = f.kind + " " + f.target;
    constexpr double kCharWidth = 6.5;  // at font-size 11: labels of narrow windows would overlap
    if (w >= static_cast<double>(label.size()) * kCharWidth) {
      svg += fmt::format("<text x='{:.1f}' y='{}' fill='{}'>{}</text>\n", x0 + 2, kTop + 12, fault_colour(f.kind),
                         escape_html(label));
    }
  }
  // Latency axis: one grid line per decade.
  for (double s = kMinLatency; s <= kMaxLatency * 1.001; s *= 10) {
    double y = y_of_latency(s);
    std::string label = s < 1e-3 ? fmt::format("{:g} µs", s * 1e6)
                        : s < 1  ? fmt::format("{:g} ms", s * 1e3)
                                 : fmt::format("{:g} s", s);
    svg += fmt::format("<line x1='{}' x2='{}' y1='{:.1f}' y2='{:.1f}' stroke='#ddd'/>", kLeft, kLeft + kWidth, y, y);
    svg += fmt::format("<text x='{}' y='{:.1f}' text-anchor='end'>{}</text>\n", kLeft - 4, y + 4, label);
  }
  // One dot per (pixel, outcome): a long history stays a small file.
  std::set<std::tuple<int, int, int>> dots;
  for (const auto& op : run.history.operations) {
    if (op.complete_ns < op.invoke_ns) {
      continue;
    }
    double latency = seconds(op.complete_ns - op.invoke_ns);
    dots.emplace(static_cast<int>(x_of(op.invoke_ns)), static_cast<int>(y_of_latency(latency)),
                 static_cast<int>(op.outcome));
  }
  for (const auto& [x, y, o] : dots) {
    svg += fmt::format("<rect x='{}' y='{}' width='2' height='2' fill='{}'/>", x, y,
                       outcome_colour(static_cast<Outcome>(o)));
  }
  svg += "\n";
  // Throughput: completed operations per 100 ms bucket, by outcome.
  constexpr std::uint64_t kBucketNs = 100'000'000;
  std::size_t buckets = static_cast<std::size_t>(run_ns / kBucketNs) + 1;
  std::array<std::vector<std::size_t>, 3> rate;
  for (auto& r : rate) {
    r.assign(buckets, 0);
  }
  std::size_t peak = 1;
  for (const auto& op : run.history.operations) {
    if (op.client == kFinalReader) {
      continue;  // batched read-back after the run, not throughput
    }
    auto b = std::min(buckets - 1, static_cast<std::size_t>(op.complete_ns / kBucketNs));
    peak = std::max(peak, ++rate[static_cast<std::size_t>(op.outcome)][b]);
  }
  for (int o = 0; o < 3; ++o) {
    std::string points;
    for (std::size_t b = 0; b < buckets; ++b) {
      double y = rate_top + kRateHeight * (1 - static_cast<double>(rate[static_cast<std::size_t>(o)][b]) /
                                                   static_cast<double>(peak));
      points += fmt::format("{:.1f},{:.1f} ", x_of(b * kBucketNs + kBucketNs / 2), y);
    }
    svg += fmt::format("<polyline fill='none' stroke='{}' stroke-width='1.2' points='{}'/>\n",
                       outcome_colour(static_cast<Outcome>(o)), points);
  }
  svg += fmt::format("<line x1='{}' x2='{}' y1='{}' y2='{}' stroke='#888'/>", kLeft, kLeft + kWidth,
                     rate_top + kRateHeight, rate_top + kRateHeight);
  svg += fmt::format("<text x='{}' y='{}' text-anchor='end'>{:.0f}/s</text>", kLeft - 4, rate_top + 8,
                     static_cast<double>(peak) * 1e9 / kBucketNs);
  svg += fmt::format("<text x='{}' y='{}' text-anchor='end'>0</text>\n", kLeft - 4, rate_top + kRateHeight);
  for (int t = 0; t <= static_cast<int>(run_ns / 1e9); t += std::max(1, static_cast<int>(run_ns / 1e9 / 20))) {
    double x = x_of(static_cast<std::uint64_t>(t) * 1'000'000'000ULL);
    svg += fmt::format("<text x='{:.1f}' y='{}' text-anchor='middle'>{} s</text>", x, height - 18, t);
  }
  svg += fmt::format("<text x='{}' y='{}'>latency per operation (log scale) by start time</text>", kLeft, kTop - 6);
  svg += fmt::format("<text x='{}' y='{}'>completed operations per second</text>\n", kLeft, rate_top - 6);
  svg += "</svg>\n";

  std::string legend;
  for (Outcome o : {Outcome::kOk, Outcome::kFailed, Outcome::kUnknown}) {
    legend += fmt::format("<span style='color:{}'>&#9632; {}</span> ", outcome_colour(o), outcome_name(o));
  }
  legend += " &nbsp; fault windows: ";
  for (const char* kind : {"kill", "pause", "partition", "pd-restart", "split"}) {  // split: also merge, move
    legend += fmt::format("<span style='color:{}'>&#9632; {}</span> ", fault_colour(kind), kind);
  }
  return fmt::format(
      "<!doctype html>\n<html><head><meta charset='utf-8'><title>rdb chaos: {0}</title></head>\n"
      "<body style='font-family:sans-serif'>\n<h2>rdb chaos run: {0} — {1}</h2>\n<p>{2} (hover a window for "
      "details)</p>\n{3}<pre>{4}</pre>\n</body></html>\n",
      escape_html(run.scenario), run.passed() ? "PASS" : "FAIL", legend, svg, escape_html(text_report(run)));
}

}  // namespace rdb::chaos
