#include "client/pd_client.h"

#include <fmt/format.h>

#include <algorithm>
#include <thread>

#include "common/grpc_setup.h"
#include "common/parse.h"

namespace rdb {

Result<std::unique_ptr<PdClient>> PdClient::create(const std::vector<std::string>& endpoints,
                                                   const std::shared_ptr<grpc::ChannelCredentials>& creds,
                                                   int max_message_bytes) {
  // Each entry may itself be a comma-separated list (as --pd takes it).
  std::vector<std::string> all;
  for (const auto& ep : endpoints) {
    if (ep.empty()) {
      return Status::invalid_argument("an empty PD endpoint");
    }
    for (auto& one : split_list(ep)) {
      all.push_back(std::move(one));
    }
  }
  if (all.empty()) {
    return Status::invalid_argument("no PD endpoint given");
  }
  return std::unique_ptr<PdClient>(new PdClient(all, creds, max_message_bytes));
}

PdClient::PdClient(const std::vector<std::string>& endpoints, const std::shared_ptr<grpc::ChannelCredentials>& creds,
                   int max_message_bytes)
    : creds_(creds), max_message_bytes_(max_message_bytes) {
  for (const auto& ep : endpoints) {
    (void)learn(ep);
  }
}

std::optional<std::size_t> PdClient::learn(const std::string& endpoint) {
  std::unique_lock lock(members_mu_);
  for (std::size_t i = 0; i < members_.size(); ++i) {
    if (members_[i].endpoint == endpoint) {
      return i;
    }
  }
  if (members_.size() >= kMaxMembers || endpoint.empty()) {
    return std::nullopt;
  }
  Member m;
  m.endpoint = endpoint;
  m.channel = make_channel(endpoint, creds_, max_message_bytes_);
  m.stub = pdpb::PD::NewStub(m.channel);
  members_.push_back(std::move(m));
  return members_.size() - 1;
}

PdClient::Member PdClient::member_at(std::size_t index) const {
  std::shared_lock lock(members_mu_);
  return members_[index % members_.size()];
}

std::size_t PdClient::member_count() const {
  std::shared_lock lock(members_mu_);
  return members_.size();
}

std::vector<std::string> PdClient::endpoints() const {
  std::shared_lock lock(members_mu_);
  std::vector<std::string> out;
  for (const auto& m : members_) {
    out.push_back(m.endpoint);
  }
  return out;
}

std::string PdClient::current() const {
  return member_at(current_.load()).endpoint;
}

std::shared_ptr<grpc::Channel> PdClient::current_channel() const {
  return member_at(current_.load()).channel;
}

void PdClient::member_failed(const std::shared_ptr<grpc::Channel>& channel, const std::string& leader_hint) {
  std::size_t which = current_.load();
  if (member_at(which).channel != channel) {
    return;  // another caller moved on already
  }
  std::size_t next = (which + 1) % member_count();
  if (auto named = learn(leader_hint); named && *named != which % member_count()) {
    next = *named;
  }
  current_.compare_exchange_strong(which, next);
}

void PdClient::learn_members(const google::protobuf::RepeatedPtrField<pdpb::Member>& members) {
  for (const auto& m : members) {
    (void)learn(m.address());
  }
}

Result<std::uint64_t> PdClient::cluster_id(Clock::time_point deadline) {
  if (std::uint64_t known = cluster_id_.load(); known != 0) {
    return known;
  }
  pdpb::GetMembersResponse resp;
  RDB_RETURN_IF_ERROR(call(&pdpb::PD::Stub::GetMembers, pdpb::GetMembersRequest(), &resp, deadline));
  if (resp.header().cluster_id() == 0) {
    return Status::unavailable(fmt::format("PD {} has no cluster id yet", current()));
  }
  cluster_id_ = resp.header().cluster_id();
  // The group's other members, so that a client given one endpoint survives its loss.
  learn_members(resp.members());
  return resp.header().cluster_id();
}

Status PdClient::transport_failure(const grpc::Status& s, const std::string& who) {
  if (s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    return Status::deadline_exceeded(fmt::format("{} did not answer before the deadline", who));
  }
  if (s.error_code() == grpc::StatusCode::UNAVAILABLE) {
    return Status::unavailable(fmt::format("cannot reach {}: {}", who, s.error_message()));
  }
  return Status::internal(fmt::format("{} failed: {}", who, s.error_message()));
}

Status PdClient::each_member(Clock::time_point deadline,
                             const std::function<Answer(pdpb::PD::Stub&, grpc::ClientContext&)>& attempt,
                             std::size_t max_attempts) {
  Status last = Status::deadline_exceeded("no PD member answered before the deadline");
  std::chrono::milliseconds backoff(2);
  std::size_t failures = 0;  // attempts without an answer (or with "not the leader") in a row
  for (std::size_t tried = 0; Clock::now() < deadline && (max_attempts == 0 || tried < max_attempts); ++tried) {
    const std::size_t count = member_count();
    if (failures > 0 && failures % count == 0) {
      // A full round without the leader (a PD that just restarted breaks the first call
      // on an old connection; an election takes a moment): wait a little, then go again.
      auto wake = std::min(deadline, Clock::now() + backoff);
      std::this_thread::sleep_until(wake);
      backoff = std::min(backoff * 2, std::chrono::milliseconds(100));
    }
    const std::size_t which = current_.load() % count;
    Member member = member_at(which);
    grpc::ClientContext ctx;
    auto attempt_deadline = std::min(deadline, Clock::now() + kAttemptTimeout);
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::duration_cast<std::chrono::system_clock::duration>(attempt_deadline - Clock::now()));
    Answer a = attempt(*member.stub, ctx);
    if (a.transport.ok() && !a.not_leader) {
      return Status::ok();
    }
    ++failures;
    std::size_t next = (which + 1) % count;
    if (a.not_leader) {
      last = Status::unavailable(fmt::format("PD {}: {}", member.endpoint, a.message));
      if (auto named = learn(a.leader); named && *named != which) {
        next = *named;
      }
    } else {
      last = transport_failure(a.transport, fmt::format("PD {}", member.endpoint));
    }
    // Move on, unless another caller already did.
    std::size_t expected = which;
    current_.compare_exchange_strong(expected, next);
  }
  return last;
}

}  // namespace rdb
