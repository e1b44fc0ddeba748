// How every rdb process configures its gRPC channels and servers, in one place.
//
// Channels reconnect quickly after a peer restarts (gRPC's default back-off
// grows to two minutes) and send keepalive pings, so a connection to a host that
// vanished (power loss, a cut cable: no FIN ever arrives) fails within about
// 15 s instead of hanging until the kernel gives up. Servers accept those pings.
// Liveness of a peer that is up but stuck (SIGSTOP) is the caller's business:
// the client's attempt timeout, Raft's election timeout.
//
// TLS: with a CA, a certificate and its key (PEM files; all three or none), every
// channel and server speaks TLS and both ends verify each other against the CA
// (mutual TLS). A server given allowed common names also refuses any call whose
// peer certificate's CN is not among them. Without TLS files, plaintext as before.
// Thread safety: pure functions; the returned credentials may be shared.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "common/result.h"

namespace rdb {

inline constexpr int kKeepaliveTimeMs = 10'000;
inline constexpr int kKeepaliveTimeoutMs = 5'000;
inline constexpr int kMinConnectTimeoutMs = 5'000;

struct TlsFiles {
  std::string ca;                       // PEM: the CA that signed every peer's certificate
  std::string cert;                     // PEM: this process's certificate (chain)
  std::string key;                      // PEM: its private key
  std::vector<std::string> allowed_cn;  // servers only; empty = any certificate the CA signed
  bool enabled() const { return !ca.empty() || !cert.empty() || !key.empty(); }
};

// Process-wide settings for a daemon that serves gRPC, called once at the start of main:
// turns off Abseil's mutex deadlock detection (gRPC's locks are absl::Mutex; Debian's
// Abseil checks every acquisition against a lock graph, several percent of a busy
// daemon's CPU in profiles, for a check that only reports).
void tune_process_for_grpc();

// Reconnect back-off, keepalive, and message size limits of `max_message_bytes`.
grpc::ChannelArguments default_channel_args(int max_message_bytes);
// Lets clients ping as often as default_channel_args() does, even without calls.
void allow_keepalive_pings(grpc::ServerBuilder& builder);

// INVALID_ARGUMENT when only some of ca/cert/key are given or a file cannot be
// read, naming the file; insecure credentials when TLS is not enabled.
Result<std::shared_ptr<grpc::ChannelCredentials>> channel_credentials(const TlsFiles& tls);
Result<std::shared_ptr<grpc::ServerCredentials>> server_credentials(const TlsFiles& tls);

std::shared_ptr<grpc::Channel> make_channel(const std::string& addr,
                                            const std::shared_ptr<grpc::ChannelCredentials>& creds,
                                            int max_message_bytes);

}  // namespace rdb
