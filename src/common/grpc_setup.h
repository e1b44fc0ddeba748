// How every rdb process configures its gRPC channels and servers, in one place.
//
// Channels reconnect quickly after a peer restarts (gRPC's default back-off
// grows to two minutes) and send keepalive pings, so a connection to a host that
// vanished (power loss, a cut cable: no FIN ever arrives) fails within about
// 15 s instead of hanging until the kernel gives up. Servers accept those pings.
// Liveness of a peer that is up but stuck (SIGSTOP) is the caller's business:
// the client's attempt timeout, Raft's election timeout.
// Thread safety: pure functions.
#pragma once

#include <grpcpp/grpcpp.h>

namespace rdb {

inline constexpr int kKeepaliveTimeMs = 10'000;
inline constexpr int kKeepaliveTimeoutMs = 5'000;

// Reconnect back-off, keepalive, and message size limits of `max_message_bytes`.
grpc::ChannelArguments default_channel_args(int max_message_bytes);
// Lets clients ping as often as default_channel_args() does, even without calls.
void allow_keepalive_pings(grpc::ServerBuilder& builder);

}  // namespace rdb
