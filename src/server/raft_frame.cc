#include "server/raft_frame.h"

#include <fmt/format.h>

namespace rdb {
namespace {

constexpr char kMagic[4] = {'R', 'D', 'B', 'T'};

std::uint32_t load_u32_le(const char* p) {
  const auto* b = reinterpret_cast<const unsigned char*>(p);
  return static_cast<std::uint32_t>(b[0]) | (static_cast<std::uint32_t>(b[1]) << 8) |
         (static_cast<std::uint32_t>(b[2]) << 16) | (static_cast<std::uint32_t>(b[3]) << 24);
}

}  // namespace

void append_raft_frame(const raftsvc::RaftBatch& batch, std::string& out) {
  const auto size = static_cast<std::uint32_t>(batch.ByteSizeLong());
  const std::size_t at = out.size();
  out.resize(at + kRaftFrameHeaderBytes + size);
  char* p = out.data() + at;
  std::copy(std::begin(kMagic), std::end(kMagic), p);
  for (int i = 0; i < 4; ++i) {
    p[4 + i] = static_cast<char>((size >> (8 * i)) & 0xff);
  }
  batch.SerializeWithCachedSizesToArray(reinterpret_cast<std::uint8_t*>(p + kRaftFrameHeaderBytes));
}

void RaftFrameReader::append(std::string_view bytes) {
  if (start_ > 0 && start_ == buf_.size()) {
    buf_.clear();
    start_ = 0;
  } else if (start_ > (1U << 20) && start_ * 2 > buf_.size()) {
    buf_.erase(0, start_);  // keep what is consumed from growing without bound
    start_ = 0;
  }
  buf_.append(bytes);
}

Result<bool> RaftFrameReader::next(raftsvc::RaftBatch& batch) {
  const std::size_t have = buf_.size() - start_;
  if (have < kRaftFrameHeaderBytes) {
    return false;
  }
  const char* p = buf_.data() + start_;
  if (!std::equal(std::begin(kMagic), std::end(kMagic), p)) {
    return Status::invalid_argument("a Raft frame does not start with the magic \"RDBT\"");
  }
  const std::uint32_t size = load_u32_le(p + 4);
  if (size > max_payload_) {
    return Status::invalid_argument(
        fmt::format("a Raft frame of {} bytes is over the limit of {} bytes", size, max_payload_));
  }
  if (have < kRaftFrameHeaderBytes + size) {
    return false;
  }
  if (!batch.ParseFromArray(p + kRaftFrameHeaderBytes, static_cast<int>(size))) {
    return Status::invalid_argument(fmt::format("a Raft frame's {} bytes are not a RaftBatch", size));
  }
  start_ += kRaftFrameHeaderBytes + size;
  return true;
}

}  // namespace rdb
