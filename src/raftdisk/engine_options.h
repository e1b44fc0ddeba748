// The engine options of a process that keeps Raft groups in its "raft" family (the
// stores, PD): what rdb knows about that layout and RocksDB can use (insert-hint
// groups, see raft_keys::insert_hint_group). Pure; thread-safe.
#pragma once

#include "storage/rocks_engine.h"

namespace rdb {

RocksEngineOptions raft_disk_engine_options();

}  // namespace rdb
