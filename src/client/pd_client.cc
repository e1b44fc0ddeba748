#include "client/pd_client.h"

#include <fmt/format.h>

#include <algorithm>
#include <thread>

#include "common/grpc_setup.h"

namespace rdb {

Result<std::unique_ptr<PdClient>> PdClient::create(std::vector<std::string> endpoints,
                                                   const std::shared_ptr<grpc::ChannelCredentials>& creds,
                                                   int max_message_bytes) {
  if (endpoints.empty()) {
    return Status::invalid_argument("no PD endpoint given");
  }
  for (const auto& ep : endpoints) {
    if (ep.empty()) {
      return Status::invalid_argument("an empty PD endpoint");
    }
  }
  return std::unique_ptr<PdClient>(new PdClient(std::move(endpoints), creds, max_message_bytes));
}

PdClient::PdClient(std::vector<std::string> endpoints, const std::shared_ptr<grpc::ChannelCredentials>& creds,
                   int max_message_bytes)
    : endpoints_(std::move(endpoints)) {
  for (const auto& ep : endpoints_) {
    channels_.push_back(make_channel(ep, creds, max_message_bytes));
    stubs_.push_back(pdpb::PD::NewStub(channels_.back()));
  }
}

void PdClient::member_failed(const std::shared_ptr<grpc::Channel>& channel) {
  std::size_t which = current_.load();
  if (channels_[which % channels_.size()] == channel) {
    current_.compare_exchange_strong(which, (which + 1) % channels_.size());
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
    if (failures > 0 && failures % stubs_.size() == 0) {
      // A full round without the leader (a PD that just restarted breaks the first call
      // on an old connection; an election takes a moment): wait a little, then go again.
      auto wake = std::min(deadline, Clock::now() + backoff);
      std::this_thread::sleep_until(wake);
      backoff = std::min(backoff * 2, std::chrono::milliseconds(100));
    }
    const std::size_t which = current_.load() % stubs_.size();
    grpc::ClientContext ctx;
    auto attempt_deadline = std::min(deadline, Clock::now() + kAttemptTimeout);
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::duration_cast<std::chrono::system_clock::duration>(attempt_deadline - Clock::now()));
    Answer a = attempt(*stubs_[which], ctx);
    if (a.transport.ok() && !a.not_leader) {
      return Status::ok();
    }
    ++failures;
    std::size_t next = (which + 1) % stubs_.size();
    if (a.not_leader) {
      last = Status::unavailable(fmt::format("PD {}: {}", endpoints_[which], a.message));
      auto named = std::find(endpoints_.begin(), endpoints_.end(), a.leader);
      if (named != endpoints_.end() && static_cast<std::size_t>(named - endpoints_.begin()) != which) {
        next = static_cast<std::size_t>(named - endpoints_.begin());
      }
    } else {
      last = transport_failure(a.transport, fmt::format("PD {}", endpoints_[which]));
    }
    // Move on, unless another caller already did.
    std::size_t expected = which;
    current_.compare_exchange_strong(expected, next);
  }
  return last;
}

}  // namespace rdb
