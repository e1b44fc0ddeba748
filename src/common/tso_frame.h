// The frames of PD's plain-TCP TSO endpoint (rdb-pd --tso-addr), shared by PD and the
// client. Each frame (common/tcp_socket.h) carries one serialized pdpb.TsoRequest or
// pdpb.TsoResponse: the same messages, validation and errors as the gRPC Tso stream,
// without gRPC's per-message work on either end. Requests are answered in order.
#pragma once

#include <cstddef>
#include <cstdint>

namespace rdb {

inline constexpr std::uint32_t kTsoFrameMagic = 0x5254534f;                 // "RTSO"
inline constexpr std::size_t kMaxTsoRequestBytes = 1024;                    // a header and a count
inline constexpr std::size_t kMaxTsoResponseBytes = std::size_t{64} << 10;  // an error may name a leader

}  // namespace rdb
