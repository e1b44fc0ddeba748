// TempDir: a unique directory under $TMPDIR (or /tmp), removed on destruction.
// Thread safety: one owner; the path may be read from any thread.
#pragma once

#include <string>

namespace rdb::testing {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace rdb::testing
