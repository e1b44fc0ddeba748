#include "raftdisk/engine_options.h"

#include "raftdisk/raft_keys.h"

namespace rdb {

RocksEngineOptions raft_disk_engine_options() {
  RocksEngineOptions options;
  options.raft_insert_hint_group = raft_keys::insert_hint_group;
  return options;
}

}  // namespace rdb
