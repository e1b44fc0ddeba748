// Ready files: a daemon writes its bound addresses once it serves, so scripts
// and tests that start it on port 0 learn the real ports without polling logs.
// The file is written to a temporary name and renamed, so readers never see a
// partial file. Thread safety: pure function.
#pragma once

#include <string>

#include "common/status.h"

namespace rdb {

Status write_ready_file(const std::string& path, const std::string& contents);

}  // namespace rdb
