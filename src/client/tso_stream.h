// TsoStream: one TSO stream to a PD member, as TsoBatcher uses it — gRPC's Tso stream,
// or the member's plain-TCP endpoint (rdb-pd --tso-addr, common/tso_frame.h), which
// serves the same requests without gRPC's per-message work on either end.
//
// Thread safety: one thread reads while another writes; cancel() from any thread ends
// a blocked read() or write(). finish() once read() has returned false, after the last
// write() has returned.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>

#include "common/result.h"
#include "pdpb.grpc.pb.h"

namespace rdb {

class TsoStream {
 public:
  virtual ~TsoStream() = default;
  // False when the stream is dead (its read() fails too).
  virtual bool write(const pdpb::TsoRequest& req) = 0;
  // Blocks for the next answer; false once the stream has ended.
  virtual bool read(pdpb::TsoResponse* resp) = 0;
  virtual void cancel() = 0;
  // Why the stream ended: "" when PD closed it cleanly, else what failed.
  virtual std::string finish() = 0;
};

// gRPC's bidirectional Tso stream on `stub`.
std::unique_ptr<TsoStream> open_grpc_tso_stream(pdpb::PD::Stub& stub);

// PD's plain-TCP TSO endpoint at `addr`, or why it cannot be reached within `timeout`.
Result<std::unique_ptr<TsoStream>> open_tcp_tso_stream(const std::string& addr, std::chrono::milliseconds timeout);

}  // namespace rdb
