// Config files for rdb's daemons: `--config FILE` (TOML) and `--print-default-config`.
//
// Every flag of the daemon is a key of the same name without its dashes' prefix
// (`--raft-tick-ms 100` is `raft-tick-ms = 100`), at the file's top level. Flags given on the
// command line override the file. A key that is no flag is an error naming the key, as is a
// value of the wrong type (CLI11 checks it as it checks the flag) or a TOML syntax error
// (with its line). Booleans are TOML booleans, lists (e.g. several `pd` endpoints) arrays.
// `--print-default-config` prints every key with its description and default (keys without
// a default commented out) and exits 0: a file that, unchanged, configures what no flags do.
//
// Header for binaries that parse flags (CLI11); not thread-safe (parsing happens once, at start).
#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace rdb {

// Adds --config and --print-default-config to `app`, the flags of `program` ("rdb-server").
// Call after every other flag is added and before app.parse(). `app` must outlive the parse.
void add_config_file_flags(CLI::App& app, const std::string& program);

}  // namespace rdb
