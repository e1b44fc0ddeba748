// PdService: the gRPC face of the Placement Driver (pdpb.PD).
//
// Answers TSO over a bidirectional stream (one reply per request, each granting
// `count` consecutive timestamps), id allocation, and cluster metadata. Every
// request's header is checked against this PD's cluster id (0 = any).
//
// In a PD group only the serving leader answers (PdGroup::serving_term()); every
// other member answers NOT_LEADER naming the leader, except GetMembers, which any
// member answers. Changes to persisted state go through the group's log
// (PdGroup::propose) and are answered once applied. The TSO and id allocators live
// for one leadership term: a new term starts them from the bounds the group
// committed, and every bound they hand out below is committed before use.
// Thread safety: gRPC calls handlers concurrently; all state it touches is
// internally synchronised. It does not own the allocators or metadata.
#pragma once

#include <chrono>
#include <map>
#include <mutex>

#include "common/metrics.h"
#include "pd/balancer.h"
#include "pd/cluster_meta.h"
#include "pd/id_allocator.h"
#include "pd/merge_checker.h"
#include "pd/move_peer.h"
#include "pd/operation_log.h"
#include "pd/pd_group.h"
#include "pd/replica_checker.h"
#include "pd/tso_allocator.h"
#include "pdpb.grpc.pb.h"

namespace rdb {

// Tso runs on gRPC's callback API: a stream's requests are answered by a reactor
// without a handler thread per stream hop, which shortens the TSO round trip.
class PdService final : public pdpb::PD::WithCallbackMethod_Tso<pdpb::PD::Service> {
 public:
  PdService(PdGroup& group, Clock& clock, TsoAllocator::Options tso_options, ClusterMeta& meta,
            ClusterLiveness& liveness, MetricsRegistry& metrics, BalanceConfig balance = {}, MergeConfig merge = {});
  // The address this member serves on (for GetMembers when it was bound to port 0).
  void set_self_address(std::string address) { group_.set_self_address(std::move(address)); }
  // Transactional versions older than this are collected (the GC safe point trails the
  // leader's TSO by it); 0 never moves the safe point. Default 10 minutes.
  void set_gc_life_time(std::chrono::milliseconds life) { gc_life_time_ms_ = static_cast<std::uint64_t>(life.count()); }

  grpc::Status GetMembers(grpc::ServerContext*, const pdpb::GetMembersRequest*, pdpb::GetMembersResponse*) override;
  grpc::ServerBidiReactor<pdpb::TsoRequest, pdpb::TsoResponse>* Tso(grpc::CallbackServerContext*) override;
  // Serves one TsoRequest; an error status ends the stream (allocation failed).
  grpc::Status serve_tso(const pdpb::TsoRequest& req, pdpb::TsoResponse* resp);
  // HOST:PORT of this member's plain-TCP TSO endpoint, told to clients on the gRPC
  // stream's answers ("" = none). Set before serving.
  void set_tso_addr(std::string addr) { tso_addr_ = std::move(addr); }
  const std::string& tso_addr() const { return tso_addr_; }
  grpc::Status AllocId(grpc::ServerContext*, const pdpb::AllocIdRequest*, pdpb::AllocIdResponse*) override;
  grpc::Status IsBootstrapped(grpc::ServerContext*, const pdpb::IsBootstrappedRequest*,
                              pdpb::IsBootstrappedResponse*) override;
  grpc::Status Bootstrap(grpc::ServerContext*, const pdpb::BootstrapRequest*, pdpb::BootstrapResponse*) override;
  // A store's address may change only by a caller with the TLS identity it first registered with.
  grpc::Status PutStore(grpc::ServerContext*, const pdpb::PutStoreRequest*, pdpb::PutStoreResponse*) override;
  grpc::Status GetStore(grpc::ServerContext*, const pdpb::GetStoreRequest*, pdpb::GetStoreResponse*) override;
  grpc::Status GetAllStores(grpc::ServerContext*, const pdpb::GetAllStoresRequest*,
                            pdpb::GetAllStoresResponse*) override;
  grpc::Status GetRegion(grpc::ServerContext*, const pdpb::GetRegionRequest*, pdpb::GetRegionResponse*) override;
  grpc::Status GetRegionById(grpc::ServerContext*, const pdpb::GetRegionByIdRequest*,
                             pdpb::GetRegionResponse*) override;
  grpc::Status RegionHeartbeat(grpc::ServerContext*, const pdpb::RegionHeartbeatRequest*,
                               pdpb::RegionHeartbeatResponse*) override;
  grpc::Status StoreHeartbeat(grpc::ServerContext*, const pdpb::StoreHeartbeatRequest*,
                              pdpb::StoreHeartbeatResponse*) override;
  grpc::Status GetClusterStatus(grpc::ServerContext*, const pdpb::GetClusterStatusRequest*,
                                pdpb::GetClusterStatusResponse*) override;
  grpc::Status RemoveStore(grpc::ServerContext*, const pdpb::RemoveStoreRequest*, pdpb::RemoveStoreResponse*) override;
  grpc::Status UpdateGcSafePoint(grpc::ServerContext*, const pdpb::UpdateGcSafePointRequest*,
                                 pdpb::UpdateGcSafePointResponse*) override;
  grpc::Status MovePeer(grpc::ServerContext*, const pdpb::MovePeerRequest*, pdpb::MovePeerResponse*) override;
  grpc::Status AddMember(grpc::ServerContext*, const pdpb::AddMemberRequest*, pdpb::AddMemberResponse*) override;
  grpc::Status RemoveMember(grpc::ServerContext*, const pdpb::RemoveMemberRequest*,
                            pdpb::RemoveMemberResponse*) override;

