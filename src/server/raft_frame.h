// The framing of Raft batches on the store-to-store TCP transport (tcp_transport.h).
//
// A frame is an 8-byte header — the magic "RDBT" and the payload's length as a
// little-endian u32 — then the payload: one serialized raftsvc::RaftBatch. The
// reader takes bytes as they arrive and yields whole batches; a frame with another
// magic, a length over the reader's limit, or a payload that does not parse is an
// error, after which the connection is to be closed (the byte stream has no
// resynchronisation point). A reader holds at most one frame's bytes plus what
// one read() returned past it.
// Thread safety: none; one reader per connection.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"
#include "raftsvc.pb.h"

namespace rdb {

inline constexpr std::size_t kRaftFrameHeaderBytes = 8;

// Appends one frame holding `batch` to `out`.
void append_raft_frame(const raftsvc::RaftBatch& batch, std::string& out);

class RaftFrameReader {
 public:
  explicit RaftFrameReader(std::size_t max_payload_bytes) : max_payload_(max_payload_bytes) {}

  // Bytes just read from the connection.
  void append(std::string_view bytes);
  // The next whole batch into `batch`: true when one was taken, false when more bytes
  // are needed; INVALID_ARGUMENT (naming what was wrong) for a bad frame.
  Result<bool> next(raftsvc::RaftBatch& batch);
  // Bytes held (a partial frame, or whole ones not yet taken).
  std::size_t buffered() const { return buf_.size() - start_; }

 private:
  std::size_t max_payload_;
  std::string buf_;
  std::size_t start_ = 0;  // first byte not yet consumed
};

}  // namespace rdb
