// Which HTTP CONNECT proxy, if any, gRPC would use to reach a host — so that traffic rdb sends
// on its own sockets (Raft on plain TCP) leaves the way the store's gRPC traffic does.
//
// The rules are gRPC core's default proxy mapper's: the proxy is the first set of `grpc_proxy`,
// `https_proxy`, `http_proxy` (an http:// URI, optionally with user:password@, port 443 when
// none is given); no proxy for a host that a comma-separated entry of `no_grpc_proxy` (or, when
// that is unset, `no_proxy`) ends with, compared without case. `*` in that list also means "no
// proxy for any host".
// Thread safety: pure functions (the environment is read through the lookup given).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace rdb {

struct HttpProxy {
  std::string address;      // host:port of the proxy
  std::string credentials;  // "user:password" for Proxy-Authorization (Basic), or empty
};

using EnvLookup = std::function<const char*(const char*)>;

// The proxy to reach `host` through, or nullopt to connect directly. A proxy setting that is
// not an http:// URI with a host is ignored (as gRPC does), so the connection goes direct.
std::optional<HttpProxy> http_proxy_for(std::string_view host, const EnvLookup& env);
std::optional<HttpProxy> http_proxy_for(std::string_view host);  // the process environment

// RFC 4648 base64 of `bytes` (for the Basic credentials).
std::string base64(std::string_view bytes);

}  // namespace rdb
