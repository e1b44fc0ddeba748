#include "server/http_proxy.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>

namespace rdb {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())) != 0) {
    s.remove_prefix(1);
  }
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())) != 0) {
    s.remove_suffix(1);
  }
  return s;
}

bool ends_with_ignoring_case(std::string_view s, std::string_view suffix) {
  if (suffix.size() > s.size()) {
    return false;
  }
  return std::equal(suffix.begin(), suffix.end(), s.end() - static_cast<std::ptrdiff_t>(suffix.size()),
                    [](char a, char b) {
                      return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
                    });
}

// The first of `names` set to a non-empty value, or nullptr.
const char* first_set(const EnvLookup& env, std::initializer_list<const char*> names) {
  for (const char* n : names) {
    const char* v = env(n);
    if (v != nullptr && *v != '\0') {
      return v;
    }
  }
  return nullptr;
}

bool excluded(std::string_view host, const EnvLookup& env) {
  const char* list = first_set(env, {"no_grpc_proxy", "no_proxy"});
  if (list == nullptr) {
    return false;
  }
  std::string_view rest(list);
  while (!rest.empty()) {
    auto comma = rest.find(',');
    std::string_view entry = trim(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    if (entry == "*" || (!entry.empty() && ends_with_ignoring_case(host, entry))) {
      return true;
    }
  }
  return false;
}

}  // namespace

std::optional<HttpProxy> http_proxy_for(std::string_view host, const EnvLookup& env) {
  const char* setting = first_set(env, {"grpc_proxy", "https_proxy", "http_proxy"});
  if (setting == nullptr) {
    return std::nullopt;
  }
  std::string_view uri = trim(setting);
  constexpr std::string_view kScheme = "http://";
  if (uri.size() < kScheme.size() || !ends_with_ignoring_case(uri.substr(0, kScheme.size()), kScheme)) {
    return std::nullopt;  // gRPC accepts only http:// proxies and goes direct otherwise
  }
  uri.remove_prefix(kScheme.size());
  std::string_view authority = uri.substr(0, uri.find_first_of("/?#"));
  HttpProxy proxy;
  if (auto at = authority.rfind('@'); at != std::string_view::npos) {
    proxy.credentials = std::string(authority.substr(0, at));
    authority.remove_prefix(at + 1);
  }
  if (authority.empty() || authority.front() == ':') {
    return std::nullopt;
  }
  if (excluded(host, env)) {
    return std::nullopt;
  }
  // A port is there when the last ':' is not inside an IPv6 literal's brackets.
  auto colon = authority.rfind(':');
  bool has_port = colon != std::string_view::npos && authority.find(']', colon) == std::string_view::npos;
  proxy.address = has_port ? std::string(authority) : std::string(authority) + ":443";
  return proxy;
}

std::optional<HttpProxy> http_proxy_for(std::string_view host) {
  return http_proxy_for(host, [](const char* name) -> const char* { return std::getenv(name); });
}

std::string base64(std::string_view bytes) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    auto n = (static_cast<unsigned>(static_cast<unsigned char>(bytes[i])) << 16) |
             (static_cast<unsigned>(static_cast<unsigned char>(bytes[i + 1])) << 8) |
             static_cast<unsigned>(static_cast<unsigned char>(bytes[i + 2]));
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += kAlphabet[n & 63];
  }
  if (std::size_t left = bytes.size() - i; left > 0) {
    unsigned n = static_cast<unsigned>(static_cast<unsigned char>(bytes[i])) << 16;
    if (left == 2) {
      n |= static_cast<unsigned>(static_cast<unsigned char>(bytes[i + 1])) << 8;
    }
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += left == 2 ? kAlphabet[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

}  // namespace rdb
