#include "client/tso_stream.h"

#include <fmt/format.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>

#include "common/socket_io.h"
#include "common/tcp_socket.h"
#include "common/tso_frame.h"

namespace rdb {
namespace {

class GrpcTsoStream final : public TsoStream {
 public:
  explicit GrpcTsoStream(pdpb::PD::Stub& stub) : stream_(stub.Tso(&ctx_)) {}
  bool write(const pdpb::TsoRequest& req) override { return stream_->Write(req); }
  bool read(pdpb::TsoResponse* resp) override { return stream_->Read(resp); }
  void cancel() override { ctx_.TryCancel(); }
  std::string finish() override {
    grpc::Status s = stream_->Finish();
    return s.ok() ? "" : s.error_message();
  }

 private:
  grpc::ClientContext ctx_;  // declared first: outlives the stream (gRPC's rule)
  std::unique_ptr<grpc::ClientReaderWriter<pdpb::TsoRequest, pdpb::TsoResponse>> stream_;
};

class TcpTsoStream final : public TsoStream {
 public:
  explicit TcpTsoStream(int fd, std::string addr) : fd_(fd), addr_(std::move(addr)) {}
  ~TcpTsoStream() override { ::close(fd_); }
  TcpTsoStream(const TcpTsoStream&) = delete;
  TcpTsoStream& operator=(const TcpTsoStream&) = delete;

  bool write(const pdpb::TsoRequest& req) override {
    req.SerializeToString(&out_);
    return send_all(fd_, encode_frame(kTsoFrameMagic, out_));
  }

  bool read(pdpb::TsoResponse* resp) override {
    Status s = read_frame(fd_, kTsoFrameMagic, kMaxTsoResponseBytes, &in_);
    if (s.is_ok() && resp->ParseFromString(in_)) {
      return true;
    }
    if (!cancelled_.load()) {
      failure_ = fmt::format("the TSO connection to {} failed: {}", addr_,
                             s.is_ok() ? std::string("an answer is not a TsoResponse") : s.message());
    }
    ::shutdown(fd_, SHUT_RDWR);  // a stream that lost its framing is not written to again
    return false;
  }

  void cancel() override {
    cancelled_ = true;
    ::shutdown(fd_, SHUT_RDWR);  // the descriptor stays open (and unreused) until destruction
  }

  std::string finish() override { return cancelled_.load() ? "cancelled" : failure_; }

 private:
  const int fd_;
  const std::string addr_;
  std::atomic<bool> cancelled_{false};
  std::string out_;      // the writer's
  std::string in_;       // the reader's
  std::string failure_;  // the reader's, read by finish() after it
};

}  // namespace

std::unique_ptr<TsoStream> open_grpc_tso_stream(pdpb::PD::Stub& stub) {
  return std::make_unique<GrpcTsoStream>(stub);
}

Result<std::unique_ptr<TsoStream>> open_tcp_tso_stream(const std::string& addr, std::chrono::milliseconds timeout) {
  RDB_ASSIGN_OR_RETURN(int fd, tcp_connect(addr, timeout));
  return std::unique_ptr<TsoStream>(std::make_unique<TcpTsoStream>(fd, addr));
}

}  // namespace rdb
