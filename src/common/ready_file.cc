#include "common/ready_file.h"

#include <fmt/format.h>

#include <cstdio>
#include <fstream>

namespace rdb {

Status write_ready_file(const std::string& path, const std::string& contents) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << contents;
    if (!out) {
      return ServerStatus::io_error(fmt::format("cannot write ready file '{}'", tmp));
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return ServerStatus::io_error(fmt::format("cannot rename ready file to '{}'", path));
  }
  return Status::ok();
}

}  // namespace rdb
