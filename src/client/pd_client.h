// PdClient: how every part of rdb talks to PD — the client library, the store, and
// through them rdb-cli and rdb-bench. One module instead of a retry loop per call site.
//
// It holds the PD endpoints (one per PD member), the cluster id (asked once with
// GetMembers and stamped on every request's header), and the member that answered
// last. call() sends a unary request there first; after a transport failure it tries
// the next member, and after a full round without an answer it backs off briefly and
// starts again, until the deadline. A member that is not the PD group's leader
// answers NOT_LEADER naming the leader: call() goes there next (or to the next
// member when the leader is not among the endpoints), backing off when answers keep
// saying so (an election in progress). Anything else PD refuses (an error in the
// response header) is the caller's to read: the leader answered.
// A hung member holds an attempt for at most kAttemptTimeout, then the next is tried.
// Thread safety: every method may be called from any thread.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <type_traits>
#include <vector>

#include "common/result.h"
#include "pdpb.grpc.pb.h"

namespace rdb {

class PdClient {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::seconds kAttemptTimeout{5};

  // `endpoints`: HOST:PORT of each PD member (at least one). `creds`: TLS or insecure.
  static Result<std::unique_ptr<PdClient>> create(const std::vector<std::string>& endpoints,
                                                  const std::shared_ptr<grpc::ChannelCredentials>& creds,
                                                  int max_message_bytes);

  // The endpoints given, then the members PD named (GetMembers, NOT_LEADER redirects).
  std::vector<std::string> endpoints() const;
  // The member that answered last (where the next call goes first).
  std::string current() const;
  // A channel to that member, for streams (TSO) that do not go through call().
  std::shared_ptr<grpc::Channel> current_channel() const;

  // A stream on `channel` broke, or its member answered NOT_LEADER naming `leader_hint`
  // (HOST:PORT, empty when unknown): the next call or stream goes to that leader, else
  // to the next member (unless another caller moved on already).
  void member_failed(const std::shared_ptr<grpc::Channel>& channel, const std::string& leader_hint = {});

  // Remembers the members PD listed (GetMembers, a membership change's answer), so that
  // a member added since this client started is tried too.
  void learn_members(const google::protobuf::RepeatedPtrField<pdpb::Member>& members);

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
      grpc::Status s = (stub.*method)(&ctx, request, response);
      return answer_of(std::move(s), response->header());  // read the header after the call
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
        [&](pdpb::PD::Stub& stub, grpc::ClientContext& ctx) {
          grpc::Status s = (stub.*method)(&ctx, request, response);
          return answer_of(std::move(s), response->header());  // read the header after the call
        },
        1);
  }

  // The Status for a failed gRPC call to `who` (deadline, unreachable, or other).
  static Status transport_failure(const grpc::Status& s, const std::string& who);

 private:
  PdClient(const std::vector<std::string>& endpoints, const std::shared_ptr<grpc::ChannelCredentials>& creds,
           int max_message_bytes);
  // One attempt's outcome: the transport's status, and a NOT_LEADER answer's redirect.
  struct Answer {
    grpc::Status transport;
    bool not_leader = false;
    std::string leader;   // the leader's address, when the member named one
    std::string message;  // the member's explanation
  };
  static Answer answer_of(grpc::Status transport, const pdpb::ResponseHeader& header) {
    Answer a;
    a.transport = std::move(transport);
    if (a.transport.ok() && header.error().type() == pdpb::NOT_LEADER) {
      a.not_leader = true;
      a.leader = header.leader();
      a.message = header.error().message();
    }
    return a;
  }
  // Attempts at the members in turn until the leader answers, the deadline passes or
  // `max_attempts` were made (0: no limit).
  Status each_member(Clock::time_point deadline,
                     const std::function<Answer(pdpb::PD::Stub&, grpc::ClientContext&)>& attempt,
                     std::size_t max_attempts = 0);

  struct Member {
    std::string endpoint;
    std::shared_ptr<grpc::Channel> channel;
    std::shared_ptr<pdpb::PD::Stub> stub;
  };
  Member member_at(std::size_t index) const;
  std::size_t member_count() const;
  // Adds a member PD named (at most kMaxMembers); returns its index.
  std::optional<std::size_t> learn(const std::string& endpoint);
  static constexpr std::size_t kMaxMembers = 16;

  const std::shared_ptr<grpc::ChannelCredentials> creds_;
  const int max_message_bytes_;
  mutable std::shared_mutex members_mu_;
  std::vector<Member> members_;  // only grows
  std::atomic<std::size_t> current_{0};
  std::atomic<std::uint64_t> cluster_id_{0};
};

}  // namespace rdb