  // The scheduling steps this member asked of regions lately (see OperationLog).
  const OperationLog& operations() const { return operations_; }
  // Timestamps this member handed out since it started.
  std::uint64_t timestamps_handed_out() const { return tso_timestamps_.value(); }

 private:
  // Fills the response header; returns false (and sets the error) on a cluster id
  // mismatch, or (NOT_LEADER) when this member does not serve as the leader now.
  bool check_header(const pdpb::RequestHeader& req, pdpb::ResponseHeader* resp);
  bool check_cluster(const pdpb::RequestHeader& req, pdpb::ResponseHeader* resp);
  void set_not_leader(pdpb::ResponseHeader* resp);
  // Replicates a change through the group's log; the apply's answer. A lost
  // leadership sets NOT_LEADER in `resp` (and returns UNAVAILABLE).
  Status replicate(pdpb::PdCommand command, pdpb::ResponseHeader* resp);
  // The allocators of the term this member serves in (created on first use in a term:
  // that commits a fresh TSO bound); nullptr when it does not serve.
  struct LeaderAllocators;
  std::shared_ptr<LeaderAllocators> allocators();
  bool handed_out(std::uint64_t id) const { return id >= 1 && id < group_.id_bound(); }
  // A region heartbeat must name a leader that is a member of the region, ids this PD
  // allocated, and an epoch that grew only by the changes PD asked for.
  Status validate_region_heartbeat(const pdpb::RegionHeartbeatRequest& req);
  // Liveness of every known store, with region counts from PD's region tree.
  std::map<std::uint64_t, StoreLiveness> store_liveness();
  // The replica checker's step for a heartbeating region, else a merge, else the balancer's.
  RegionDecision schedule(const pdpb::RegionHeartbeatRequest& req);
  // Drops what PD remembers per region (sizes, steps in flight, moves, epoch allowances)
  // for regions neither in `regions` (the tree a moment ago) nor in the tree now (merged
  // away): called with load_mu_ held whenever the load is recomputed, so memory follows
  // the regions that exist.
  void forget_gone_regions(const std::vector<pdpb::RegionInfo>& regions);
  // The merge checker's view of a region PD knows (nullopt: none).
  std::optional<MergeCandidate> merge_candidate(const std::optional<pdpb::RegionInfo>& info);
  static constexpr std::uint64_t kEpochSlack = 2;
  static constexpr std::uint64_t kVersionSlack = 1024;

  PdGroup& group_;
  Clock& clock_;
  const TsoAllocator::Options tso_options_;
  std::string tso_addr_;
  // Moves the replicated GC safe point up to (TSO now − life time), in steps of a second.
  void advance_gc_safe_point();
  std::atomic<std::uint64_t> gc_life_time_ms_{600'000};
  std::mutex allocators_mu_;  // held while a term's allocators are created
  std::shared_ptr<LeaderAllocators> allocators_;
  ClusterMeta& meta_;
  ClusterLiveness& liveness_;
  Counter& tso_requests_;
  Counter& tso_timestamps_;
  OperationLog operations_;
  void record_operation(std::uint64_t region_id, std::string kind, std::string detail);
  Histogram& tso_latency_;
  std::mutex epoch_mu_;
  std::map<std::uint64_t, std::uint64_t> conf_ver_allowance_;  // region -> conf_ver bumps PD may still see
  const BalanceConfig balance_;
  const MergeConfig merge_;
  // Regions' sizes as their leaders last reported them (in memory only).
  // Refused region reports, logged at most every 10 s.
  void log_refused_report(const Status& why);
  std::mutex refusals_mu_;
  std::uint64_t refusals_ = 0;                            // guarded by refusals_mu_
  std::chrono::steady_clock::time_point refusal_logged_;  // guarded by refusals_mu_
  std::mutex sizes_mu_;
  std::map<std::uint64_t, std::pair<std::uint64_t, std::uint64_t>> region_sizes_;  // id -> (bytes, keys)
  std::map<std::uint64_t, std::pair<std::uint64_t, std::uint64_t>> range_since_;   // id -> (version, since ms)
  // The cluster's load, recomputed from the region tree at most every 500 ms (not per
  // heartbeat), and the schedule limits' accounting since.
  std::mutex load_mu_;
  ClusterLoad load_;
  std::uint64_t load_at_ms_ = 0;
  std::uint32_t moves_started_ = 0;     // region moves begun since load_ was computed
  std::uint64_t leader_window_ms_ = 0;  // start of the current one-second window
  std::uint32_t leader_transfers_ = 0;  // transfers asked for in that window
  // The step PD last asked of a region, until the region reports it done (its conf_ver
  // or leader changed) or 3 s pass: heartbeats sent before the step applied must not
  // start another (e.g. a second learner on the same store).
  // A merge's target is held the same way (conf_ver and leader 0: any) while its source
  // reports the merge under way.
  struct InFlight {
    std::uint64_t conf_ver = 0;  // 0: any
    std::uint64_t leader = 0;    // 0: any
    std::uint64_t until_ms = 0;
  };
  std::map<std::uint64_t, InFlight> in_flight_;  // by region id
  // Replica moves asked for by hand (MovePeer), by region id; under load_mu_.
  std::map<std::uint64_t, rdb::MovePeer> moves_;
  static constexpr std::uint64_t kMovePeerTimeoutMs = 120'000;
};

}  // namespace rdb
