#include <fmt/format.h>
#include <grpcpp/grpcpp.h>

#include <atomic>

#include "driver.h"
#include "etcd_rpc.grpc.pb.h"

namespace rdb::bench {
namespace {

constexpr auto kTimeout = std::chrono::seconds(10);

Status from_grpc(const grpc::Status& s) {
  if (s.ok()) {
    return Status::ok();
  }
  std::string msg = fmt::format("etcd: {}", s.error_message());
  switch (s.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
      return Status::unavailable(std::move(msg));
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return Status::deadline_exceeded(std::move(msg));
    case grpc::StatusCode::INVALID_ARGUMENT:
      return Status::invalid_argument(std::move(msg));
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return ServerStatus::busy(std::move(msg));
    default:
      return Status::internal(std::move(msg));
  }
}

class EtcdDriver final : public BenchDriver {
 public:
  EtcdDriver(const std::vector<std::string>& endpoints, bool serializable) : serializable_(serializable) {
    for (const auto& e : endpoints) {
      grpc::ChannelArguments args;
      args.SetMaxReceiveMessageSize(64 << 20);
      stubs_.push_back(
          etcdserverpb::KV::NewStub(grpc::CreateCustomChannel(e, grpc::InsecureChannelCredentials(), args)));
    }
  }

  Status put(const std::string& key, const std::string& value) override {
    etcdserverpb::PutRequest req;
    req.set_key(key);
    req.set_value(value);
    etcdserverpb::PutResponse resp;
    auto ctx = context();
    return from_grpc(stub().Put(ctx.get(), req, &resp));
  }

  Status get(const std::string& key) override { return read_version(key).status(); }

  Result<std::uint64_t> read_version(const std::string& key) override {
    etcdserverpb::RangeRequest req;
    req.set_key(key);
    req.set_serializable(serializable_);
    etcdserverpb::RangeResponse resp;
    auto ctx = context();
    RDB_RETURN_IF_ERROR(from_grpc(stub().Range(ctx.get(), req, &resp)));
    return resp.kvs().empty() ? 0 : static_cast<std::uint64_t>(resp.kvs(0).mod_revision());
  }

  Result<bool> cas(const std::string& key, std::uint64_t version, const std::string& value) override {
    etcdserverpb::TxnRequest req;
    auto* cmp = req.add_compare();
    cmp->set_key(key);
    cmp->set_target(etcdserverpb::Compare::MOD);
    cmp->set_result(etcdserverpb::Compare::EQUAL);
    cmp->set_mod_revision(static_cast<std::int64_t>(version));
    auto* put = req.add_success()->mutable_request_put();
    put->set_key(key);
    put->set_value(value);
    etcdserverpb::TxnResponse resp;
    auto ctx = context();
    RDB_RETURN_IF_ERROR(from_grpc(stub().Txn(ctx.get(), req, &resp)));
    return resp.succeeded();
  }

  Status load_versioned(const std::string& key, const std::string& value) override { return put(key, value); }

  Result<bool> transfer(const std::vector<std::string>& keys) override {
    // One round trip reads every key (a Txn of Ranges), one more writes them if none
    // moved since (compare each key's mod_revision): the same two steps as rdb's.
    etcdserverpb::TxnRequest read;
    for (const auto& k : keys) {
      auto* range = read.add_success()->mutable_request_range();
      range->set_key(k);
      range->set_serializable(serializable_);
    }
    etcdserverpb::TxnResponse got;
    {
      auto ctx = context();
      RDB_RETURN_IF_ERROR(from_grpc(stub().Txn(ctx.get(), read, &got)));
    }
    etcdserverpb::TxnRequest write;
    std::vector<std::int64_t> balances(keys.size(), 0);
    for (std::size_t i = 0; i < keys.size(); ++i) {
      std::int64_t mod = 0;
      if (static_cast<int>(i) < got.responses_size() &&
          got.responses(static_cast<int>(i)).response_range().kvs_size() > 0) {
        const auto& kv = got.responses(static_cast<int>(i)).response_range().kvs(0);
        mod = kv.mod_revision();
        balances[i] = std::strtoll(kv.value().c_str(), nullptr, 10);
      }
      auto* cmp = write.add_compare();
      cmp->set_key(keys[i]);
      cmp->set_target(etcdserverpb::Compare::MOD);
      cmp->set_result(etcdserverpb::Compare::EQUAL);
      cmp->set_mod_revision(mod);
    }
    apply_transfer(balances);
    for (std::size_t i = 0; i < keys.size(); ++i) {
      auto* put = write.add_success()->mutable_request_put();
      put->set_key(keys[i]);
      put->set_value(std::to_string(balances[i]));
    }
    etcdserverpb::TxnResponse done;
    auto ctx = context();
    RDB_RETURN_IF_ERROR(from_grpc(stub().Txn(ctx.get(), write, &done)));
    return done.succeeded();
  }

