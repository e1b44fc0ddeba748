// The TLS flags every rdb binary takes, declared once: --ca, --cert, --key (and,
// on servers, --cert-allowed-cn). See common/grpc_setup.h for what they do.
// Header-only so that only binaries that parse flags depend on CLI11.
#pragma once

#include <CLI/CLI.hpp>

#include "common/grpc_setup.h"

namespace rdb {

inline void add_tls_flags(CLI::App& app, TlsFiles& tls, bool server) {
  app.add_option("--ca", tls.ca, "TLS: CA certificate (PEM) that signed every peer; with --cert and --key")
      ->check(CLI::ExistingFile);
  app.add_option("--cert", tls.cert, "TLS: this process's certificate (PEM)")->check(CLI::ExistingFile);
  app.add_option("--key", tls.key, "TLS: this process's private key (PEM)")->check(CLI::ExistingFile);
  if (server) {
    app.add_option("--cert-allowed-cn", tls.allowed_cn,
                   "TLS: accept only peers whose certificate common name is one of these");
  }
}

}  // namespace rdb
