#include "common/grpc_setup.h"

#include <absl/synchronization/mutex.h>
#include <fmt/format.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/security/auth_metadata_processor.h>

#include <algorithm>
#include <fstream>
#include <mutex>
#include <sstream>

namespace rdb {

void tune_process_for_grpc() {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}
namespace {

Result<std::string> read_pem(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Status::invalid_argument(fmt::format("cannot read the TLS {} file '{}'", what, path));
  }
  std::ostringstream s;
  s << in.rdbuf();
  if (s.str().find("-----BEGIN") == std::string::npos) {
    return Status::invalid_argument(fmt::format("the TLS {} file '{}' is not PEM", what, path));
  }
  return s.str();
}

Status check_complete(const TlsFiles& tls) {
  if (tls.ca.empty() || tls.cert.empty() || tls.key.empty()) {
    return Status::invalid_argument("TLS needs all three of --ca, --cert and --key");
  }
  return Status::ok();
}

// Refuses calls whose peer certificate's common name is not allowed.
class AllowedCommonNames final : public grpc::AuthMetadataProcessor {
 public:
  explicit AllowedCommonNames(std::vector<std::string> allowed) : allowed_(std::move(allowed)) {}
  bool IsBlocking() const override { return false; }
  grpc::Status Process(const InputMetadata&, grpc::AuthContext* context, OutputMetadata*, OutputMetadata*) override {
    for (const auto& cn : context->FindPropertyValues(GRPC_X509_CN_PROPERTY_NAME)) {
      if (std::find(allowed_.begin(), allowed_.end(), std::string(cn.data(), cn.size())) != allowed_.end()) {
        return grpc::Status::OK;
      }
    }
    return {grpc::StatusCode::UNAUTHENTICATED, "the peer certificate's common name is not in --cert-allowed-cn"};
  }

 private:
  std::vector<std::string> allowed_;
};

// gRPC 1.51 on Linux serves every channel's callback API from one process-global completion
// queue, counted by the channels that used it. When the last of them is destroyed gRPC shuts
// the queue down and joins its poller threads, and that teardown races the pollers themselves
// (ASan: a double free in grpc_cq_internal_unref, on a gRPC thread, after a client with calls in
// flight was destroyed). A channel that is never destroyed and made one callback call keeps
// the count above zero for the life of the process, so the teardown never runs. Its target is
// a Unix socket that does not exist and its one call's deadline has passed: it never connects.
void pin_callback_queue() {
  struct Pin {
    std::shared_ptr<grpc::Channel> channel =
        grpc::CreateChannel("unix:/nonexistent/rdb-callback-queue-pin", grpc::InsecureChannelCredentials());
    grpc::GenericStub stub{channel};
    grpc::ClientContext context;
    grpc::Slice empty;
    grpc::ByteBuffer request{&empty, 1};  // a default ByteBuffer is not a valid message
    grpc::ByteBuffer response;
  };
  static std::once_flag once;
  std::call_once(once, [] {
    static Pin* pin = new Pin();  // reachable until exit, deliberately never freed
    pin->context.set_deadline(std::chrono::system_clock::now());
    pin->stub.UnaryCall(&pin->context, "/rdb.Pin/Pin", grpc::StubOptions(), &pin->request, &pin->response,
                        [](const grpc::Status&) {});
  });
}

}  // namespace

grpc::ChannelArguments default_channel_args(int max_message_bytes) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(max_message_bytes);
  args.SetMaxSendMessageSize(max_message_bytes);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  // gRPC uses the "min reconnect backoff" as the minimum time one connection attempt
  // may take (TCP + HTTP/2 + TLS handshakes). At 100 ms, a loaded machine's handshakes
  // were cut off ("tcp handshaker shutdown"): the CliTest flake under parallel load.
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, kMinConnectTimeoutMs);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, kKeepaliveTimeMs);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, kKeepaliveTimeoutMs);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  return args;
}

void allow_keepalive_pings(grpc::ServerBuilder& builder) {
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, kKeepaliveTimeMs / 2);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
}

Result<std::shared_ptr<grpc::ChannelCredentials>> channel_credentials(const TlsFiles& tls) {
  if (!tls.enabled()) {
    return grpc::InsecureChannelCredentials();
  }
  RDB_RETURN_IF_ERROR(check_complete(tls));
  grpc::SslCredentialsOptions o;
  RDB_ASSIGN_OR_RETURN(o.pem_root_certs, read_pem(tls.ca, "CA"));
  RDB_ASSIGN_OR_RETURN(o.pem_cert_chain, read_pem(tls.cert, "certificate"));
  RDB_ASSIGN_OR_RETURN(o.pem_private_key, read_pem(tls.key, "key"));
  return grpc::SslCredentials(o);
}

Result<std::shared_ptr<grpc::ServerCredentials>> server_credentials(const TlsFiles& tls) {
  if (!tls.enabled()) {
    if (!tls.allowed_cn.empty()) {
      return Status::invalid_argument("--cert-allowed-cn needs TLS (--ca, --cert, --key)");
    }
    return grpc::InsecureServerCredentials();
  }
  RDB_RETURN_IF_ERROR(check_complete(tls));
  grpc::SslServerCredentialsOptions o(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  RDB_ASSIGN_OR_RETURN(o.pem_root_certs, read_pem(tls.ca, "CA"));
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  RDB_ASSIGN_OR_RETURN(pair.cert_chain, read_pem(tls.cert, "certificate"));
  RDB_ASSIGN_OR_RETURN(pair.private_key, read_pem(tls.key, "key"));
  o.pem_key_cert_pairs.push_back(std::move(pair));
  auto creds = grpc::SslServerCredentials(o);
  if (!tls.allowed_cn.empty()) {
    creds->SetAuthMetadataProcessor(std::make_shared<AllowedCommonNames>(tls.allowed_cn));
  }
  return creds;
}

std::shared_ptr<grpc::Channel> make_channel(const std::string& addr,
                                            const std::shared_ptr<grpc::ChannelCredentials>& creds,
                                            int max_message_bytes) {
  pin_callback_queue();
  return grpc::CreateCustomChannel(addr, creds, default_channel_args(max_message_bytes));
}

}  // namespace rdb