  Status tso(std::uint32_t) override { return Status::invalid_argument("etcd has no timestamp oracle"); }
  void tso_async(std::uint32_t count, std::function<void(Status)> done) override { done(tso(count)); }

  // --async: gRPC's callback API, each call to the next endpoint in turn (how etcd's client
  // balances unary calls), `done` on the gRPC thread that completed it.
  bool has_async() const override { return true; }

  void put_async(const std::string& key, const std::string& value, std::function<void(Status)> done) override {
    auto* call = new AsyncCall<etcdserverpb::PutRequest, etcdserverpb::PutResponse>(std::move(done));
    call->req.set_key(key);
    call->req.set_value(value);
    next_stub().async()->Put(&call->ctx, &call->req, &call->resp,
                             [call](const grpc::Status& s) { call->finish(from_grpc(s)); });
  }

  void get_async(const std::string& key, std::function<void(Status)> done) override {
    read_version_async(key, std::move(done));
  }

  void read_version_async(const std::string& key, std::function<void(Status)> done) override {
    auto* call = new AsyncCall<etcdserverpb::RangeRequest, etcdserverpb::RangeResponse>(std::move(done));
    call->req.set_key(key);
    call->req.set_serializable(serializable_);
    next_stub().async()->Range(&call->ctx, &call->req, &call->resp,
                               [call](const grpc::Status& s) { call->finish(from_grpc(s)); });
  }

 private:
  static std::unique_ptr<grpc::ClientContext> context() {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() + kTimeout);
    return ctx;
  }
  // Each calling thread sticks to one endpoint, threads spread round-robin.
  etcdserverpb::KV::Stub& stub() {
    thread_local std::size_t mine = next_++;
    return *stubs_[mine % stubs_.size()];
  }

  // One asynchronous call's state, alive from the call until its completion.
  template <typename Request, typename Response>
  struct AsyncCall {
    explicit AsyncCall(std::function<void(Status)> d) : done(std::move(d)) {
      ctx.set_deadline(std::chrono::system_clock::now() + kTimeout);
    }
    void finish(Status s) {
      auto d = std::move(done);
      delete this;  // before `d`: it may issue the next call
      d(std::move(s));
    }
    grpc::ClientContext ctx;
    Request req;
    Response resp;
    std::function<void(Status)> done;
  };
  etcdserverpb::KV::Stub& next_stub() { return *stubs_[next_async_.fetch_add(1) % stubs_.size()]; }

  bool serializable_;
  std::vector<std::unique_ptr<etcdserverpb::KV::Stub>> stubs_;
  inline static std::atomic<std::size_t> next_{0};
  std::atomic<std::size_t> next_async_{0};
};

}  // namespace

Result<std::unique_ptr<BenchDriver>> make_etcd_driver(const std::vector<std::string>& endpoints, bool serializable) {
  if (endpoints.empty()) {
    return Status::invalid_argument("--endpoints: at least one etcd endpoint HOST:PORT is needed");
  }
  return std::unique_ptr<BenchDriver>(std::make_unique<EtcdDriver>(endpoints, serializable));
}

}  // namespace rdb::bench
