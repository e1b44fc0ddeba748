// rdb-cli txn: an interactive transaction driven one command per line.
//
// Commands (whitespace-separated; a token may be double-quoted, a backslash escaping
// the next character inside, e.g. "" for an empty END):
//   get K | scan START END [LIMIT] | put K V | delete K | commit | rollback
// Each is answered at once (one line; one JSON object with --json). `get` answers as
// raw-get --json does ({"key", "found", "value"}); `commit` answers {"op": "commit",
// "ok": true, "start_ts", "commit_ts"}. A command that fails answers {"error": "..."}
// and ends the transaction (rolled back). Input that ends before commit or rollback
// rolls back. Exit codes: 0 committed or rolled back on request; 3 conflict/aborted
// (nothing applied, safe to retry); 4 undetermined or any other error (a bad command,
// input that ended without commit or rollback).
// Thread safety: one call at a time.
#pragma once

#include <iosfwd>

#include "rdb/client.h"

namespace rdb::cli {

int run_txn_shell(RdbClient& client, std::istream& in, std::ostream& out, bool json);

}  // namespace rdb::cli
