#include "etcd/services.h"

namespace rdb::etcd {

using grpc::ServerContext;

grpc::Status KvService::Range(ServerContext*, const etcdserverpb::RangeRequest* req,
                              etcdserverpb::RangeResponse* resp) {
  return kv_.range(*req, resp);
}

grpc::Status KvService::Put(ServerContext*, const etcdserverpb::PutRequest* req, etcdserverpb::PutResponse* resp) {
  return kv_.put(*req, resp);
}

grpc::Status KvService::DeleteRange(ServerContext*, const etcdserverpb::DeleteRangeRequest* req,
                                    etcdserverpb::DeleteRangeResponse* resp) {
  return kv_.delete_range(*req, resp);
}

grpc::Status KvService::Txn(ServerContext*, const etcdserverpb::TxnRequest* req, etcdserverpb::TxnResponse* resp) {
  return kv_.txn(*req, resp);
}

grpc::Status KvService::Compact(ServerContext*, const etcdserverpb::CompactionRequest* req,
                                etcdserverpb::CompactionResponse* resp) {
  return kv_.compact(*req, resp);
}

grpc::Status MaintenanceService::Alarm(ServerContext*, const etcdserverpb::AlarmRequest* req,
                                       etcdserverpb::AlarmResponse* resp) {
  if (req->action() != etcdserverpb::AlarmRequest::GET) {
    return err_not_supported("raising or clearing alarms");
  }
  auto ts = client_.get_tso(1);
  if (!ts.is_ok()) {
    return to_grpc(ts.status());
  }
  kv_.fill_header(resp->mutable_header(), static_cast<std::int64_t>(*ts));
  return grpc::Status::OK;  // no alarms: rdb stores refuse writes on a full disk on their own
}

grpc::Status MaintenanceService::Status(ServerContext*, const etcdserverpb::StatusRequest*,
                                        etcdserverpb::StatusResponse* resp) {
  auto cluster = client_.cluster_status();
  if (!cluster.is_ok()) {
    return to_grpc(cluster.status());
  }
  auto ts = client_.get_tso(1);
  if (!ts.is_ok()) {
    return to_grpc(ts.status());
  }
  std::uint64_t size = 0;
  for (const auto& r : cluster->regions) {
    size += r.approximate_size;
  }
  const auto revision = static_cast<std::int64_t>(*ts);
  kv_.fill_header(resp->mutable_header(), revision);
  resp->set_version(kEtcdApiVersion);
  resp->set_dbsize(static_cast<std::int64_t>(size));
  resp->set_dbsizeinuse(static_cast<std::int64_t>(size));
  // Every gateway serves reads and writes: each one answers as its own leader.
  resp->set_leader(kv_.member_id());
  resp->set_raftterm(1);
  resp->set_raftindex(static_cast<std::uint64_t>(revision));
  resp->set_raftappliedindex(static_cast<std::uint64_t>(revision));
  return grpc::Status::OK;
}

grpc::Status MaintenanceService::Defragment(ServerContext*, const etcdserverpb::DefragmentRequest*,
                                            etcdserverpb::DefragmentResponse*) {
  return err_not_supported("Defragment (rdb's stores compact their RocksDB on their own)");
}

grpc::Status MaintenanceService::Hash(ServerContext*, const etcdserverpb::HashRequest*, etcdserverpb::HashResponse*) {
  return err_not_supported("Hash");
}

grpc::Status MaintenanceService::HashKV(ServerContext*, const etcdserverpb::HashKVRequest*,
                                        etcdserverpb::HashKVResponse*) {
  return err_not_supported("HashKV");
}

grpc::Status MaintenanceService::Snapshot(ServerContext*, const etcdserverpb::SnapshotRequest*,
                                          grpc::ServerWriter<etcdserverpb::SnapshotResponse>*) {
  return err_not_supported("Snapshot (back up the rdb cluster instead)");
}

grpc::Status MaintenanceService::MoveLeader(ServerContext*, const etcdserverpb::MoveLeaderRequest*,
                                            etcdserverpb::MoveLeaderResponse*) {
  return err_not_supported("MoveLeader (gateways have no leader)");
}

grpc::Status ClusterService::MemberList(ServerContext*, const etcdserverpb::MemberListRequest*,
                                        etcdserverpb::MemberListResponse* resp) {
  auto members = members_.list();
  if (!members.is_ok()) {
    return to_grpc(members.status());
  }
  for (auto& m : *members) {
    *resp->add_members() = std::move(m);
  }
  kv_.fill_header(resp->mutable_header(), 0);
  return grpc::Status::OK;
}

grpc::Status ClusterService::MemberAdd(ServerContext*, const etcdserverpb::MemberAddRequest*,
                                       etcdserverpb::MemberAddResponse*) {
  return err_not_supported("MemberAdd (start another rdb-etcd gateway instead)");
}

grpc::Status ClusterService::MemberRemove(ServerContext*, const etcdserverpb::MemberRemoveRequest*,
                                          etcdserverpb::MemberRemoveResponse*) {
  return err_not_supported("MemberRemove (stop the gateway instead)");
}

grpc::Status ClusterService::MemberUpdate(ServerContext*, const etcdserverpb::MemberUpdateRequest*,
                                          etcdserverpb::MemberUpdateResponse*) {
  return err_not_supported("MemberUpdate");
}

grpc::Status ClusterService::MemberPromote(ServerContext*, const etcdserverpb::MemberPromoteRequest*,
                                           etcdserverpb::MemberPromoteResponse*) {
  return err_not_supported("MemberPromote");
}

grpc::Status AuthService::AuthEnable(ServerContext*, const etcdserverpb::AuthEnableRequest*,
                                     etcdserverpb::AuthEnableResponse*) {
  return err_not_supported("authentication (use TLS client certificates)");
}

grpc::Status AuthService::AuthDisable(ServerContext*, const etcdserverpb::AuthDisableRequest*,
                                      etcdserverpb::AuthDisableResponse*) {
  return err_not_supported("authentication (use TLS client certificates)");
}

grpc::Status AuthService::AuthStatus(ServerContext*, const etcdserverpb::AuthStatusRequest*,
                                     etcdserverpb::AuthStatusResponse*) {
  return err_not_supported("authentication (use TLS client certificates)");
}

grpc::Status AuthService::Authenticate(ServerContext*, const etcdserverpb::AuthenticateRequest*,
                                       etcdserverpb::AuthenticateResponse*) {
  return err_not_supported("authentication (use TLS client certificates)");
}

}  // namespace rdb::etcd
