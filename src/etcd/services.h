// The gRPC services of etcd's v3 API that the gateway serves, over EtcdKv and the
// member registry: KV, Maintenance (Status, Alarm), Cluster (MemberList) and Auth.
// What the gateway does not support answers UNIMPLEMENTED with a message saying so.
// Thread safety: gRPC calls the handlers from its threads; they share nothing mutable.
// Ownership: borrows what it is given; all of it must outlive the server.
#pragma once

#include "etcd/kv.h"
#include "etcd/members.h"
#include "etcd_rpc.grpc.pb.h"

namespace rdb::etcd {

inline constexpr const char* kEtcdApiVersion = "3.4.0";

class KvService final : public etcdserverpb::KV::Service {
 public:
  explicit KvService(EtcdKv& kv) : kv_(kv) {}
  grpc::Status Range(grpc::ServerContext*, const etcdserverpb::RangeRequest* req,
                     etcdserverpb::RangeResponse* resp) override;
  grpc::Status Put(grpc::ServerContext*, const etcdserverpb::PutRequest* req, etcdserverpb::PutResponse* resp) override;
  grpc::Status DeleteRange(grpc::ServerContext*, const etcdserverpb::DeleteRangeRequest* req,
                           etcdserverpb::DeleteRangeResponse* resp) override;
  grpc::Status Txn(grpc::ServerContext*, const etcdserverpb::TxnRequest* req, etcdserverpb::TxnResponse* resp) override;
  grpc::Status Compact(grpc::ServerContext*, const etcdserverpb::CompactionRequest* req,
                       etcdserverpb::CompactionResponse* resp) override;

 private:
  EtcdKv& kv_;
};

class MaintenanceService final : public etcdserverpb::Maintenance::Service {
 public:
  MaintenanceService(EtcdKv& kv, RdbClient& client) : kv_(kv), client_(client) {}
  grpc::Status Alarm(grpc::ServerContext*, const etcdserverpb::AlarmRequest* req,
                     etcdserverpb::AlarmResponse* resp) override;
  grpc::Status Status(grpc::ServerContext*, const etcdserverpb::StatusRequest* req,
                      etcdserverpb::StatusResponse* resp) override;
  grpc::Status Defragment(grpc::ServerContext*, const etcdserverpb::DefragmentRequest*,
                          etcdserverpb::DefragmentResponse*) override;
  grpc::Status Hash(grpc::ServerContext*, const etcdserverpb::HashRequest*, etcdserverpb::HashResponse*) override;
  grpc::Status HashKV(grpc::ServerContext*, const etcdserverpb::HashKVRequest*, etcdserverpb::HashKVResponse*) override;
  grpc::Status Snapshot(grpc::ServerContext*, const etcdserverpb::SnapshotRequest*,
                        grpc::ServerWriter<etcdserverpb::SnapshotResponse>*) override;
  grpc::Status MoveLeader(grpc::ServerContext*, const etcdserverpb::MoveLeaderRequest*,
                          etcdserverpb::MoveLeaderResponse*) override;

 private:
  EtcdKv& kv_;
  RdbClient& client_;
};

class ClusterService final : public etcdserverpb::Cluster::Service {
 public:
  ClusterService(EtcdKv& kv, MemberRegistry& members) : kv_(kv), members_(members) {}
  grpc::Status MemberList(grpc::ServerContext*, const etcdserverpb::MemberListRequest* req,
                          etcdserverpb::MemberListResponse* resp) override;
  grpc::Status MemberAdd(grpc::ServerContext*, const etcdserverpb::MemberAddRequest*,
                         etcdserverpb::MemberAddResponse*) override;
  grpc::Status MemberRemove(grpc::ServerContext*, const etcdserverpb::MemberRemoveRequest*,
                            etcdserverpb::MemberRemoveResponse*) override;
  grpc::Status MemberUpdate(grpc::ServerContext*, const etcdserverpb::MemberUpdateRequest*,
                            etcdserverpb::MemberUpdateResponse*) override;
  grpc::Status MemberPromote(grpc::ServerContext*, const etcdserverpb::MemberPromoteRequest*,
                             etcdserverpb::MemberPromoteResponse*) override;

 private:
  EtcdKv& kv_;
  MemberRegistry& members_;
};

class AuthService final : public etcdserverpb::Auth::Service {
 public:
  grpc::Status AuthEnable(grpc::ServerContext*, const etcdserverpb::AuthEnableRequest*,
                          etcdserverpb::AuthEnableResponse*) override;
  grpc::Status AuthDisable(grpc::ServerContext*, const etcdserverpb::AuthDisableRequest*,
                           etcdserverpb::AuthDisableResponse*) override;
  grpc::Status AuthStatus(grpc::ServerContext*, const etcdserverpb::AuthStatusRequest*,
                          etcdserverpb::AuthStatusResponse*) override;
  grpc::Status Authenticate(grpc::ServerContext*, const etcdserverpb::AuthenticateRequest*,
                            etcdserverpb::AuthenticateResponse*) override;
};

}  // namespace rdb::etcd
