// PdClient: how every part of rdb talks to PD — the client library, the store, and
// through them rdb-cli and rdb-bench. One module instead of a retry loop per call site.
//
// It holds the PD endpoints (one per PD member), the cluster id (asked once with
// GetMembers and stamped on every request's header), and the member that answered
// last. call() sends a unary request there first; after a transport failure it tries
// the next member, and after a full round without an answer it backs off briefly and
// starts again, until the deadline. What PD itself refuses (an error in the response
// header) is the caller's to read: that member answered.
// A hung member holds an attempt until the deadline (no per-attempt timeout yet; PD
// high availability — docs/plans/pd-ha.md — brings leader discovery and redirects).
// Thread safety: every method may be called from any thread.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "common/result.h"
#include "pdpb.grpc.pb.h"

namespace rdb {

class PdClient {
 public:
  using Clock = std::chrono::steady_clock;

  // `endpoints`: HOST:PORT of each PD member (at least one). `creds`: TLS or insecure.
  static Result<std::unique_ptr<PdClient>> create(std::vector<std::string> endpoints,
                                                  const std::shared_ptr<grpc::ChannelCredentials>& creds,
                                                  int max_message_bytes);

  const std::vector<std::string>& endpoints() const { return endpoints_; }
  // The member that answered last (where the next call goes first).
  std::string current() const { return endpoints_[current_.load() % endpoints_.size()]; }
  // A channel to that member, for streams (TSO) that do not go through call().
  std::shared_ptr<grpc::Channel> current_channel() const { return channels_[current_.load() % channels_.size()]; }

  // A stream on `channel` broke: the next call or stream tries the next member (unless
  // another caller moved on already).
  void member_failed(const std::shared_ptr<grpc::Channel>& channel);

  // The id of the cluster PD serves (GetMembers, asked once).
  Result<std::uint64_t> cluster_id(Clock::time_point deadline);

  // Sends `request` (its header stamped with the cluster id) to the members in turn
  // until one answers or `deadline` passes; OK means `response` holds that answer.
  // Otherwise UNAVAILABLE or DEADLINE_EXCEEDED naming the member tried last.
  template <typename Request, typename Response>
  Status call(grpc::Status (pdpb::PD::Stub::*method)(grpc::ClientContext*, const Request&, Response*), Request request,
              Response* response, Clock::time_point deadline) {
    if constexpr (!std::is_same_v<Request, pdpb::GetMembersRequest>) {
      RDB_ASSIGN_OR_RETURN(std::uint64_t id, cluster_id(deadline));
      request.mutable_header()->set_cluster_id(id);
    }
    return each_member(deadline, [&](pdpb::PD::Stub& stub, grpc::ClientContext& ctx) {
      return (stub.*method)(&ctx, request, response);
    });
  }

  // Like call(), but one attempt only (at the member that answered last; the next call
  // starts at the next member if this one failed): for requests whose lost answer must
  // not be followed by a second try, such as Bootstrap.
  template <typename Request, typename Response>
  Status call_once(grpc::Status (pdpb::PD::Stub::*method)(grpc::ClientContext*, const Request&, Response*),
                   Request request, Response* response, Clock::time_point deadline) {
    RDB_ASSIGN_OR_RETURN(std::uint64_t id, cluster_id(deadline));
    request.mutable_header()->set_cluster_id(id);
    return each_member(
        deadline,
        [&](pdpb::PD::Stub& stub, grpc::ClientContext& ctx) { return (stub.*method)(&ctx, request, response); }, 1);
  }

  // The Status for a failed gRPC call to `who` (deadline, unreachable, or other).
  static Status transport_failure(const grpc::Status& s, const std::string& who);

 private:
  PdClient(std::vector<std::string> endpoints, const std::shared_ptr<grpc::ChannelCredentials>& creds,
           int max_message_bytes);
  // Attempts at the members in turn until one answers, the deadline passes or
  // `max_attempts` were made (0: no limit).
  Status each_member(Clock::time_point deadline,
                     const std::function<grpc::Status(pdpb::PD::Stub&, grpc::ClientContext&)>& attempt,
                     std::size_t max_attempts = 0);

  const std::vector<std::string> endpoints_;
  std::vector<std::shared_ptr<grpc::Channel>> channels_;
  std::vector<std::unique_ptr<pdpb::PD::Stub>> stubs_;
  std::atomic<std::size_t> current_{0};
  std::atomic<std::uint64_t> cluster_id_{0};
};

}  // namespace rdb
